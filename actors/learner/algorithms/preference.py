"""What DPO and ORPO share: preference rows (prompt, chosen, rejected) collated as one batch of
2B sequences, the B chosen ones first, as TRL's trainers concatenate them. Not an algorithm."""

from __future__ import annotations

from typing import Any

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
