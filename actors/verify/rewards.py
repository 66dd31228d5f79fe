"""Rewards: a registry of named reward functions and their weighted sum, chosen per task family.

A reward function receives what the checker recorded (status, tests passed, each test's outcome,
named measures) with the raw completion, the extracted code and the task's family; no reward is
ever parsed from text the candidate could print. A new reward is one function here (or in any
module) decorated with ``@reward("name")``, then a weight in config:
``verifier.rewards.weights.name=0.5``, or for one family only,
``verifier.rewards.by_family.quasar.name=1.0``. The default follows the IBM paper ("Quantum
Verifiable Rewards for Post-Training Qiskit Code Assistant"): the fraction of unit tests passed
with weight 1.0 plus a format reward with weight 0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pydantic import Field, field_validator

from actors.config import Config
from actors.verify.quasar_reward import QuasarRewardConfig, quasar_reward


@dataclass(frozen=True)
class RewardInput:
    text: str
    """The raw completion, as the model wrote it."""
    status: str
    tests_passed: int
    tests_total: int
    code: str | None = None
    """The code that ran (extracted from ``text``); None when there was none."""
    family: str = ""
    """The task's family: rewards are chosen per family (RewardConfig.by_family)."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """Test id -> passed | failed | error | skipped, from the checker's record."""
    measures: dict[str, float] = field(default_factory=dict)
    """Named numbers the checker computed (e.g. QUASAR's distances), from its record."""
    config: RewardConfig | None = None
    """The reward config in force (set by :func:`score`): rewards with settings read theirs from it."""


RewardFn = Callable[[RewardInput], float]
REWARDS: dict[str, RewardFn] = {}


def reward(name: str) -> Callable[[RewardFn], RewardFn]:
    def register(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        return fn

    return register


reward("quasar")(quasar_reward)  # QUASAR's hierarchical reward (actors/verify/quasar_reward.py)


@reward("pass_fraction")
def pass_fraction(result: RewardInput) -> float:
    """Fraction of the task's unit tests that passed (0 for timeouts, crashes and no code)."""
    return result.tests_passed / result.tests_total if result.tests_total else 0.0


@reward("binary")
def binary(result: RewardInput) -> float:
    """1 when every test passed, else 0."""
    return 1.0 if result.status == "passed" else 0.0


_FENCE = re.compile(r"```[^\n`]*\n.*?```", re.DOTALL)
_THINK_ANSWER = re.compile(r"^\s*<think>.*?</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)


@reward("format")
def format_reward(result: RewardInput) -> float:
    """1 when the completion is ``<think>...</think><answer>...</answer>`` and the answer holds
    exactly one fenced code block, else 0."""
    match = _THINK_ANSWER.match(result.text)
    return 1.0 if match and len(_FENCE.findall(match.group("answer"))) == 1 else 0.0


def _known(weights: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(REWARDS))
    if unknown:
        raise ValueError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
    if not weights:
        raise ValueError("at least one reward needs a weight")
    return weights


class RewardConfig(Config):
    weights: dict[str, float] = {"pass_fraction": 1.0, "format": 0.1}
    """Reward name -> weight; the reward is the weighted sum. Names: the registry in
    actors/verify/rewards.py (pass_fraction, binary, format, quasar). Default after the IBM paper."""

    quasar: QuasarRewardConfig = QuasarRewardConfig()
    """Weights and thresholds of the ``quasar`` reward (QUASAR's hierarchical reward, arXiv 2510.00967)."""

    by_family: dict[str, dict[str, float]] = {"quasar": {"quasar": 1.0}}
    """Task family -> its own weights, used instead of ``weights`` for that family's tasks (e.g.
    QSpark's multi-part reward for one family, QUASAR's hierarchical one for another); families
    not named here use ``weights``. Default: QUASAR's tasks (family ``quasar``) by the ``quasar`` reward."""

    @field_validator("weights")
    @classmethod
    def _known_rewards(cls, weights: dict[str, float]) -> dict[str, float]:
        return _known(weights)

    @field_validator("by_family")
    @classmethod
    def _known_family_rewards(cls, by_family: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for family, weights in by_family.items():
            try:
                _known(weights)
            except ValueError as error:
                raise ValueError(f"family {family!r}: {error}") from None
        return by_family

    deprecation_penalty: float = Field(0.1, ge=0.0, le=100.0)
    """Reward lost per flake8-qiskit-migration finding (QKT100-QKT202: APIs Qiskit 1.0/2.0 removed,
    e.g. the ``qiskit.providers.aer`` import the IBM paper names) in the model's code: the
    ``deprecation`` reward is ``-deprecation_penalty * findings`` (actors/verify/deprecation.py)."""

    def weights_for(self, family: str) -> dict[str, float]:
        return self.by_family.get(family, self.weights)


def score(config: RewardConfig, result: RewardInput) -> tuple[float, dict[str, float]]:
    """(weighted reward, each reward's own value), with the weights of the task's family."""
    weights = config.weights_for(result.family)
    result = replace(result, config=config)
    parts = {name: REWARDS[name](result) for name in weights}
    return sum(weights[name] * value for name, value in parts.items()), parts


# Rewards defined in their own modules register on import.
from actors.verify import deprecation, qspark_rewards  # noqa: E402,F401,I001
