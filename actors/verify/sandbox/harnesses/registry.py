"""The harness registry: what a harness is (:class:`Harness`), what its checker may ask of the
candidate (:class:`Candidate`), the registered harnesses and the one record shape they report.
It imports none of the harnesses: each registers itself, and the package loads them.

A harness owns everything of its test format on both sides of the sandbox's wall: which code of a
model's answer it runs (:meth:`Harness.extract`, asked by the parent's extract.py), what its
zygote must have in memory before it forks (:meth:`Harness.warm`, called by the zygote for every
registered harness), the candidate's program, the tests and the split checker's bindings. Nothing
outside this package names a harness to decide how it behaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.verify.sandbox.harnesses.answers import python_program


class Candidate:
    """What a harness's checker may ask of the candidate in split mode (see split.py)."""

    def function(self, name: str) -> Callable[..., Any]:  # pragma: no cover - interface
        """A stand-in that calls the candidate's function ``name`` in the solution child."""
        raise NotImplementedError

    def bind(self, namespace: dict[str, Any], name: str) -> None:  # pragma: no cover - interface
        """Put the candidate's ``name`` into ``namespace`` (a value, or a function stand-in);
        nothing when the candidate did not define it."""
        raise NotImplementedError


class Harness:
    """One test format. Subclass it, set ``name``, decorate with :func:`register`."""

    name = ""
    continues_prompt = False
    """The model's answer continues the prompt's code (QHE's completion mode): the prompt runs
    first, and an answer with no fenced block is taken as it is (it need not parse alone)."""

    needs_entry_point = False
    """The tests call one named function of the candidate's (``Task.entry_point``)."""

    clean_exit_passes = False
    """``sys.exit(0)`` before the tests finished counts as a pass (only where finishing the
    program is the test)."""

    def extract(self, answer: str) -> str | None:
        """The code to run from a model's answer (``<think>`` blocks already dropped, the
        ``<answer>`` tag's content taken), or None when there is none. Default: the first fenced
        python block, else the first fenced block, else the raw text (which must parse unless the
        answer continues the prompt)."""
        return python_program(answer, self.continues_prompt)

    def warm(self) -> None:
        """Import and run once, in the zygote before it forks, what this harness's checks use (a
        child's file view holds nothing of qvr, and a first import there would cost every job).
        Default: nothing beyond the zygote's own warm-up (Qiskit, Aer, a transpile, a simulation)."""

    def solution(self, prompt: str, completion: str) -> str:
        """The candidate's program."""
        return prompt + completion if self.continues_prompt else completion

    def count_tests(self, tests: str) -> int:
        """How many tests ``tests`` holds, read from the source (not from a run), so that a
        candidate that crashes before the tests load still scores 0 of the real total."""
        return 1

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        """Run the tests against ``namespace`` (the candidate's names); the record."""
        raise NotImplementedError

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        """Split mode, in the checker: fill ``namespace`` with what the tests use of the candidate."""
        raise NotImplementedError


HARNESSES: dict[str, Harness] = {}


def register(cls: type[Harness]) -> type[Harness]:
    if not cls.name or cls.name in HARNESSES:
        raise ValueError(f"harness {cls.name!r} has no name or is registered twice")
    HARNESSES[cls.name] = cls()
    return cls


def get(name: str) -> Harness:
    try:
        return HARNESSES[name]
    except KeyError:
        raise ValueError(f"unknown harness {name!r}; registered: {sorted(HARNESSES)}") from None


def record(passed: int, total: int, outcomes: dict[str, str], error: str | None = None, failures: str = "",
           measures: dict[str, float] | None = None) -> dict[str, Any]:
    """The one shape every harness reports."""
    return {"tests_passed": passed, "tests_total": total, "outcomes": outcomes, "measures": measures or {},
            "error": error, "failures": failures}
