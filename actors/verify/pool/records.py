"""The records :class:`~actors.verify.pool.pool.VerifierPool` keeps its state in: a job in the pool
(:class:`Item`), a call to a worker (:class:`Batch`), a worker (:class:`Worker`), a task's
isolation calibration (:class:`Calibration`) and one call to the pool (:class:`Run`), with the
two helpers that read or drop a batch's answer (:func:`batch_answer`, :func:`drop_answer`).
Internal to the pool.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actors.contracts import Task, Verdict

if TYPE_CHECKING:
    from actors.verify.executor import VerificationJob


@dataclass(eq=False)
class Item:
    """One job in the pool: an input (key = its index) or a calibration run (key = a tuple)."""

    key: Any
    job: VerificationJob
    tries: int = 0
    lost: str = ""
    """Why its last worker was lost."""
    cache_key: str | None = None
    """Set while it leads the verdict cache's flight for its key (identical jobs wait for it)."""


@dataclass(eq=False)
class Batch:
    run: Run
    worker_id: int
    items: list[Item]
    future: Any = None
    """The asyncio future of the worker's answer (bound to the run's event loop)."""
    reply: Any = None
    """The same answer as Ray's thread sees it: set as soon as it arrives, before the event loop
    hears of it (what a lost worker's batches are judged by)."""
    started: float | None = None
    """When its worker could start on it (estimated: it was sent to an idle worker, or the batch
    before it on that worker finished)."""
    alone: bool = False
    """A re-run: sent to an idle worker, and nothing goes to that worker until it is answered."""


@dataclass(eq=False)
class Worker:
    actor: Any
    slots: int
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    """Answered a ping: its zygotes are up. Only ready workers get jobs."""
    ping: Any = None
    """The outstanding ping (a concurrent future: loop-agnostic), or None."""
    ping_deadline: float = 0.0
    answered: float = 0.0
    in_flight: list[Batch] = field(default_factory=list)
    """Its batches, oldest first (a sync actor runs them in this order)."""
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False
    autoscaled: bool = False


@dataclass(eq=False)
class Calibration:
    task: Task
    held: list[Item] = field(default_factory=list)
    split: Verdict | None = None


@dataclass(eq=False)
class Run:
    """The state of one call (pairs / submit / run / verify)."""

    ready: collections.deque = field(default_factory=collections.deque)
    """Items waiting for a worker, calibration and re-runs first."""
    calibrating: dict[tuple, Calibration] = field(default_factory=dict)
    """The calibrations under way, by :func:`actors.verify.pool.pool.calibration_key`."""
    batches: dict[Any, Batch] = field(default_factory=dict)
    """asyncio future -> batch, for what is in flight."""
    open: dict[int, VerificationJob] = field(default_factory=dict)
    """Inputs taken and not yet answered."""
    outbox: collections.deque = field(default_factory=collections.deque)
    """(input index, job, verdict) ready to go to the caller."""
    keyed: bool = True
    """The caller tells verdicts apart by (task_id, sample_idx): a key given twice is an error."""
    keys: set = field(default_factory=set)
    taken: int = 0
    waiting: int = 0
    """Inputs in ``ready`` or held for calibration (what max_queued bounds)."""
    reading: bool = True
    failed: BaseException | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)

    def backlog(self) -> int:
        return len(self.ready) + sum(len(calibration.held) for calibration in self.calibrating.values())


def batch_answer(batch: Batch) -> list[Verdict] | None:
    """The batch's verdicts if its worker answered it in full, else None."""
    future = batch.reply
    if not future.done() or future.cancelled() or future.exception() is not None:
        return None
    _, verdicts = future.result()
    return verdicts if len(verdicts) == len(batch.items) else None


def drop_answer(batch: Batch) -> None:
    """Stop waiting for a batch: its answer (or its worker's death) is dropped quietly."""
    batch.run.batches.pop(batch.future, None)
    batch.future.add_done_callback(lambda future: future.cancelled() or future.exception())
