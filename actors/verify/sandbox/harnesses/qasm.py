"""``qasm``: an OpenQASM 3 program, scored by QUASAR's measures (arXiv 2510.00967).

No candidate Python ever runs. The candidate is only its QASM text: :meth:`Qasm.solution` turns
it into an inert Python program, one assignment of a string literal (``repr`` of the text), so
that the shared mode's child and the split mode's solution child run nothing of the candidate's.
The checker reads the text, parses it itself with qiskit's OpenQASM 3 importer
(``qiskit.qasm3.loads``; only ``stdgates.inc`` may be included) and computes every measure
itself (actors/verify/sandbox/measures/quasar/) against the hidden ground truth in the task's
``tests`` (JSON). In split mode the checker takes the text from the job it was given, not from
the solution child, so nothing the candidate returns crosses at all. A candidate can change the
measures only through its circuit: printed text ("Reward: 1.0"), files, or a distribution it
writes into the program are never read.

Its answer is the first fenced block tagged qasm / openqasm / qasm3 / openqasm3 (else the first
fenced block that holds ``OPENQASM``), else the text from ``OPENQASM`` on (:meth:`Qasm.extract`);
its zygote warms the OpenQASM 3 importer and COBYLA before it forks (:meth:`Qasm.warm`).

Two tests: ``syntax`` (the program parses and can be simulated) and ``distribution`` (its
output distribution aligns with the reference: s2 >= ``pass_s2`` of the task's settings,
default 0.9, QUASAR's top tier). The reward is graded (the ``quasar`` reward reads the measures).
"""

from __future__ import annotations

import json
from typing import Any

from actors.verify.sandbox.harnesses.answers import tagged_program
from actors.verify.sandbox.harnesses.registry import Candidate, Harness, record, register

SOURCE_NAME = "QASM_SOURCE"
"""The one name the inert solution program binds."""

LANGUAGES = ("qasm", "openqasm", "qasm3", "openqasm3")
"""Fence tags of an OpenQASM answer."""


@register
class Qasm(Harness):
    name = "qasm"

    def extract(self, answer: str) -> str | None:
        return tagged_program(answer, LANGUAGES, "OPENQASM")

    def warm(self) -> None:
        from actors.verify.sandbox.measures.quasar import warm

        warm()  # the OpenQASM 3 importer and COBYLA

    def solution(self, prompt: str, completion: str) -> str:
        return f"{SOURCE_NAME} = {completion!r}\n"

    def count_tests(self, tests: str) -> int:
        return 2

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        from actors.verify.sandbox.measures.quasar import measure

        truth = json.loads(tests)
        measures = measure(namespace.get(SOURCE_NAME), truth)
        syntax = measures.get("syntax_valid", 0.0) == 1.0 and measures.get("simulated", 0.0) == 1.0
        aligned = syntax and measures.get("s2", 0.0) >= float(truth.get("settings", {}).get("pass_s2", 0.9))
        outcomes = {"syntax": "passed" if syntax else "failed", "distribution": "passed" if aligned else "failed"}
        error = None if measures.get("syntax_valid") else "the program is not valid OpenQASM 3 (or includes files)"
        return record(int(syntax) + int(aligned), 2, outcomes, error=error, measures=measures)

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        """The text comes from the job itself: the solution child is never asked for anything."""
        namespace[SOURCE_NAME] = job["completion"]
