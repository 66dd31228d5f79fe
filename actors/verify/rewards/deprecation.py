"""The deprecation penalty (issue 17): Qiskit 1.0/2.0 removals in the model's code cost reward.

The IBM paper ("Quantum Verifiable Rewards for Post-Training Qiskit Code Assistant") names stale
APIs as a main failure of code models: ``qiskit.providers.aer``, ``execute``, ``qiskit.Aer``.
flake8-qiskit-migration (pinned in pyproject.toml) knows those removals as rules QKT100-QKT202;
its AST visitor is called here directly on the code (no flake8 process, no file), and its findings
are counted by rule into the verdict's measures (``deprecation.QKT100`` ..., ``deprecation.findings``,
``deprecation.penalty``). The ``deprecation`` reward is ``-RewardConfig.deprecation_penalty`` per
finding, for any family that gives it a weight.

Where it runs: in the verifier's parent process, on the extracted code as text. That is safe: the
visitor only parses (``ast.parse``) and walks the tree, it never executes the code, so there is
nothing for a candidate to patch or forge; and it is the model's answer itself, not anything the
candidate printed. Only the model's own lines count: where the answer continues the task's
prompt (QHE), the program is linted whole (a continuation need not parse alone) and findings on
the prompt's lines are dropped.
"""

from __future__ import annotations

import ast
from collections import Counter
from typing import Any

from actors.verify.rewards.registry import RewardInput, reward

RULES = ("QKT100", "QKT101", "QKT102", "QKT200", "QKT201", "QKT202")
"""flake8-qiskit-migration 0.5.0's rules: 1xx Qiskit 1.0 removals, 2xx Qiskit 2.0 removals."""


def findings(code: str, prompt: str = "") -> Counter[str] | None:
    """Findings per rule in ``code`` (after ``prompt``, whose own lines never count); None when the
    program does not parse."""
    from flake8_qiskit_migration.plugin import Visitor

    try:
        tree = ast.parse(prompt + code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    first_line = prompt.count("\n") + 1 if prompt else 1
    visitor = Visitor()
    try:
        visitor.visit(tree)
    except RecursionError:
        return None
    return Counter(problem.msg.split(":", 1)[0] for problem in visitor.problems
                   if getattr(problem.node, "lineno", first_line) >= first_line)


def code_measures(code: str | None, prompt: str, continues_prompt: bool, penalty: float) -> dict[str, float]:
    """The verdict's ``deprecation.*`` measures for the model's ``code``."""
    found = findings(code or "", prompt if continues_prompt else "")
    if found is None:
        return {"deprecation.unparsed": 1.0, "deprecation.findings": 0.0, "deprecation.penalty": 0.0}
    total = sum(found.values())
    return {**{f"deprecation.{rule}": float(found.get(rule, 0)) for rule in RULES},
            "deprecation.findings": float(total), "deprecation.penalty": penalty * total}


def with_findings(measures: dict[str, float], task: Any, code: str | None, config: Any) -> dict[str, float]:
    """Parent side: a record's ``measures`` with the deprecation measures of this process only
    (any a record claims are dropped), linted when the ``deprecation`` reward has a weight for
    the task's family (else nothing is linted)."""
    from actors.verify.sandbox.harnesses.registry import get

    own = {name: value for name, value in measures.items() if not name.startswith("deprecation.")}
    if not config.weights_for(task.family).get("deprecation"):
        return own
    return {**own, **code_measures(code, task.prompt, get(task.harness).continues_prompt, config.deprecation_penalty)}


@reward("deprecation")
def deprecation(result: RewardInput) -> float:
    """``-deprecation_penalty`` per flake8-qiskit-migration finding (QKT100-QKT202) in the model's code."""
    penalty = result.measures.get("deprecation.penalty", 0.0)
    return -penalty if penalty else 0.0
