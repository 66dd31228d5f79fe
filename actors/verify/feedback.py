"""What the verifier tells the policy between turns: feedback built from a Verdict as data, then
rendered as text by qvr (never by the candidate's code).

A multi-turn rollout (QUASAR, arXiv 2510.00967: the policy's answer goes to a simulator tool and
the tool's feedback comes back before the next answer) shows the policy what went wrong. What the
feedback may say is chosen per run (:attr:`FeedbackConfig.include`):

- ``errors``: how the candidate's own code failed: the status (timeout, killed, no code), the
  frames of its traceback that lie in the candidate's code (``<solution>``) and the exception's
  type. An exception's message is shown only when it was raised in the candidate's code and
  quotes nothing of the hidden tests (no line of their source, none of their string or number
  literals, no name they define); otherwise only its type is. Every other line of the sandbox's
  output (the harness's frames, the tests' tracebacks and assertion messages, anything the
  candidate printed) is dropped: it is a whitelist, not a filter.
- ``measures``: the checker's named numbers (QUASAR's syntax, Jensen-Shannon distance,
  expectation value ...), as the reward functions read them.
- ``tests``: the ids of the tests that did not pass, names only (off by default: a user allows it).

The hidden tests never reach the policy, by a rule that depends on the verdict's isolation:

- **split**: the candidate ran in a child that never held the tests (the checker holds them), so
  it cannot know them beyond the arguments the tests hand it. The parts above are shown, and
  :func:`secrets_of` with the quote filter keeps the tests' own text out of them (an echoed
  argument, an assertion message).
- **shared** (and anything that is not split): the candidate ran in the tests' own process and
  could read them (its caller's frame, ``gc``, the harness's variables), then encode them in
  anything it chooses: an exception's message or class name, the line it raises at, what it
  prints (a fake traceback included), a measure or a test id it forges in its own record. No
  filter can catch every encoding, so none of that is shown: the feedback holds the status and
  the test counts only, the total counted by the parent from the tests' source, never the
  child's. That rule is :func:`build_feedback`'s first branch.

What is left in shared isolation is the channel of what the candidate provokes: one of five
statuses and a passed count between 0 and the total, a few bits a turn. It is accepted because
the policy would have to learn a code across turns that it is never rewarded for (the reward is
the final answer's, and ``turns.max_turns`` bounds the turns: QUASAR forces one), while anything
richer than the status would hand it the tests in one turn. Tasks verify split unless calibration
found they cannot (``metadata.isolation``); QPU tasks run shared.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from actors.config import Config
from actors.contracts import Task, Verdict
from actors.verify.sandbox.harness import count_tests

FeedbackPart = Literal["errors", "measures", "tests"]


class FeedbackConfig(Config):
    """What the verifier's feedback message says between turns (QUASAR, arXiv 2510.00967: the
    simulator tool's report comes back to the policy as a tool message)."""

    include: list[FeedbackPart] = Field(default_factory=lambda: ["errors", "measures"])
    """Parts of the feedback in split isolation (shared isolation shows the status and test counts
    only, whatever this says: see the module docstring): ``errors`` (the candidate's own traceback frames, exception type,
    timeout), ``measures`` (QUASAR's syntax / JS distance / expectation value ...), ``tests`` (ids of
    the failing tests, names only; hidden tests' ids say what is tested, so it is opt-in)."""

    role: Literal["tool", "user"] = "tool"
    """The chat role of the feedback message: ``tool`` as QUASAR's simulator tool answers; ``user``
    for chat templates without a tool role."""

    max_chars: int = Field(1500, ge=100, le=100_000)
    """Longest feedback text; the errors part is cut from its start (the end of a traceback says most)."""

    max_failing_tests: int = Field(10, ge=1, le=1000)
    """Most failing test ids named under ``tests``."""

    @field_validator("include")
    @classmethod
    def _no_repeats(cls, include: list[str]) -> list[str]:
        if len(set(include)) != len(include):
            raise ValueError(f"lists a part twice: {include}")
        return include


@dataclass
class Feedback:
    """The checker's feedback on one answer, as data."""

    status: str
    tests_passed: int
    tests_total: int
    errors: list[str] | None = None
    """Lines of the candidate's own failure (None: not included)."""
    measures: dict[str, float] | None = None
    failing_tests: list[str] | None = None
    notes: list[str] = field(default_factory=list)


_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Timeout|Failure))"
                        r"(?::\s?(?P<message>.*))?$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<name>[\w<>.]+))?\s*$')
_WITHHELD = "(message withheld: raised outside your code or quoting the hidden tests)"
_CROSSED = ("sandbox/split.py", "value")
"""The split checker's frame that re-raises an exception the candidate's code raised in its own child
(it crossed as data: type and message): its message is the candidate's."""


def _candidate_frame(file: str, name: str | None) -> bool:
    return file == "<solution>" or (file.replace("\\", "/").endswith(_CROSSED[0]) and name == _CROSSED[1])


@dataclass(frozen=True)
class HiddenTestSecrets:
    """What of a task's hidden tests must never appear in feedback."""

    lines: frozenset[str]
    strings: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]

    def quoted_in(self, text: str) -> bool:
        if any(line in text for line in self.lines):
            return True
        if any(string in text for string in self.strings):
            return True
        words = set(re.findall(r"[A-Za-z_]\w*", text))
        if words & self.names:
            return True
        found = {number.lstrip("+") for number in re.findall(r"(?<![\w.])[+-]?\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?", text)}
        return any(_same_number(number, secret) for number in found for secret in self.numbers)


def _same_number(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return float(a.rstrip("j")) == float(b.rstrip("j"))
    except ValueError:
        return False


def secrets_of(task: Task) -> HiddenTestSecrets:
    """Every line of the tests' source (4+ characters), their string literals (3+ characters) and
    number literals, and the names they define (functions, classes, test ids)."""
    source = task.tests or ""
    lines = frozenset(line.strip() for line in source.splitlines() if len(line.strip()) >= 4)
    strings, numbers, names = set(), set(), set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NUMBER:
                numbers.add(token.string.replace("_", ""))
            elif token.type == tokenize.STRING:
                try:
                    value = ast.literal_eval(token.string)
                except (ValueError, SyntaxError):
                    value = token.string
                if isinstance(value, (str, bytes)) and len(value) >= 3:
                    strings.add(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass  # not Python (QASM ground truth as JSON): its lines still count
    strings |= set(re.findall(r'"([^"\\]{3,})"', source))  # JSON / non-Python tests' strings
    numbers |= set(re.findall(r"(?<![\w.])\d[\d_]*\.\d+(?:[eE][+-]?\d+)?", source))  # their decimals
    try:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
    except (SyntaxError, ValueError):
        pass
    public = {task.entry_point} if task.entry_point else set()
    return HiddenTestSecrets(lines=frozenset(lines), strings=frozenset(strings), numbers=frozenset(numbers),
                       names=frozenset(names - public))


def candidate_errors(stderr_tail: str, code: str | None, secrets: HiddenTestSecrets) -> list[str]:
    """The lines of ``stderr_tail`` that describe the candidate's own failure (see the module
    docstring): frames in ``<solution>`` with the code line they quote when it is the candidate's,
    SyntaxError carets, and exception lines whose message is kept only when it is the candidate's
    and quotes nothing of the tests."""
    own_lines = {line.strip() for line in (code or "").splitlines() if line.strip()}
    kept: list[str] = []
    innermost_is_candidate = False
    previous_frame_is_candidate = False
    for raw in stderr_tail.splitlines():
        line = raw.rstrip()
        frame = _FRAME.match(line)
        if line.startswith("Traceback (most recent call last)"):
            kept.append(line)
            innermost_is_candidate = previous_frame_is_candidate = False
            continue
        if frame:
            innermost_is_candidate = _candidate_frame(frame["file"], frame["name"])
            previous_frame_is_candidate = frame["file"] == "<solution>"
            if previous_frame_is_candidate and not (frame["name"] and frame["name"] in secrets.names):
                kept.append(f'  File "<solution>", line {frame["line"]}' + (f", in {frame['name']}" if frame["name"] else ""))
            continue
        stripped = line.strip()
        if previous_frame_is_candidate and stripped and (stripped in own_lines or set(stripped) <= set("^~ ")):
            if not secrets.quoted_in(stripped) or stripped in own_lines:
                kept.append(line)
            continue
        exception = _EXCEPTION.match(stripped)
        if exception:
            message = exception["message"]
            if message and innermost_is_candidate and not secrets.quoted_in(message):
                kept.append(f"{exception['type']}: {message}")
            elif message:
                kept.append(f"{exception['type']}: {_WITHHELD}")
            else:
                kept.append(exception["type"])
            innermost_is_candidate = previous_frame_is_candidate = False
            continue
        previous_frame_is_candidate = False
    return _drop_repeats(kept)


def _drop_repeats(lines: list[str]) -> list[str]:
    result: list[str] = []
    for line in lines:
        if not result or result[-1] != line:
            result.append(line)
    return result


_STATUS_NOTES = {
    "timeout": "Your code did not finish within the time limit.",
    "killed": "Your code was killed: it exceeded a resource limit (memory, CPU or output).",
    "over_budget": "Your code was not run to its end: the QPU budget is spent (no fault of your code).",
}


def build_feedback(task: Task, verdict: Verdict, config: FeedbackConfig, code: str | None = None,
                   timeout_s: float | None = None) -> Feedback:
    """The feedback on one verdict of ``task`` (``code``: what ran, the extracted answer)."""
    if verdict.isolation != "split":
        return _status_only(task, verdict, config, code, timeout_s)
    secrets = secrets_of(task)
    feedback = Feedback(status=verdict.status, tests_passed=verdict.tests_passed, tests_total=verdict.tests_total)
    _add_notes(feedback, verdict, code, timeout_s)
    if "errors" in config.include:
        lines = candidate_errors(verdict.stderr_tail, code, secrets)
        # Defence in depth: nothing kept may quote the tests, whatever the rules above let through.
        feedback.errors = [line for line in lines if not _quotes_source(line, secrets)]
    if "measures" in config.include:
        feedback.measures = {name: verdict.measures[name] for name in sorted(verdict.measures)}
    if "tests" in config.include:
        failing = [name for name, outcome in verdict.outcomes.items() if outcome != "passed"]
        feedback.failing_tests = sorted(failing)[: config.max_failing_tests]
    return feedback


SHARED_NOTE = "Details are not shown: the tests of this task run in the same process as your code."


def _status_only(task: Task, verdict: Verdict, config: FeedbackConfig, code: str | None,
                 timeout_s: float | None) -> Feedback:
    """Shared isolation: what the candidate provokes, never what it writes (see the module docstring).
    The total is the parent's count from the tests' source; the passed count is clamped to it."""
    total = count_tests(task.harness, task.tests)
    passed = total if verdict.status == "passed" else max(0, min(verdict.tests_passed, total))
    feedback = Feedback(status=verdict.status, tests_passed=passed, tests_total=total)
    _add_notes(feedback, verdict, code, timeout_s)
    if config.include and verdict.status != "passed":
        feedback.notes.append(SHARED_NOTE)
    return feedback


def _add_notes(feedback: Feedback, verdict: Verdict, code: str | None, timeout_s: float | None) -> None:
    """The parent's own words for a status (their text is qvr's, whatever the candidate did)."""
    if verdict.status in _STATUS_NOTES:
        note = _STATUS_NOTES[verdict.status]
        if verdict.status == "timeout" and timeout_s:
            note = f"Your code did not finish within {timeout_s:g} s."
        feedback.notes.append(note)
    if code is None and verdict.status == "error" and "no code" in verdict.stderr_tail:
        feedback.notes.append("No code was found in your answer: give it in one fenced code block.")


def _quotes_source(line: str, secrets: HiddenTestSecrets) -> bool:
    stripped = line.strip()
    return any(source in stripped for source in secrets.lines) or any(s in stripped for s in secrets.strings)


def render_feedback(feedback: Feedback, config: FeedbackConfig) -> str:
    """The feedback message's text, as the policy reads it."""
    if feedback.status == "passed":
        head = "Verifier: all tests passed."
    elif feedback.tests_total:
        head = f"Verifier: {feedback.status} ({feedback.tests_passed} of {feedback.tests_total} tests passed)."
    else:
        head = f"Verifier: {feedback.status}."
    parts = [head, *feedback.notes]
    if feedback.measures:
        parts.append("Measures: " + ", ".join(f"{name} = {value:.4g}" for name, value in feedback.measures.items()))
    if feedback.failing_tests:
        parts.append("Failing tests: " + ", ".join(feedback.failing_tests))
    tail = ""
    if feedback.errors:
        budget = config.max_chars - sum(len(part) + 1 for part in parts) - len("Errors:\n")
        errors = "\n".join(feedback.errors)
        if budget > 0:
            tail = "Errors:\n" + (errors if len(errors) <= budget else "..." + errors[-(budget - 3):])
    text = "\n".join(parts + ([tail] if tail else []))
    text = text[: config.max_chars]
    parts_note = "" if feedback.status == "passed" else "\nPlease fix your answer and give the whole corrected code."
    return text + parts_note
