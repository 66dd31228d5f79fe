"""CISPO, Clipped IS-weight Policy Optimization (MiniMax-M1, arXiv 2506.13585): clip the importance
weight, not the update. Each token's loss is

    -sg(min(r, 1 + clip_high)) A log pi,   r = pi / pi_old,

so every token keeps a gradient (PPO's clipping drops the tokens beyond the bound, often the rare
reflective ones), bounded by the capped weight. As the paper trains, there is no lower bound
(``clip_low`` is unused). TRL's ``loss_type="cispo"`` takes the cap itself as ``epsilon_high``
(ScaleRL's epsilon_max, recommended 5.0): that is ``clip_high`` 4.0 here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.learner.algorithms.policy_losses import PolicyTerm, register_policy_loss

if TYPE_CHECKING:
    import torch

    from actors.learner.algorithms.grpo import GrpoConfig


@register_policy_loss("cispo")
def cispo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
               config: GrpoConfig) -> PolicyTerm:
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    cap = 1 + config.clip_high
    weight = torch.clamp(ratio, max=cap).detach()
    return PolicyTerm(per_token=-weight * advantages * logprobs, ratio=ratio, clipped=ratio > cap)
