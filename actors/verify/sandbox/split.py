"""Split verification: the candidate runs in one child, its tests in another, clean one.

The solution child (untrusted) runs only the candidate's code, never sees the tests, and then
answers requests: the value of a name, or the result of calling one of its functions. The
checker child, forked from the clean zygote, runs the tests in a namespace whose candidate names
are proxies: each call's arguments cross to the solution child as data, run there, and the
return value comes back as data and is rebuilt here by the codecs (actors/verify/codecs). Only
the checker writes the result record, so nothing the candidate does (patching Aer or unittest,
forging records, always-equal objects) reaches the verdict.
"""

from __future__ import annotations

import builtins
import time
import traceback
from typing import Any

from actors.verify.sandbox.codecs.plain import CALLABLE
from actors.verify.sandbox.codecs.registry import CannotCross, decode, encode
from actors.verify.sandbox.frames import read_frame, write_frame
from actors.verify.sandbox.harness import fresh_namespace, guarded
from actors.verify.sandbox.harnesses.registry import Candidate, get
from actors.verify.sandbox.measures.registry import Absent
from actors.verify.sandbox.measures.registry import take as take_measures
from actors.verify.sandbox.provenance import recording

MAX_ANSWER_BYTES = 96 * 1024 * 1024


class ValueCannotCross(Exception):
    """A candidate value that no codec carries: the verdict fails with this reason."""


class SolutionGone(Exception):
    """The solution child stopped answering (it exited, crashed or hung)."""


# ---------------------------------------------------------------- the solution child


def serve_solution(job: dict[str, Any], requests: int, answers: int) -> None:
    """Run the candidate, then answer the checker until it hangs up. Runs untrusted code."""
    solution = get(job["harness"]).solution(job["prompt"], job["completion"])
    namespace = fresh_namespace()
    try:
        exec(compile(solution, "<solution>", "exec"), namespace)
        ready: dict[str, Any] = {"ready": True}
    except SystemExit as exit_:
        ready = {"ready": exit_.code in (0, None), "error": f"SystemExit({exit_.code!r})"}
    except BaseException as error:  # noqa: BLE001
        traceback.print_exc()
        ready = {"ready": False, "error": f"{type(error).__name__}: {error}"[:2000]}
    while True:
        request = read_frame(requests)
        if request is None:
            return
        write_frame(answers, ready if request.get("op") == "hello" else _answer(namespace, request))


def _answer(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    name = request.get("name")
    if name not in namespace:
        return {"missing": True}
    target = namespace[name]
    try:
        if request.get("op") == "get":
            if callable(target) and not isinstance(target, type) and _is_function(target):
                return {"value": {"$": "callable"}}
            return {"value": encode(target)}
        args = decode(request.get("args", []))
        kwargs = decode(request.get("kwargs", {"$": "dict", "items": []}))
        result = target(*args, **kwargs)
        return {"value": encode(result)}
    except CannotCross as error:
        return {"cannot_cross": f"{name}: {error}"}
    except BaseException as error:  # noqa: BLE001 - the candidate raised: that crosses as data
        return {"raised": {"type": type(error).__name__, "message": str(error)[:2000]}}


def _is_function(value: Any) -> bool:
    import types

    return isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType))


# ---------------------------------------------------------------- the checker child


class Channel:
    """The checker's end of the conversation with the solution child."""

    def __init__(self, requests: int, answers: int, deadline: float) -> None:
        self.requests, self.answers, self.deadline = requests, answers, deadline

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            write_frame(self.requests, message)
            answer = read_frame(self.answers, max(0.0, self.deadline - time.monotonic()), max_bytes=MAX_ANSWER_BYTES)
        except TimeoutError:
            raise SolutionGone("the solution child never answered") from None
        except (OSError, ValueError) as error:
            raise SolutionGone(f"the solution child's answer was unreadable: {type(error).__name__}") from None
        if not isinstance(answer, dict):
            raise SolutionGone("the solution child hung up" if answer is None else "malformed answer")
        return answer

    def value(self, answer: dict[str, Any], what: str) -> Any:
        if "cannot_cross" in answer:
            raise ValueCannotCross(f"value cannot cross: {answer['cannot_cross']}"[:500])
        if "raised" in answer:
            raised = answer["raised"] if isinstance(answer["raised"], dict) else {}
            raise _rebuild_exception(str(raised.get("type", "Exception")), str(raised.get("message", "")))
        if "value" not in answer:
            raise SolutionGone(f"malformed answer for {what}")
        try:
            return decode(answer["value"])
        except CannotCross as error:
            raise ValueCannotCross(f"value cannot cross: {what}: {error}"[:500]) from None


class RemoteFunction:
    """Stands in the checker for a function of the candidate's; calls run in the solution child."""

    def __init__(self, channel: Channel, name: str) -> None:
        self._channel, self.__name__ = channel, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            payload = {"op": "call", "name": self.__name__, "args": encode(list(args)), "kwargs": encode(kwargs)}
        except CannotCross as error:
            raise ValueCannotCross(f"argument cannot cross to the solution: {error}") from None
        return self._channel.value(self._channel.ask(payload), f"{self.__name__}(...)")

    def __repr__(self) -> str:
        return f"<candidate function {self.__name__}>"


def _rebuild_exception(kind: str, message: str) -> BaseException:
    """Builtin exception types come back as themselves (tests may expect ValueError); others as RuntimeError."""
    candidate = getattr(builtins, kind, None)
    if isinstance(candidate, type) and issubclass(candidate, Exception) and candidate.__module__ == "builtins":
        try:
            return candidate(message)
        except Exception:  # noqa: BLE001 - exotic constructor signatures
            pass
    return RuntimeError(f"{kind}: {message}")


class RemoteCandidate(Candidate):
    """The candidate as the checker sees it: names fetched from the solution child as data,
    functions as :class:`RemoteFunction` stand-ins."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def function(self, name: str) -> RemoteFunction:
        return RemoteFunction(self.channel, name)

    def bind(self, namespace: dict[str, Any], name: str) -> None:
        answer = self.channel.ask({"op": "get", "name": name})
        if answer.get("missing"):
            return
        value = self.channel.value(answer, name)
        namespace[name] = self.function(name) if value is CALLABLE else value


def run_checker(job: dict[str, Any], requests: int, answers: int) -> dict[str, Any]:
    """The tests, in this clean process, against proxies of the candidate. Returns the record."""
    harness, tests = get(job["harness"]), job["tests"]
    # Give up on a silent solution a little before the job's deadline, so that the checker still
    # writes a record that names the reason instead of being killed.
    budget = job["timeout_s"]
    channel = Channel(requests, answers, time.monotonic() + max(budget * 0.9, budget - 2.0))
    ready: list[bool] = []

    def body() -> dict[str, Any]:
        hello = channel.ask({"op": "hello"})
        ready.append(bool(hello.get("ready")))
        if not hello.get("ready"):
            raise RuntimeError(f"the solution failed before the tests: {hello.get('error', 'unknown error')}")
        namespace = fresh_namespace()
        harness.bind(namespace, job, RemoteCandidate(channel))
        return harness.run(namespace, tests, job["entry_point"])

    with recording() as provenance:  # the tests' runs; the candidate's own, in the solution child, are not seen
        record = guarded(harness.name, tests, body)
    record["provenance"] = provenance
    if job.get("measure_requests"):  # after the tests, here in the clean checker (see measures/)
        candidate = RemoteCandidate(channel) if ready == [True] else Absent()
        record["measures"] = {**record.get("measures", {}), **take_measures(job, candidate)}
    text = f"{record.get('error') or ''}\n{record.get('failures') or ''}"
    for marker in ("value cannot cross", "argument cannot cross", "solution child"):
        if marker in text:
            line = next(line for line in text.splitlines() if marker in line)
            record["reason"] = line.split(": ", 1)[-1] if line.startswith(("ValueCannotCross", "SolutionGone")) else line
            break
    return record
