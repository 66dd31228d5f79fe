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

from actors.config import Config
from actors.learner.algorithms.preference import ROW_FIELDS, collate_pairs, sequence_logps

if TYPE_CHECKING:
    import torch

__all__ = ["ROW_FIELDS"]


class DpoConfig(Config):
    """The DPO objective."""

    name: ClassVar[str] = "dpo"

    beta: float = Field(0.2, gt=0.0, le=100.0)
    """Inverse temperature of the implicit reward (Rafailov et al. 2023); 0.2 in the IBM Qiskit paper.
    Larger keeps the policy closer to the reference."""


Config = DpoConfig
ONLINE = False


def needs_reference(config: DpoConfig) -> bool:
    return True


def collate(rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    return collate_pairs(rows, pad_id)


def count(rows: list[dict[str, Any]], config: DpoConfig) -> float:
    """The batch's denominator: its pairs."""
    return float(len(rows))


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
    valid = (mask.chunk(2)[0].sum(dim=1) > 0).to(dtype)
    chosen_rewards = config.beta * (chosen - ref_chosen)
    rejected_rewards = config.beta * (rejected - ref_rejected)
    per_pair = -F.logsigmoid(chosen_rewards - rejected_rewards)
    pairs = valid.sum()
    denominator = pairs.clamp(min=1) if num_items is None else max(float(num_items), 1.0)
    loss = (per_pair * valid).sum() / denominator
    margin = (chosen_rewards - rejected_rewards).detach()
    metrics = {
        "tokens": mask.sum().detach(), "pairs": pairs.detach(),
        "reward_chosen": (chosen_rewards.detach() * valid).sum(), "reward_rejected": (rejected_rewards.detach() * valid).sum(),
        "margin": (margin * valid).sum(), "correct": ((margin > 0).to(dtype) * valid).sum(),
        "logp_chosen": (chosen.detach() * valid).sum(), "logp_rejected": (rejected.detach() * valid).sum(),
    }
    return loss, metrics


def batch_loss(micro: dict[str, Any], logprobs: Any, ref_logprobs: Any, config: DpoConfig, num_items: float
               ) -> tuple[Any, dict[str, Any]]:
    if ref_logprobs is None:
        raise ValueError("DPO needs the reference policy's logprobs")
    return dpo_loss(logprobs, ref_logprobs, micro["completion_mask"], config, num_items)


SUMMED = ("tokens", "pairs", "reward_chosen", "reward_rejected", "margin", "correct", "logp_chosen", "logp_rejected")


def micro_sums(metrics: dict[str, Any]) -> list[float]:
    return [float(metrics[name]) for name in SUMMED]


def report(sums: dict[str, float]) -> dict[str, float]:
    pairs = max(sums["pairs"], 1.0)
    return {"accuracy": sums["correct"] / pairs, "margin": sums["margin"] / pairs,
            "rewards/chosen": sums["reward_chosen"] / pairs, "rewards/rejected": sums["reward_rejected"] / pairs,
            "logps/chosen": sums["logp_chosen"] / pairs, "logps/rejected": sums["logp_rejected"] / pairs,
            "pairs": sums["pairs"], "trained_tokens": sums["tokens"]}
