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

from actors.config import Config

if TYPE_CHECKING:
    import torch


class SftConfig(Config):
    """What SFT trains on."""

    name: ClassVar[str] = "sft"

    loss_on: Literal["completion", "all"] = "completion"
    """completion: only the answer's tokens count (the IBM paper's SFT); all: every token after the
    first (prompt included), for plain-text corpora (its extended pretraining)."""


Config = SftConfig
ONLINE = False
ROW_FIELDS = ("prompt_ids", "completion_ids")
"""A row: the prompt's tokens and the target's. With ``loss_on: all`` the data preparation puts the
sequence's first token in ``prompt_ids`` and the rest in ``completion_ids``."""


def needs_reference(config: SftConfig) -> bool:
    return False


def collate(rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
    """Rows -> :func:`actors.learner.experience.pad_rows` tensors; no rows: one masked padding row."""
    from actors.learner.experience import pad_rows

    if not rows:
        return pad_rows([[pad_id]], [[pad_id]], pad_id, masks=[[0.0]])
    return pad_rows([list(row["prompt_ids"]) for row in rows], [list(row["completion_ids"]) for row in rows], pad_id)


def count(rows: list[dict[str, Any]], config: SftConfig) -> float:
    """The batch's denominator: its target tokens."""
    return float(sum(len(row["completion_ids"]) for row in rows))


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_items: float | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of -logprobs over ``mask`` [B, T], divided by ``num_items`` (default: the mask's count)."""
    import torch

    m = mask.to(torch.promote_types(logprobs.dtype, torch.float32))
    nll = -(logprobs * m).sum()
    tokens = m.sum()
    denominator = tokens.clamp(min=1) if num_items is None else max(float(num_items), 1.0)
    return nll / denominator, {"tokens": tokens.detach(), "nll": nll.detach()}


def batch_loss(micro: dict[str, Any], logprobs: Any, ref_logprobs: Any, config: SftConfig, num_items: float
               ) -> tuple[Any, dict[str, Any]]:
    return sft_loss(logprobs, micro["completion_mask"], num_items)


SUMMED = ("tokens", "nll")


def micro_sums(metrics: dict[str, Any]) -> list[float]:
    return [float(metrics["tokens"]), float(metrics["nll"])]


def report(sums: dict[str, float]) -> dict[str, float]:
    return {"nll": sums["nll"] / max(sums["tokens"], 1.0), "trained_tokens": sums["tokens"]}
