"""GSPO, Group Sequence Policy Optimization (Zheng et al., arXiv 2507.18071): the importance ratio
and its clipping are the sequence's, not each token's,

    s_i = exp(mean over the completion's tokens of log(pi / pi_old)),   loss_i = -min(s_i A_i, clip(s_i) A_i),

so one off-policy token cannot dominate a sequence's update (the paper's case for MoE models). Every
token of a completion carries its sequence's loss; ``aggregation: seq-mean-token-mean`` is the paper's
mean over sequences. Its clip range is far narrower than PPO's (the paper: ``clip_low`` 3e-4,
``clip_high`` 4e-4). As TRL's GRPOTrainer with ``importance_sampling_level="sequence"``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.learner.algorithms.policy_losses import PolicyTerm, register_policy_loss
from actors.learner.algorithms.policy_losses.ppo_clip import clipped_surrogate

if TYPE_CHECKING:
    import torch

    from actors.learner.algorithms.grpo import GrpoConfig


@register_policy_loss("gspo")
def gspo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              config: GrpoConfig) -> PolicyTerm:
    import torch

    log_ratio = ((logprobs - old_logprobs) * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
    ratio = torch.exp(log_ratio)
    per_sequence, clipped = clipped_surrogate(ratio, advantages, config)
    return PolicyTerm(per_token=per_sequence.expand_as(logprobs), ratio=ratio.expand_as(logprobs),
                      clipped=clipped.expand_as(logprobs))
