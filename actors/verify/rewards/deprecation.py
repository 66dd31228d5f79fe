"""The deprecation penalty (issue 17): Qiskit 1.0/2.0 removals in the model's code cost reward.

The IBM paper ("Quantum Verifiable Rewards for Post-Training Qiskit Code Assistant") names stale
APIs as a main failure of code models: ``qiskit.providers.aer``, ``execute``, ``qiskit.Aer``.
flake8-qiskit-migration (pinned in pyproject.toml) knows those removals as rules QKT100-QKT202;
its AST visitor is called here directly on the code (no flake8 process, no file), and its findings
are counted by rule into the verdict's measures (``deprecation.QKT100`` ..., ``deprecation.findings``,
``deprecation.penalty``). The ``deprecation`` reward is ``-deprecation_penalty`` per finding
(its setting, :class:`DeprecationSettings`: ``verifier.rewards.deprecation_penalty``), for any
family that gives it a weight.

Where it runs: in the verifier's parent process, on the extracted code as text: ``deprecation`` is
a measure provider taken by the parent (:class:`Deprecation`, ``where = "parent"``,
actors/verify/rewards/measures.py), registered like the checker's providers and taken only when a
reward reading it has a weight for the task's family. That is safe: the visitor only parses
(``ast.parse``) and walks the tree, it never executes the code, so there is nothing for a
candidate to patch or forge; and it is the model's answer itself, not anything the candidate
printed. Only the model's own lines count: where the answer continues the task's prompt (QHE),
the program is linted whole (a continuation need not parse alone) and findings on the prompt's
lines are dropped.
"""

from __future__ import annotations

import ast
from collections import Counter
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.verify.rewards.measures import ParentMeasure, register
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


class DeprecationSettings(Config):
    """The deprecation reward's setting (its field joins RewardConfig)."""

    deprecation_penalty: float = Field(0.1, ge=0.0, le=100.0)
    """Reward lost per flake8-qiskit-migration finding (QKT100-QKT202: APIs Qiskit 1.0/2.0 removed,
    e.g. the ``qiskit.providers.aer`` import the IBM paper names) in the model's code: the
    ``deprecation`` reward is ``-deprecation_penalty * findings`` (actors/verify/rewards/deprecation.py)."""


def quantities(code: str | None, prompt: str, continues_prompt: bool, penalty: float) -> dict[str, float]:
    """The deprecation measures of the model's ``code``, without their ``deprecation.`` prefix."""
    found = findings(code or "", prompt if continues_prompt else "")
    if found is None:
        return {"unparsed": 1.0, "findings": 0.0, "penalty": 0.0}
    total = sum(found.values())
    return {**{rule: float(found.get(rule, 0)) for rule in RULES}, "findings": float(total), "penalty": penalty * total}


def code_measures(code: str | None, prompt: str, continues_prompt: bool, penalty: float) -> dict[str, float]:
    """The verdict's ``deprecation.*`` measures for the model's ``code``."""
    return {f"deprecation.{key}": value for key, value in quantities(code, prompt, continues_prompt, penalty).items()}


@register
class Deprecation(ParentMeasure):
    """flake8-qiskit-migration's findings in the model's code, taken in the parent."""

    name = "deprecation"

    def measure(self, task: Any, code: str | None, config: Any) -> dict[str, float]:
        from actors.verify.sandbox.harnesses.registry import get

        return quantities(code, task.prompt, get(task.harness).continues_prompt, config.deprecation_penalty)



@reward("deprecation", reads=("deprecation",), settings=DeprecationSettings)
def deprecation(result: RewardInput) -> float:
    """``-deprecation_penalty`` per flake8-qiskit-migration finding (QKT100-QKT202) in the model's code."""
    penalty = result.measures.get("deprecation.penalty", 0.0)
    return -penalty if penalty else 0.0
