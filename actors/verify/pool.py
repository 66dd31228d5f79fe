"""VerifierPool: verifier workers (Ray actors) that scale on their own, independently of the GPUs.

Each worker is a :class:`VerifierWorker` with K sandbox slots (K = its share of CPUs). The pool
takes completions as they come (any iterable or async iterable, pulled only as fast as the
workers drain it: backpressure), and yields verdicts as they finish. A worker that dies has its
batches re-run elsewhere; every input item comes out exactly once. The pool grows when the
backlog per slot passes a threshold and shrinks when workers sit idle (between ``min_workers``
and ``max_workers``), and ``resize(n)`` sets the size by hand. Workers may be pinned to nodes
that advertise the custom resource ``verifier`` (the verifier worker group on KubeRay).

Written by hand because Ray's ActorPool has no replacement of dead actors, no resizing and no
backpressure from a stream.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.worker import VerifierWorker

log = logging.getLogger("qvr.pool")


class PoolConfig(Config):
    min_workers: int = Field(1, ge=0, le=10_000)
    """Fewest workers the autoscaler keeps."""

    max_workers: int = Field(4, ge=1, le=10_000)
    """Most workers the autoscaler starts."""

    initial_workers: int | None = Field(None, ge=0)
    """Workers at start; None = min_workers (at least 1)."""

    slots_per_worker: int = Field(1, ge=1, le=512)
    """Sandbox slots (zygotes) per worker."""

    cpus_per_slot: float = Field(1.0, gt=0, le=64)
    """Ray CPUs per slot; fractional on small machines so other actors stay schedulable."""

    use_verifier_resource: bool = False
    """Ask for the custom resource ``verifier`` (one unit per slot), so workers land only on
    verifier nodes."""

    batch_size: int = Field(4, ge=1, le=10_000)
    """Jobs per call to a worker."""

    batches_per_worker: int = Field(2, ge=1, le=64)
    """Calls in flight per worker (the rest waits in the pool's queue)."""

    max_queued: int = Field(256, ge=1)
    """Jobs taken from the input but not yet sent to a worker: beyond this the pool stops
    reading its input (backpressure on the producer)."""

    autoscale: bool = True
    """Grow and shrink with the backlog."""

    scale_up_backlog_per_slot: float = Field(8.0, gt=0)
    """Add a worker when the queued jobs per slot exceed this."""

    scale_down_idle_s: float = Field(30.0, gt=0)
    """Retire a worker that had nothing to do for this long."""

    health_check_s: float = Field(10.0, gt=0)
    """How often workers are pinged; one that does not answer in time is replaced."""

    max_attempts: int = Field(3, ge=1, le=20)
    """Tries of a batch whose worker died before it is reported as an error verdict."""


@dataclass
class _Worker:
    actor: Any
    slots: int
    started: float = field(default_factory=time.monotonic)
    in_flight: set = field(default_factory=set)
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False


class VerifierPool:
    def __init__(self, verifier: VerifierConfig | None = None, config: PoolConfig | None = None) -> None:
        import ray

        self.verifier = verifier or VerifierConfig()
        self.config = config or PoolConfig()
        if self.config.max_workers < self.config.min_workers:
            raise ValueError("pool.max_workers must be >= pool.min_workers")
        options: dict[str, Any] = {"num_cpus": self.config.slots_per_worker * self.config.cpus_per_slot,
                                   "max_restarts": 0}
        if self.config.use_verifier_resource:
            options["resources"] = {"verifier": self.config.slots_per_worker}
        self._actor_class = ray.remote(VerifierWorker).options(**options)
        self.workers: dict[int, _Worker] = {}
        self._next_id = 0
        self.target = max(1, self.config.initial_workers if self.config.initial_workers is not None
                          else self.config.min_workers)
        self.metrics = _PoolMetrics()
        self.events: list[tuple[float, str, int]] = []  # (time, what, workers) for tests and reports
        self._reconcile()

    # ---------------------------------------------------------------- size

    def resize(self, workers: int) -> None:
        """Set the number of workers now (the autoscaler moves it again within its bounds)."""
        if workers < 0:
            raise ValueError("a pool cannot have fewer than 0 workers")
        self.target = workers
        self._reconcile()

    def live_workers(self) -> int:
        return sum(not worker.retiring for worker in self.workers.values())

    def _reconcile(self) -> None:
        import ray

        while self.live_workers() < self.target:
            worker_id, self._next_id = self._next_id, self._next_id + 1
            self.workers[worker_id] = _Worker(self._actor_class.remote(self.verifier, self.config.slots_per_worker),
                                              self.config.slots_per_worker)
            self.events.append((time.monotonic(), "start", self.live_workers()))
        live = sorted((w for w in self.workers.items() if not w[1].retiring), key=lambda item: len(item[1].in_flight))
        for worker_id, worker in live[: max(0, self.live_workers() - self.target)]:
            worker.retiring = True  # finishes what it holds, then goes
            self.events.append((time.monotonic(), "retire", self.live_workers()))
        for worker_id, worker in list(self.workers.items()):
            if worker.retiring and not worker.in_flight:
                ray.kill(worker.actor)
                del self.workers[worker_id]
        self.metrics.workers(self.live_workers())

    def _autoscale(self, backlog: int) -> None:
        if not self.config.autoscale:
            return
        slots = max(1, sum(w.slots for w in self.workers.values() if not w.retiring))
        now = time.monotonic()
        if backlog / slots > self.config.scale_up_backlog_per_slot and self.target < self.config.max_workers:
            self.target += 1
        elif backlog == 0 and self.target > max(self.config.min_workers, 1):
            idle = [w for w in self.workers.values() if not w.retiring and not w.in_flight
                    and now - w.idle_since > self.config.scale_down_idle_s]
            if idle:
                self.target -= 1
        self._reconcile()

    # ---------------------------------------------------------------- work

    def verify(self, jobs: list[VerificationJob]) -> list[Verdict]:
        """Synchronous convenience: verdicts in input order."""

        async def collect() -> list[Verdict]:
            return [verdict async for verdict in self.submit(jobs)]

        order = {(job.task.task_id, job.sample_idx): index for index, job in enumerate(jobs)}
        verdicts = asyncio.run(collect())
        return sorted(verdicts, key=lambda verdict: order.get((verdict.task_id, verdict.sample_idx), 0))

    async def submit(self, jobs: Iterable[VerificationJob] | AsyncIterable[VerificationJob]) -> AsyncIterator[Verdict]:
        """Verdicts as they finish; every input job yields exactly one."""
        from ray.exceptions import RayActorError

        source = _aiter(jobs)
        exhausted = False
        queue: collections.deque[tuple[int, VerificationJob, int]] = collections.deque()
        futures: dict[asyncio.Future, tuple[int, list[tuple[int, VerificationJob, int]]]] = {}
        emitted: set[int] = set()
        taken = 0
        last_health = time.monotonic()
        while True:
            while not exhausted and len(queue) < self.config.max_queued:
                try:
                    job = await source.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    break
                queue.append((taken, job, 1))
                taken += 1
            self._autoscale(len(queue))
            self.metrics.queue(len(queue))
            self._dispatch(queue, futures)
            if not futures:
                if exhausted and not queue:
                    return
                await asyncio.sleep(0.05)  # workers starting; nothing to wait on yet
                continue
            done, _ = await asyncio.wait(list(futures), timeout=self.config.health_check_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                worker_id, batch = futures.pop(future)
                worker = self.workers.get(worker_id)
                if worker is not None:
                    worker.in_flight.discard(future)
                    if not worker.in_flight:
                        worker.idle_since = time.monotonic()
                try:
                    _, verdicts = future.result()
                except (RayActorError, Exception) as error:  # noqa: BLE001 - any failure: re-run elsewhere
                    self._lost(worker_id, batch, queue, error)
                    for verdict in self._exhausted(batch, emitted):
                        yield verdict
                    continue
                for (index, _, _), verdict in zip(batch, verdicts):
                    if index not in emitted:
                        emitted.add(index)
                        self.metrics.verified()
                        yield verdict
            if time.monotonic() - last_health > self.config.health_check_s:
                last_health = time.monotonic()
                await self._health_check(futures, queue)

    def _dispatch(self, queue: collections.deque, futures: dict) -> None:
        for worker_id, worker in list(self.workers.items()):
            while queue and not worker.retiring and len(worker.in_flight) < self.config.batches_per_worker:
                batch = [queue.popleft() for _ in range(min(self.config.batch_size, len(queue)))]
                ref = worker.actor.verify_batch.remote([index for index, _, _ in batch], [job for _, job, _ in batch])
                future = asyncio.wrap_future(ref.future())
                futures[future] = (worker_id, batch)
                worker.in_flight.add(future)
        self._reconcile()

    def _lost(self, worker_id: int, batch: list, queue: collections.deque, error: BaseException) -> None:
        """A worker failed a batch: replace it and put the batch back at the front."""
        import ray

        worker = self.workers.pop(worker_id, None)
        if worker is not None:
            log.warning("verifier worker %d failed (%s); replacing it and re-running %d jobs", worker_id,
                        type(error).__name__, len(batch))
            self.events.append((time.monotonic(), "lost", self.live_workers()))
            try:
                ray.kill(worker.actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        for index, job, attempts in reversed(batch):
            if attempts < self.config.max_attempts:
                queue.appendleft((index, job, attempts + 1))
        self._reconcile()

    def _exhausted(self, batch: list, emitted: set[int]) -> list[Verdict]:
        verdicts = []
        for index, job, attempts in batch:
            if attempts >= self.config.max_attempts and index not in emitted:
                emitted.add(index)
                verdicts.append(Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx, status="error",
                                        tests_passed=0, tests_total=1, reward=0.0,
                                        stderr_tail=f"reason: verifier workers died {attempts} times on this job"))
        return verdicts

    async def _health_check(self, futures: dict, queue: collections.deque) -> None:
        pings = {worker_id: asyncio.wrap_future(worker.actor.ping.remote().future())
                 for worker_id, worker in self.workers.items() if time.monotonic() - worker.started > 60}
        if not pings:
            return
        done, _ = await asyncio.wait(list(pings.values()), timeout=self.config.health_check_s)
        for worker_id, ping in pings.items():
            if ping in done and ping.exception() is None:
                continue
            log.warning("verifier worker %d failed its health check", worker_id)
            for future, (owner, batch) in list(futures.items()):
                if owner == worker_id:
                    del futures[future]
                    self._lost(worker_id, batch, queue, TimeoutError("health check"))

    def close(self) -> None:
        import ray

        for worker in self.workers.values():
            try:
                ray.kill(worker.actor)
            except Exception:  # noqa: BLE001
                pass
        self.workers.clear()


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item


class _PoolMetrics:
    """Ray metrics (Prometheus): queue depth, workers, verifications; inert where Ray has none."""

    def __init__(self) -> None:
        try:
            from ray.util import metrics

            self._queue = metrics.Gauge("qvr_verifier_queue_depth", "verifications waiting for a slot")
            self._workers = metrics.Gauge("qvr_verifier_workers", "live verifier workers")
            self._done = metrics.Counter("qvr_verifications_total", "verifications finished")
        except Exception:  # noqa: BLE001
            self._queue = self._workers = self._done = None

    def queue(self, depth: int) -> None:
        if self._queue:
            self._queue.set(depth)

    def workers(self, count: int) -> None:
        if self._workers:
            self._workers.set(count)

    def verified(self) -> None:
        if self._done:
            self._done.inc()
