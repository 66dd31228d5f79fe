"""The reward registry: what a reward function receives (:class:`RewardInput`), the named functions
(:data:`REWARDS`), the measures each one reads (:data:`READS`), the settings each one owns
(:data:`SETTINGS`) and the task families it scores by default (:data:`FAMILY_WEIGHTS`). It imports
none of the rewards: each reward's module registers into it (``@reward``), and the package loads
those modules. Which measures a job needs, and where each is taken, is
:mod:`actors.verify.rewards.measures`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RewardInput:
    text: str
    """The raw completion, as the model wrote it."""
    status: str
    """The verdict's status; never ``over_budget``: a verdict that judges nothing reaches no reward
    (:func:`actors.verify.rewards.config.score`)."""
    tests_passed: int
    tests_total: int
    code: str | None = None
    """The code that ran (extracted from ``text``); None when there was none."""
    family: str = ""
    """The task's family: rewards are chosen per family (RewardConfig.by_family)."""
    outcomes: dict[str, str] = field(default_factory=dict)
    """Test id -> passed | failed | error | skipped, from the checker's record."""
    measures: dict[str, float] = field(default_factory=dict)
    """Named numbers the checker (or the parent) computed (e.g. QUASAR's distances)."""
    config: Any = None
    """The :class:`~actors.verify.rewards.config.RewardConfig` in force (set by its ``score``):
    rewards with settings read theirs from it."""


RewardFn = Callable[[RewardInput], float]
REWARDS: dict[str, RewardFn] = {}
READS: dict[str, tuple[str, ...]] = {}
"""Reward name -> the measures it reads, by provider name: the checker's (actors/verify/sandbox/
measures) or the parent's (actors/verify/rewards/measures.py)."""
SETTINGS: dict[str, type] = {}
"""Reward name -> its settings class: a :class:`~actors.config.Config` whose fields join
RewardConfig (``verifier.rewards.<field>``), typed, validated and documented there."""
FAMILY_WEIGHTS: dict[str, dict[str, float]] = {}
"""Task family -> reward -> weight: RewardConfig.by_family's default, from the registrations."""


def reward(name: str, reads: tuple[str, ...] = (), settings: type | None = None,
           families: dict[str, float] | None = None) -> Callable[[RewardFn], RewardFn]:
    """Register a reward function as ``name``.

    ``reads``: the measure providers it needs (the parent takes or asks for them when the reward
    has a weight for a task's family). ``settings``: its settings class (a Config whose fields,
    e.g. ``quasar: QuasarRewardConfig``, join RewardConfig; register it in a module the rewards
    package loads, since RewardConfig is built once they are all registered). ``families``: task
    family -> this reward's weight there by default (``verifier.rewards.by_family``'s default)."""

    def register(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        READS[name] = tuple(reads)
        if settings is not None:
            SETTINGS[name] = settings
        for family, weight in (families or {}).items():
            FAMILY_WEIGHTS.setdefault(family, {})[name] = weight
        return fn

    return register


def default_by_family() -> dict[str, dict[str, float]]:
    """RewardConfig.by_family's default: each family's weights as its rewards registered them."""
    return {family: dict(weights) for family, weights in FAMILY_WEIGHTS.items()}
