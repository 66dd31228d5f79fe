"""Advantage estimators: rewards of a step's groups -> one advantage per completion, chosen by name
(``algorithm.advantage``). A new estimator is one module here, its function decorated with
``@register_advantage_estimator("name")``, plus its module in :data:`ADVANTAGE_ESTIMATORS`.

An estimator is ``estimator(rewards [B], config) -> (advantages [B], zero_variance [B] bool)``: the
rewards of contiguous groups of ``config.group_size`` (samples 0..G-1 answer prompt 0, ...);
zero_variance marks every sample of a group whose rewards are all equal (no learning signal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.learner.algorithms.registry import Registry

if TYPE_CHECKING:
    import torch

AdvantageEstimator = Callable[["torch.Tensor", Any], tuple["torch.Tensor", "torch.Tensor"]]

ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator", __name__, modules=(
    "grpo",
    "rloo",
))
register_advantage_estimator = ADVANTAGE_ESTIMATORS.register


def grouped_rewards(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Rewards [B] as [B / G, G] (at least float32), checked: 1-D, whole groups of two or more, finite."""
    import torch

    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B], got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group of one has no baseline), got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"len(rewards) = {rewards.numel()} is not a multiple of group_size = {group_size}")
    grouped = rewards.to(torch.promote_types(rewards.dtype, torch.float32)).view(-1, group_size)
    if not torch.isfinite(grouped).all():
        raise ValueError("rewards must be finite")
    return grouped


def zero_variance(grouped: torch.Tensor) -> torch.Tensor:
    """[B / G, G] rewards -> [B / G, G] bool: the group's rewards are all equal."""
    spread = grouped.max(dim=1, keepdim=True).values - grouped.min(dim=1, keepdim=True).values
    return (spread <= 1e-9).expand_as(grouped)


def judged_advantages(estimator: AdvantageEstimator, rewards: torch.Tensor, judged: torch.Tensor,
                      config: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``estimator``'s advantages and zero-variance flags with the samples whose verdict judges
    nothing (``judged`` False: over_budget, see actors/contracts.py) out of their groups' statistics:
    a group missing some is estimated on its judged samples alone, as a group of that size; a
    single judged sample has no baseline and is marked zero-variance (no learning signal). An
    unjudged sample gets advantage 0 and no flag: the caller leaves it out of the loss."""
    advantages, flat = estimator(rewards, config)
    if bool(judged.all()):
        return advantages, flat
    advantages, flat = advantages.clone(), flat.clone()
    size = config.group_size
    for start in range(0, rewards.numel(), size):
        members = judged[start:start + size]
        if bool(members.all()):
            continue
        advantages[start:start + size] = 0.0
        flat[start:start + size] = False
        kept = members.nonzero().flatten() + start
        if len(kept) >= 2:
            own, own_flat = estimator(rewards[kept], config.model_copy(update={"group_size": len(kept)}))
            advantages[kept], flat[kept] = own.to(advantages.dtype), own_flat
        else:
            flat[kept] = True
    return advantages, flat
