"""Offline data for the learner: a tokenized Ray Data dataset, read by every rank through
``ray.train.get_dataset_shard``, turned into the same :class:`RankBatch` es the online producer makes.

Which rows make step ``s`` is a pure function of (seed, s): epoch ``s // steps_per_epoch`` is a
fresh seeded permutation of all rows, and step ``s`` takes the next ``global_batch_size`` of them
(the last step of an epoch may be smaller). Each rank keeps every ``world``-th row of the step and
cuts its share into micro-batches of ``micro_batch_size`` (gradient accumulation), with the same
number of micro-batches on every rank. A run resumed from the checkpoint of step ``s`` therefore
trains on exactly the rows an uninterrupted run would, mid-epoch included.

The dataset reaches the ranks unsplit (``DataConfig(datasets_to_split=[])``): Ray Data's streaming
split hands blocks to whichever rank asks first, which would make the order, and so the
parameters, depend on timing. Every rank reads the (already tokenized, materialized) rows once.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from pydantic import Field

from actors.config import Config
from actors.learner.experience import RankBatch, shard

if TYPE_CHECKING:
    from actors.learner.algorithms.base import OfflineAlgorithm

ROW_ID = "row_id"
"""The column that numbers the rows 0..N-1 (the order the permutation applies to)."""


class OfflinePlan(Config):
    """How the learner walks an offline dataset."""

    rows: int = Field(ge=1)
    """Rows in the training dataset (after validation)."""

    epochs: int = Field(1, ge=1, le=100_000)
    """Passes over the dataset."""

    global_batch_size: int = Field(16, ge=1, le=1_000_000)
    """Rows per optimizer step, all ranks together; each rank accumulates gradients over
    ceil(global_batch_size / (ranks x micro_batch_size)) micro-batches."""

    seed: int = 0
    """Seeds the shuffle: epoch e is permutation (seed, e) of the rows."""

    shuffle: bool = True
    """Shuffle every epoch; False keeps the dataset's order."""

    heldout: bool = False
    """A dataset shard ``heldout`` is there to score before the first step and after the last."""

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.rows / self.global_batch_size)

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def step_rows(plan: OfflinePlan, step: int) -> list[int]:
    """The row ids that make optimizer step ``step``."""
    epoch, index = divmod(step, plan.steps_per_epoch)
    order = list(range(plan.rows))
    if plan.shuffle:
        random.Random(plan.seed * 1_000_003 + epoch).shuffle(order)
    return order[index * plan.global_batch_size:(index + 1) * plan.global_batch_size]


def read_rows(iterator: Any) -> list[dict[str, Any]]:
    """All rows of a dataset shard (a Ray Data iterator), indexed by their row id."""
    rows = sorted(iterator.iter_rows(), key=lambda row: int(row[ROW_ID]))
    for position, row in enumerate(rows):
        if int(row[ROW_ID]) != position:
            raise ValueError(f"row ids must be 0..N-1 without gaps; row {position} has id {row[ROW_ID]}")
    return [{key: (list(value) if hasattr(value, "__len__") and not isinstance(value, str) else value)
             for key, value in row.items()} for row in rows]


def rank_batch(algorithm: OfflineAlgorithm, rows: list[dict[str, Any]], step: int, rank: int, world: int,
               micro_batch_size: int, pad_id: int) -> RankBatch:
    """This rank's share of ``rows`` (all of the step's rows, every rank's), collated by the algorithm."""
    share = shard(rows, world, micro_batch_size)[rank]
    return RankBatch(step=step, micro_batches=[algorithm.collate(micro, pad_id) for micro in share],
                     num_items=algorithm.count(rows), samples=sum(len(micro) for micro in share))


class OfflineSource:
    """The offline counterpart of the ExperienceProducer, local to each rank."""

    def __init__(self, rows: list[dict[str, Any]], plan: OfflinePlan, algorithm: OfflineAlgorithm, rank: int,
                 world: int, micro_batch_size: int, pad_id: int) -> None:
        if len(rows) != plan.rows:
            raise ValueError(f"the dataset has {len(rows)} rows, the plan {plan.rows}")
        self.rows, self.plan, self.algorithm = rows, plan, algorithm
        self.rank, self.world, self.micro_batch_size, self.pad_id = rank, world, micro_batch_size, pad_id

    def get_batch(self, step: int) -> RankBatch:
        rows = [self.rows[index] for index in step_rows(self.plan, step)]
        return rank_batch(self.algorithm, rows, step, self.rank, self.world, self.micro_batch_size, self.pad_id)


class MetricsBoard:
    """A Ray actor that rank 0 reports each step's metrics (and the held-out evaluations) to and
    the job's driver drains, as it drains the ExperienceProducer's online."""

    def __init__(self) -> None:
        self.finished: list[tuple[int, dict[str, float]]] = []
        self.failures_injected: set[int] = set()

    def finish_step(self, step: int, metrics: dict[str, float]) -> None:
        self.finished.append((step, metrics))

    def drain_metrics(self) -> list[tuple[int, dict[str, float]]]:
        finished, self.finished = self.finished, []
        return finished

    def should_fail(self, step: int) -> bool:
        """Fault injection (LearnerConfig.fail_at_steps): True the first time only."""
        if step in self.failures_injected:
            return False
        self.failures_injected.add(step)
        return True
