"""DPO: Direct Preference Optimization (Rafailov et al. 2023, arXiv 2305.18290), the sigmoid loss.

For a prompt with a chosen answer y_w and a rejected one y_l, with log-ratios against the frozen
reference r_w = log pi(y_w) - log pi_ref(y_w) and r_l likewise (sums over the answers' tokens):

    loss = -log sigmoid(beta * (r_w - r_l)),  averaged over the batch's pairs.

The implicit rewards are beta * r_w and beta * r_l; their difference is the margin and the share of
pairs with a positive one the preference accuracy (TRL's ``rewards/*`` metrics). The reference is
the base with the adapters off under LoRA, otherwise a frozen copy (sharded under ZeRO-3).
Defaults follow the IBM Qiskit paper (beta 0.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from actors.learner.algorithms.base import AlgorithmConfig
from actors.learner.algorithms.preference import PreferenceAlgorithm, reward_sums, sequence_logps, valid_pairs

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch


class DpoConfig(AlgorithmConfig):
    """The DPO objective."""

    name: ClassVar[str] = "dpo"

    beta: float = Field(0.2, gt=0.0, le=100.0)
    """Inverse temperature of the implicit reward (Rafailov et al. 2023); 0.2 in the IBM Qiskit paper.
    Larger keeps the policy closer to the reference."""


def dpo_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, config: DpoConfig,
             num_items: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``logprobs``, ``ref_logprobs``, ``mask`` [2B, T], the B chosen rows first. Pairs whose rows are
    all masked (padding) count for nothing. The loss is the sum over pairs / ``num_items`` (default:
    the real pairs here)."""
    import torch
    import torch.nn.functional as F

    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    logps = sequence_logps(logprobs.to(dtype), mask)
    ref_logps = sequence_logps(ref_logprobs.to(dtype), mask)
    chosen, rejected = logps.chunk(2)
    ref_chosen, ref_rejected = ref_logps.chunk(2)
    valid = valid_pairs(mask, dtype)
    chosen_rewards = config.beta * (chosen - ref_chosen)
    rejected_rewards = config.beta * (rejected - ref_rejected)
    per_pair = -F.logsigmoid(chosen_rewards - rejected_rewards)
    pairs = valid.sum()
    denominator = pairs.clamp(min=1) if num_items is None else max(float(num_items), 1.0)
    loss = (per_pair * valid).sum() / denominator
    metrics = {"tokens": mask.sum().detach(), **reward_sums(chosen_rewards, rejected_rewards, valid),
               "logp_chosen": (chosen.detach() * valid).sum(), "logp_rejected": (rejected.detach() * valid).sum()}
    return loss, metrics


class Dpo(PreferenceAlgorithm[DpoConfig]):
    config_type = DpoConfig

    def needs_reference(self) -> bool:
        return True

    def batch_loss(self, micro: dict[str, Any], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
                   num_items: float) -> tuple[torch.Tensor, dict[str, float]]:
        if ref_logprobs is None:
            raise ValueError("DPO needs the reference policy's logprobs")
        loss, metrics = dpo_loss(logprobs, ref_logprobs, micro["completion_mask"], self.config, num_items)
        return loss, {name: float(value) for name, value in metrics.items()}

    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        pairs = max(sums["pairs"], 1.0)
        return {**super().report(sums), "logps/chosen": sums["logp_chosen"] / pairs,
                "logps/rejected": sums["logp_rejected"] / pairs}
