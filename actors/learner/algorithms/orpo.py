"""ORPO: Odds Ratio Preference Optimization (Hong et al. 2024, arXiv 2403.07691), no reference model.

    loss = NLL(chosen) - lambda * mean over pairs of log sigmoid(log odds(y_w) - log odds(y_l)),
    log odds(y) = log p(y) - log(1 - p(y)),  log p(y) = mean log-prob of the answer's tokens.

As TRL's ``trl.experimental.orpo`` (which QSpark's public code uses), the NLL covers the chosen
sequence's every token after the first (prompt and answer) and is a token-mean over the batch; the
odds-ratio term is a mean over pairs; the rewards are lambda * log p(y) (accuracy and margin as
DPO's). Across micro-batches and ranks each term is divided by the whole batch's count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from actors.learner.algorithms.base import AlgorithmConfig
from actors.learner.algorithms.preference import PreferenceAlgorithm, reward_sums, sequence_logps, valid_pairs

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch


class OrpoConfig(AlgorithmConfig):
    """The ORPO objective."""

    name: ClassVar[str] = "orpo"

    odds_ratio_weight: float = Field(0.1, gt=0.0, le=100.0)
    """lambda, the weight of the log odds ratio term (Hong et al. 2024; TRL's ORPOConfig.beta); 0.1 in
    QSpark's public code."""


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, stable on both sides of -ln 2 (Maechler 2012)."""
    import math

    import torch

    return torch.where(x < -math.log(2.0), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(logprobs: torch.Tensor, answer_mask: torch.Tensor, sequence_mask: torch.Tensor, config: OrpoConfig,
              num_items: dict[str, float] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``logprobs``, ``answer_mask``, ``sequence_mask`` [2B, T], the B chosen rows first."""
    import torch
    import torch.nn.functional as F

    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    logprobs = logprobs.to(dtype)
    chosen_seq_mask = sequence_mask.chunk(2)[0].to(dtype)
    nll = -(logprobs.chunk(2)[0] * chosen_seq_mask).sum()
    tokens = chosen_seq_mask.sum()
    average = sequence_logps(logprobs, answer_mask, average=True)
    valid = valid_pairs(answer_mask, dtype)
    # Padding pairs have no answer tokens (mean log-prob 0, log odds undefined): give them a finite
    # stand-in before the log odds, so neither the loss nor its gradient sees a NaN.
    average = torch.where(valid.repeat(2).bool(), average, torch.full_like(average, -1.0))
    chosen, rejected = average.chunk(2)
    log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
    ratio = F.logsigmoid(log_odds)
    pairs = valid.sum()
    token_denominator = tokens.clamp(min=1) if num_items is None else max(num_items["tokens"], 1.0)
    pair_denominator = pairs.clamp(min=1) if num_items is None else max(num_items["pairs"], 1.0)
    weight = config.odds_ratio_weight
    loss = nll / token_denominator - weight * (ratio * valid).sum() / pair_denominator
    metrics = {"tokens": tokens.detach(), "nll": nll.detach(), **reward_sums(weight * chosen, weight * rejected, valid),
               "log_odds_ratio": (ratio.detach() * valid).sum(), "log_odds": (log_odds.detach() * valid).sum()}
    return loss, metrics


class Orpo(PreferenceAlgorithm[OrpoConfig]):
    config_type = OrpoConfig
    full_sequence = True

    def count(self, rows: list[dict[str, Any]]) -> dict[str, float]:
        """The batch's denominators: the chosen sequences' tokens after the first (the NLL's), and pairs."""
        return {"tokens": float(sum(len(row["prompt_ids"]) + len(row["chosen_ids"]) - 1 for row in rows)),
                "pairs": float(len(rows))}

    def batch_loss(self, micro: dict[str, Any], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
                   num_items: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = orpo_loss(logprobs, micro["completion_mask"], micro["sequence_mask"], self.config, num_items)
        return loss, {name: float(value) for name, value in metrics.items()}

    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        pairs = max(sums["pairs"], 1.0)
        return {"nll": sums["nll"] / max(sums["tokens"], 1.0), "log_odds_ratio": sums["log_odds_ratio"] / pairs,
                "log_odds": sums["log_odds"] / pairs, **super().report(sums)}
