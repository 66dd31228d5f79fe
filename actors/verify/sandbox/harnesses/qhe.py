"""``qhe``: Qiskit HumanEval. The completion continues the prompt (a function signature and its
docstring); the test source defines ``check(candidate)``, called with the entry point. One test."""

from __future__ import annotations

from typing import Any

from actors.verify.sandbox.harnesses.registry import Candidate, Harness, record, register


@register
class QiskitHumanEval(Harness):
    name = "qhe"
    continues_prompt = True
    needs_entry_point = True

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        exec(compile(tests, "<tests>", "exec"), namespace)
        if entry_point not in namespace:
            return record(0, 1, {"check": "error"}, error=f"entry point {entry_point!r} is not defined")
        namespace["check"](namespace[entry_point])
        return record(1, 1, {"check": "passed"})

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        # The prompt is the task's own text (trusted): its imports and helpers, then the
        # candidate's function as a stand-in.
        exec(compile(job["prompt"], "<prompt>", "exec"), namespace)
        namespace[job["entry_point"]] = candidate.function(job["entry_point"])
