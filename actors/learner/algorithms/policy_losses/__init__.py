"""Policy losses: each token's policy-gradient term, chosen by name (``algorithm.policy_loss``). A new
loss is one module here, its function decorated with ``@register_policy_loss("name")``, plus its
module in :data:`POLICY_LOSSES`.

A policy loss is ``loss(logprobs, old_logprobs, advantages, mask, config) -> PolicyTerm``:
``logprobs`` [B, T] carry the gradient, ``old_logprobs`` [B, T] are the ratio's denominator,
``advantages`` [B, 1], ``mask`` [B, T] the tokens that count (1) and those that do not (0). What
surrounds it is GRPO's (:func:`actors.learner.algorithms.grpo.grpo_loss`): which samples count, the
truncated importance weight, the KL penalty and the aggregation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors.learner.algorithms.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass
class PolicyTerm:
    per_token: torch.Tensor
    """[B, T]: each token's policy loss, before the importance weight, the KL term and the aggregation."""

    ratio: torch.Tensor
    """[B, T]: the importance ratio the loss used (a sequence-level one repeated over its tokens)."""

    clipped: torch.Tensor
    """[B, T] bool: where the loss's clipping is active (reported as ``clip_fraction``)."""


PolicyLoss = Callable[..., PolicyTerm]

POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss", __name__, modules=(
    "ppo_clip",
    "gspo",
    "cispo",
))
register_policy_loss = POLICY_LOSSES.register
