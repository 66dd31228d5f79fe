"""What the ranks train on, whatever the algorithm: a rank's share of a step (micro-batches of
tensors and the global denominator of the loss), padded token rows, and the dealing of rows to
ranks.

Every rank must run the same number of forward/backward passes (ZeRO-3 gathers parameters in
each forward, a collective), so a rank with fewer rows gets padding micro-batches whose
tokens are all masked: they add nothing to the loss but keep the collectives in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

Row = TypeVar("Row")


@dataclass
class RankBatch:
    """One rank's share of one step's batch."""

    step: int
    micro_batches: list[dict[str, Any]]
    num_items: Any
    """The global denominator(s) of the loss, all ranks together: a number (GRPO: tokens or
    sequences) or a dict of counts (ORPO: tokens and pairs). The algorithm that collated the
    batch reads it; the loop only asks :func:`has_items`."""
    samples: int
    """Real (not padding) rows on this rank."""


def has_items(num_items: Any) -> bool:
    """Whether a batch with these global counts has anything to learn from."""
    if isinstance(num_items, dict):
        return any(value > 0 for value in num_items.values())
    return num_items > 0


def pad_rows(prompts: list[list[int]], completions: list[list[int]], pad_id: int = 0,
             masks: list[list[float]] | None = None) -> dict[str, Any]:
    """Token rows -> ``input_ids``/``attention_mask`` [B, L] (prompt + completion, right-padded),
    ``prompt_lengths`` [B] and ``completion_mask`` [B, T] (1 on each completion token, or the given
    per-token ``masks``). Column t of a [B, T] tensor is completion token t of its row, the layout
    :func:`actors.learner.policy.token_logprobs` scores."""
    import torch

    length = max(len(p) + len(c) for p, c in zip(prompts, completions))
    columns = max(len(c) for c in completions)
    batch = {
        "input_ids": torch.full((len(prompts), length), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(prompts), length), dtype=torch.long),
        "prompt_lengths": torch.tensor([len(p) for p in prompts]),
        "completion_mask": torch.zeros((len(prompts), columns)),
    }
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        ids = prompt + completion
        batch["input_ids"][row, : len(ids)] = torch.tensor(ids)
        batch["attention_mask"][row, : len(ids)] = 1
        mask = masks[row] if masks is not None else [1.0] * len(completion)
        batch["completion_mask"][row, : len(mask)] = torch.tensor(mask, dtype=torch.float32)
    return batch


def shard(rows: list[Row], world_size: int, micro_batch_size: int) -> list[list[list[Row]]]:
    """Deal the rows round-robin to ``world_size`` ranks and cut each rank's share into the
    same number of micro-batches (some possibly empty: padding)."""
    shares = [rows[rank::world_size] for rank in range(world_size)]
    count = max(1, math.ceil(max(len(share) for share in shares) / micro_batch_size))
    return [[share[index * micro_batch_size:(index + 1) * micro_batch_size] for index in range(count)]
            for share in shares]
