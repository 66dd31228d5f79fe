"""What DPO and ORPO share: preference rows (prompt, chosen, rejected) collated as one batch of 2B
sequences, the B chosen ones first, as TRL's trainers concatenate them; per-sequence logprobs; the
implicit rewards' metrics (preference accuracy, margin, rewards of each side) as sums; and
:class:`PreferenceAlgorithm`, the base of both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from actors.learner.algorithms.base import AlgorithmConfigT, OfflineAlgorithm

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch

ROW_FIELDS = ("prompt_ids", "chosen_ids", "rejected_ids")


def collate_pairs(rows: list[dict[str, Any]], pad_id: int = 0, full_sequence: bool = False) -> dict[str, Any]:
    """Pairs -> tensors over 2B rows [chosen..., rejected...] with ``completion_mask`` on each
    answer's tokens. ``full_sequence``: the columns cover every token after the first (prompt
    included) and ``sequence_mask`` marks them all (ORPO's NLL over prompt and answer, as TRL's);
    otherwise the columns are the answer's tokens. No rows: one masked padding pair."""
    import torch

    from actors.learner.experience import pad_rows

    padding = not rows
    if padding:
        rows = [{"prompt_ids": [pad_id], "chosen_ids": [pad_id], "rejected_ids": [pad_id]}]
    prompts, answers = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for row in rows:
            prompts.append(list(row["prompt_ids"]))
            answers.append(list(row[side]))
    if not full_sequence:
        batch = pad_rows(prompts, answers, pad_id, masks=[[0.0]] * len(prompts) if padding else None)
        return batch
    firsts = [p[:1] for p in prompts]
    rests = [p[1:] + a for p, a in zip(prompts, answers)]
    answer_masks = [[0.0] * (len(p) - 1) + [1.0] * len(a) for p, a in zip(prompts, answers)]
    batch = pad_rows(firsts, rests, pad_id, masks=answer_masks)
    batch["sequence_mask"] = (torch.arange(batch["completion_mask"].shape[1])[None, :]
                              < torch.tensor([len(r) for r in rests])[:, None]).float()
    if padding:
        batch["completion_mask"].zero_()
        batch["sequence_mask"].zero_()
    return batch


def sequence_logps(logprobs: Any, mask: Any, average: bool = False) -> Any:
    """Per-row sum (or mean) of token logprobs over ``mask``."""
    m = mask.to(logprobs.dtype)
    total = (logprobs * m).sum(dim=1)
    return total / m.sum(dim=1).clamp(min=1) if average else total


def valid_pairs(answer_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B]: 1 for a real pair, 0 for padding (its chosen answer has no token)."""
    return (answer_mask.chunk(2)[0].sum(dim=1) > 0).to(dtype)


def reward_sums(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, valid: torch.Tensor
                ) -> dict[str, torch.Tensor]:
    """The implicit rewards' sums over the real pairs: pairs, each side's reward, the margin and the
    pairs whose margin is positive (TRL's ``rewards/*`` metrics once divided by the pairs)."""
    margin = (chosen_rewards - rejected_rewards).detach()
    return {"pairs": valid.sum().detach(), "reward_chosen": (chosen_rewards.detach() * valid).sum(),
            "reward_rejected": (rejected_rewards.detach() * valid).sum(), "margin": (margin * valid).sum(),
            "correct": ((margin > 0).to(valid.dtype) * valid).sum()}


class PreferenceAlgorithm(OfflineAlgorithm[AlgorithmConfigT]):
    """An offline algorithm on preference pairs: rows, collation, counts and the reward metrics."""

    row_fields = ROW_FIELDS
    full_sequence: ClassVar[bool] = False
    """Collate every token after the first (ORPO's NLL needs the prompt's), not the answers alone."""

    def collate(self, rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
        return collate_pairs(rows, pad_id, full_sequence=self.full_sequence)

    def count(self, rows: list[dict[str, Any]]) -> Any:
        """The batch's denominator: its pairs."""
        return float(len(rows))

    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        pairs = max(sums["pairs"], 1.0)
        return {"accuracy": sums["correct"] / pairs, "margin": sums["margin"] / pairs,
                "rewards/chosen": sums["reward_chosen"] / pairs, "rewards/rejected": sums["reward_rejected"] / pairs,
                "pairs": sums["pairs"], "trained_tokens": sums["tokens"]}
