"""Rewards: a registry of named reward functions and their weighted sum.

A new reward is one function here (or in any module) decorated with ``@reward("name")``, then a
weight in config: ``verifier.rewards.weights.name=0.5``. The default follows the IBM paper
("Quantum Verifiable Rewards for Post-Training Qiskit Code Assistant"): the fraction of unit tests
passed with weight 1.0 plus a format reward with weight 0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import field_validator

from actors.config import Config


@dataclass(frozen=True)
class RewardInput:
    text: str
    """The raw completion, as the model wrote it."""
    status: str
    tests_passed: int
    tests_total: int


RewardFn = Callable[[RewardInput], float]
REWARDS: dict[str, RewardFn] = {}


def reward(name: str) -> Callable[[RewardFn], RewardFn]:
    def register(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = fn
        return fn

    return register


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


class RewardConfig(Config):
    weights: dict[str, float] = {"pass_fraction": 1.0, "format": 0.1}
    """Reward name -> weight; the reward is the weighted sum. Names: the registry in
    actors/verify/rewards.py (pass_fraction, binary, format). Default after the IBM paper."""

    @field_validator("weights")
    @classmethod
    def _known_rewards(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(REWARDS))
        if unknown:
            raise ValueError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
        if not weights:
            raise ValueError("at least one reward needs a weight")
        return weights


def score(config: RewardConfig, result: RewardInput) -> tuple[float, dict[str, float]]:
    """(weighted reward, each reward's own value)."""
    parts = {name: REWARDS[name](result) for name in config.weights}
    return sum(config.weights[name] * value for name, value in parts.items()), parts
