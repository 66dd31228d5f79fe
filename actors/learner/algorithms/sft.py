"""SFT: supervised fine-tuning, the masked negative log-likelihood of the target tokens.

Loss on completion tokens only (the IBM Qiskit paper's SFT on bucket A: prompt -> an explanation
in ``<think>...</think>`` then the code in a python block), or on every token after the first
(its extended pretraining on a corpus). The loss is the token-mean over the whole batch (all
micro-batches, all ranks): sum of -log p over target tokens / target tokens, as TRL's
SFTTrainer with ``num_items_in_batch`` (Ouyang et al. 2022, arXiv 2203.02155, for SFT as the
first stage of post-training).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from actors.learner.algorithms.base import AlgorithmConfig, OfflineAlgorithm

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch


class SftConfig(AlgorithmConfig):
    """What SFT trains on."""

    name: ClassVar[str] = "sft"

    loss_on: Literal["completion", "all"] = "completion"
    """completion: only the answer's tokens count (the IBM paper's SFT); all: every token after the
    first (prompt included), for plain-text corpora (its extended pretraining)."""


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_items: float | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of -logprobs over ``mask`` [B, T], divided by ``num_items`` (default: the mask's count)."""
    import torch

    m = mask.to(torch.promote_types(logprobs.dtype, torch.float32))
    nll = -(logprobs * m).sum()
    tokens = m.sum()
    denominator = tokens.clamp(min=1) if num_items is None else max(float(num_items), 1.0)
    return nll / denominator, {"tokens": tokens.detach(), "nll": nll.detach()}


class Sft(OfflineAlgorithm[SftConfig]):
    config_type = SftConfig
    row_fields = ("prompt_ids", "completion_ids")
    """A row: the prompt's tokens and the target's. With ``loss_on: all`` the data preparation puts the
    sequence's first token in ``prompt_ids`` and the rest in ``completion_ids``."""

    def collate(self, rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
        """Rows -> :func:`actors.learner.experience.pad_rows` tensors; no rows: one masked padding row."""
        from actors.learner.experience import pad_rows

        if not rows:
            return pad_rows([[pad_id]], [[pad_id]], pad_id, masks=[[0.0]])
        return pad_rows([list(row["prompt_ids"]) for row in rows], [list(row["completion_ids"]) for row in rows],
                        pad_id)

    def count(self, rows: list[dict[str, Any]]) -> float:
        """The batch's denominator: its target tokens."""
        return float(sum(len(row["completion_ids"]) for row in rows))

    def batch_loss(self, micro: dict[str, Any], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
                   num_items: float) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = sft_loss(logprobs, micro["completion_mask"], num_items)
        return loss, {name: float(value) for name, value in metrics.items()}

    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        return {"nll": sums["nll"] / max(sums["tokens"], 1.0), "trained_tokens": sums["tokens"]}
