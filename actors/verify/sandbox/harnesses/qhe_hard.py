"""``qhe_hard``: Qiskit HumanEval-hard. The prompt is a plain-language description (it names the
function to write and its arguments); the completion is the whole program, imports included,
and the prompt is never prepended. The test source defines ``check(candidate)``, called with the
entry point, as in QHE. One test."""

from __future__ import annotations

from typing import Any

from actors.verify.sandbox.harnesses.qhe import QiskitHumanEval
from actors.verify.sandbox.harnesses.registry import Candidate, register


@register
class QiskitHumanEvalHard(QiskitHumanEval):
    name = "qhe_hard"
    continues_prompt = False

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        namespace[job["entry_point"]] = candidate.function(job["entry_point"])
