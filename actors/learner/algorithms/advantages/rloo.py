"""RLOO's leave-one-out advantage (Ahmadian et al., "Back to Basics: Revisiting REINFORCE Style
Optimization for Learning from Human Feedback in LLMs", arXiv 2402.14740): each completion's
baseline is the mean reward of the other G - 1 completions of its prompt,

    advantage_i = r_i - (sum_j r_j - r_i) / (G - 1),

an unbiased baseline (it does not depend on the completion it scores), unscaled: ``normalize_std``
and ``std_eps`` are the grpo estimator's. The same quantity as TRL's RLOOTrainer computes inline
(tests/test_grpo_plugins.py runs its lines), without its optional batch-wide normalisation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.learner.algorithms.advantages import grouped_rewards, register_advantage_estimator, zero_variance

if TYPE_CHECKING:
    import torch

    from actors.learner.algorithms.grpo import GrpoConfig


@register_advantage_estimator("rloo")
def rloo_advantages(rewards: torch.Tensor, config: GrpoConfig) -> tuple[torch.Tensor, torch.Tensor]:
    grouped = grouped_rewards(rewards, config.group_size)
    baselines = (grouped.sum(dim=1, keepdim=True) - grouped) / (config.group_size - 1)
    return (grouped - baselines).reshape(-1), zero_variance(grouped).reshape(-1)
