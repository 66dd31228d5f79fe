"""The default rewards, after the IBM paper ("Quantum Verifiable Rewards for Post-Training Qiskit
Code Assistant"): ``pass_fraction`` (the fraction of unit tests passed, weight 1.0) and ``format``
(weight 0.1); and ``binary`` (all tests passed or not)."""

from __future__ import annotations

import re

from actors.verify.rewards.registry import RewardInput, reward


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
