"""Off-policy corrections of the rollout-vs-learner mismatch: the importance weight of each token
(or of each whole sequence), truncated or masked.

The rollout engine samples with its own numerics and, with asynchrony, with older weights than the
learner's; the weight pi_learner_old / pi_rollout corrects for it. Large weights make the gradient's
variance explode, so they are bounded, in one of four ways (TRL 1.16's
``vllm_importance_sampling_mode``, matched by tests/test_grpo_loss.py):

- ``token_truncate``: each token's weight clamped to [min, max] (truncated IS, Yao et al. 2025,
  "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training").
- ``token_mask``: a token whose weight leaves [min, max] gets weight 0, the others keep theirs
  (IcePop, "Every Step Evolves", Ling team, arXiv 2510.18855).
- ``sequence_truncate`` / ``sequence_mask``: one weight per sequence, the product of its tokens'
  (the sum of their log differences), clamped, or zeroed when it leaves the range (sequence-level
  masking, MIS in "Your Efficient RL Framework ...", also NeMo-RL's sequence masking).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

ImportanceMode = Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]


def importance_weights(old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, mask: torch.Tensor,
                       mode: ImportanceMode, low: float | None, high: float | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight [B, T] without gradient, bounded [B, T] bool: the tokens whose weight the bound
    changed, i.e. clamped or masked, and masked [B] bool: the sequences that kept no weighted
    token). ``mask`` [B, T]: the tokens that are the model's (padding and tool output 0); a token
    whose rollout logprob is NaN (the engine gave none) gets weight 1, as in TRL."""
    import torch

    difference = torch.nan_to_num((old_logprobs - rollout_logprobs) * mask, nan=0.0)
    sequence = mode.startswith("sequence")
    if sequence:
        difference = difference.sum(dim=1, keepdim=True)
    ratio = torch.exp(difference)
    lower = -math.inf if low is None else low
    upper = math.inf if high is None else high
    outside = (ratio < lower) | (ratio > upper)
    if mode.endswith("truncate"):
        weight = ratio.clamp(min=low, max=high)
    else:
        weight = ratio.masked_fill(outside, 0.0)
    weight, outside = weight.expand_as(mask).detach(), outside.expand_as(mask) & mask.bool()
    kept = (weight > 0) & mask.bool()
    masked = mask.bool().any(dim=1) & ~kept.any(dim=1)
    return weight, outside, masked
