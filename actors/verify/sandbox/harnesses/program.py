"""``program``: the candidate's program must run to its end without an exception (``sys.exit(0)``
included). One test."""

from __future__ import annotations

from typing import Any

from actors.verify.sandbox.harnesses.registry import Candidate, Harness, record, register


@register
class Program(Harness):
    name = "program"
    clean_exit_passes = True

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        return record(1, 1, {"program": "passed"})

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        """Nothing to bind: the solution child ran the program to its end (or did not)."""
