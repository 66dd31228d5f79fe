"""PPO's clipped surrogate (Schulman et al., arXiv 1707.06347), per token as GRPO uses it
(DeepSeekMath, arXiv 2402.03300): -min(r A, clip(r, 1 - clip_low, 1 + clip_high) A) with the
token's ratio r = pi / pi_old; ``clip_high`` above ``clip_low`` is DAPO's clip-higher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.learner.algorithms.policy_losses import PolicyTerm, register_policy_loss

if TYPE_CHECKING:
    import torch

    from actors.learner.algorithms.grpo import GrpoConfig


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, config: GrpoConfig
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """-min(r A, clip(r) A) and where the clipping is active (the ratio beyond a bound, on the side
    its advantage pushes it), for ratios of any shape that broadcasts with ``advantages``."""
    import torch

    clipped = torch.clamp(ratio, 1 - config.clip_low, 1 + config.clip_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    active = ((ratio < 1 - config.clip_low) & (advantages < 0)) | ((ratio > 1 + config.clip_high) & (advantages > 0))
    return loss, active


@register_policy_loss("ppo-clip")
def ppo_clip_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  config: GrpoConfig) -> PolicyTerm:
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    per_token, clipped = clipped_surrogate(ratio, advantages, config)
    return PolicyTerm(per_token=per_token, ratio=ratio, clipped=clipped)
