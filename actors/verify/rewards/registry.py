"""The reward registry: what a reward function receives (:class:`RewardInput`), the named functions
(:data:`REWARDS`), the measure providers each one reads (:data:`READS`) and :func:`requests`, which
asks the split checker for those providers. It imports none of the rewards: each reward's module
registers into it (``@reward``), and the package loads those modules.
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
    config: Any = None
    """The :class:`~actors.verify.rewards.config.RewardConfig` in force (set by its ``score``):
    rewards with settings read theirs from it."""


RewardFn = Callable[[RewardInput], float]
REWARDS: dict[str, RewardFn] = {}
READS: dict[str, tuple[str, ...]] = {}
"""Reward name -> the measure providers (actors/verify/sandbox/measures) whose measures it reads."""


def reward(name: str, reads: tuple[str, ...] = ()) -> Callable[[RewardFn], RewardFn]:
    """Register a reward function as ``name``; ``reads`` names the measure providers it needs: the
    parent asks the split checker for them when the reward has a weight for a task's family."""

    def register(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        READS[name] = tuple(reads)
        return fn

    return register


def requests(task: Any, weights: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The measure providers a job of ``task`` needs under ``weights`` (those a reward with a
    non-zero weight reads), each with the parameters it takes from the task."""
    from actors.verify.sandbox.measures.registry import PROVIDERS

    wanted = {provider for name, weight in weights.items() if weight for provider in READS.get(name, ())}
    unknown = sorted(wanted - set(PROVIDERS))
    if unknown:
        raise ValueError(f"rewards read unknown measure providers {unknown}; registered: {sorted(PROVIDERS)}")
    return {name: provider.params(task) for name, provider in PROVIDERS.items() if name in wanted}
