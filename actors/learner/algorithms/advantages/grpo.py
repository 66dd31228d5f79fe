"""GRPO's group-normalised advantage (DeepSeekMath, arXiv 2402.03300): a completion's reward minus
its group's mean, divided by the group's std (+ eps); without the division it is Dr. GRPO's (Liu et
al., arXiv 2503.20783), which drops it as a bias towards groups whose rewards barely differ."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.learner.algorithms.advantages import grouped_rewards, register_advantage_estimator, zero_variance

if TYPE_CHECKING:
    import torch

    from actors.learner.algorithms.grpo import GrpoConfig


def group_advantages(
    rewards: torch.Tensor, group_size: int, normalize_std: bool = True, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of contiguous groups (samples 0..G-1 answer prompt 0, ...) and zero-variance flags.

    advantage = reward - group mean, divided by (unbiased group std + eps) when ``normalize_std``.
    Returns ``(advantages [B], zero_variance [B] bool)``; zero_variance marks every sample of a group
    whose rewards are all equal.
    """
    grouped = grouped_rewards(rewards, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if normalize_std:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    return advantages.reshape(-1), zero_variance(grouped).reshape(-1)


@register_advantage_estimator("grpo")
def grpo_advantages(rewards: torch.Tensor, config: GrpoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return group_advantages(rewards, config.group_size, config.normalize_std, config.std_eps)
