"""What the producer hands the learner: scored samples, cut into equal numbers of micro-batches
per rank.

Every rank must run the same number of forward/backward passes (ZeRO-3 gathers parameters in
each forward, a collective), so a rank with fewer samples gets padding micro-batches whose
tokens are all masked: they add nothing to the loss but keep the collectives in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Sample:
    """One completion as the learner trains on it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    rollout_logprobs: list[float]
    advantage: float
    truncated: bool = False
    zero_variance: bool = False


@dataclass
class RankBatch:
    """One rank's share of one step's batch."""

    step: int
    micro_batches: list[dict[str, Any]]
    num_items: float
    """The global denominator of the loss (tokens or sequences of the whole batch, all ranks)."""
    samples: int
    """Real (not padding) samples on this rank."""


def collate(samples: list[Sample], pad_id: int = 0) -> dict[str, Any]:
    """Samples -> padded tensors: ``input_ids``/``attention_mask`` [B, L] (prompt + completion,
    right-padded), ``prompt_lengths`` [B], and per completion token [B, T]: ``completion_mask``,
    ``rollout_logprobs``; per sample: ``advantages``, ``truncated``, ``zero_variance``."""
    import torch

    padding = not samples
    if padding:  # one token, fully masked
        samples = [Sample(prompt_ids=[pad_id], completion_ids=[pad_id], rollout_logprobs=[0.0], advantage=0.0)]
    length = max(len(s.prompt_ids) + len(s.completion_ids) for s in samples)
    columns = max(len(s.completion_ids) for s in samples)
    batch = {
        "input_ids": torch.full((len(samples), length), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(samples), length), dtype=torch.long),
        "prompt_lengths": torch.tensor([len(s.prompt_ids) for s in samples]),
        "completion_mask": torch.zeros((len(samples), columns)),
        "rollout_logprobs": torch.zeros((len(samples), columns)),
        "advantages": torch.tensor([s.advantage for s in samples], dtype=torch.float32),
        "truncated": torch.tensor([s.truncated for s in samples]),
        "zero_variance": torch.tensor([s.zero_variance for s in samples]),
    }
    for row, sample in enumerate(samples):
        ids = sample.prompt_ids + sample.completion_ids
        batch["input_ids"][row, : len(ids)] = torch.tensor(ids)
        batch["attention_mask"][row, : len(ids)] = 1
        if not padding:
            batch["completion_mask"][row, : len(sample.completion_ids)] = 1.0
        batch["rollout_logprobs"][row, : len(sample.rollout_logprobs)] = torch.tensor(sample.rollout_logprobs)
    return batch


def shard(samples: list[Sample], world_size: int, micro_batch_size: int) -> list[list[list[Sample]]]:
    """Deal the samples round-robin to ``world_size`` ranks and cut each rank's share into the
    same number of micro-batches (some possibly empty: padding)."""
    shares = [samples[rank::world_size] for rank in range(world_size)]
    count = max(1, math.ceil(max(len(share) for share in shares) / micro_batch_size))
    return [[share[index * micro_batch_size:(index + 1) * micro_batch_size] for index in range(count)]
            for share in shares]
