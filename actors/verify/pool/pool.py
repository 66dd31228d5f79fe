"""VerifierPool: the verification service. Every job that verifies (verify, synth, grpo, ...) goes
through it, and every input comes out exactly once, as a verdict, whatever fails.

The pool runs :class:`VerifierWorker` Ray actors with K sandbox slots each and owns:

- **each verdict to its job**: :meth:`VerifierPool.pairs` hands every job back with its verdict
  (and the ``context`` its caller set on it), so callers join nothing; the sample-and-verify stream
  (actors/rollout/stream.py) verifies through it. :meth:`VerifierPool.run` gives verdicts in input
  order; :meth:`VerifierPool.verify` pairs completions with their tasks by task_id and extracts the
  code (:func:`actors.verify.verifier.pair_jobs`); :meth:`VerifierPool.submit` yields bare verdicts
  as they finish, for callers that know each job by its (task_id, sample_idx): there a key that
  appears twice in one call is an error.
- **isolation calibration**: a job whose task is not marked (``metadata["isolation"]``) waits
  while the task's reference runs split, then shared where split fails (the rule of
  :func:`actors.verify.verifier.calibrate_isolation`); the task is then marked in place, once per
  pool and task (tasks that share an id but not their tests, QHE's and QHE-hard's, are calibrated
  apart). A job that *is* the reference is answered by that calibration, not run again.
- **hiding the task sources**: ``hidden_paths`` (task files, the run directory) are covered in
  every sandbox; a zygote's mount plan is fixed when it starts, so they are given at construction.
- **backpressure**: the input (any iterable or async iterable, e.g. completions as the rollout
  produces them) is read on its own task, only while fewer than ``max_queued`` of its jobs wait.
- **faults**: workers answer pings on their own thread (a Ray concurrency group), so a worker busy
  with a long batch is never taken for dead; one that dies, does not answer, or holds a batch
  far past what its jobs' timeouts allow is replaced and its jobs re-run. A job that has lost its
  worker ``max_attempts`` times comes out as an ``error`` verdict naming the attempts. Every
  unanswered batch of a lost worker counts as an attempt: which of them was running cannot be
  known from outside (a worker can answer one batch and die before the answer leaves it), and a
  guess could give the job that kills its worker more than ``max_attempts`` workers. A re-run job
  goes alone to an idle worker and nothing is queued behind it, so only its own death counts
  against it again.

Workers grow with the backlog and shrink when idle if ``autoscale`` is on, and ``resize(n)`` sets
the size by hand. While a worker waits for a node with room, the pool asks Ray's autoscaler for
room for all of them (``request_capacity``), so KubeRay adds verifier pods. Written by hand
because Ray's ActorPool has no replacement of dead actors, no resizing and no backpressure from a
stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.contracts import Completion, Task, Verdict
from actors.verify.cache.cache import VerdictCache, answer_for
from actors.verify.cache.figures import CacheTally
from actors.verify.config import VerifierConfig
from actors.verify.noise.references import mark_reference, reference_runs
from actors.verify.pool.config import PoolConfig
from actors.verify.pool.metrics import PoolMetrics
from actors.verify.pool.records import Batch, Calibration, Item, Run, Worker, batch_answer, drop_answer

if TYPE_CHECKING:  # the sandbox (qiskit) is imported by the workers, not by whoever reads PoolConfig
    from actors.verify.executor import VerificationJob

log = logging.getLogger("qvr.pool")

HEALTH_GROUP = "health"
"""The Ray concurrency group (one thread of its own) that answers pings while a batch runs."""


class VerifierPool:
    """The verification service; see the module's docstring. ``worker_class`` is a
    :class:`VerifierWorker` subclass for tests (fault injection)."""

    def __init__(self, verifier: VerifierConfig | None = None, config: PoolConfig | None = None,
                 hidden_paths: Iterable[str | Path] = (), worker_class: type | None = None) -> None:
        import ray

        from actors.verify.pool.worker import VerifierWorker

        self.verifier = (verifier or VerifierConfig()).model_copy(deep=True)
        self.config = config or PoolConfig()
        self.cache = VerdictCache(self.config.cache, self.verifier) if self.config.cache.enabled else None
        hidden = [str(Path(path).resolve()) for path in hidden_paths if path]
        if self.cache is not None:
            hidden.append(str(self.cache.path.parent))
        self.verifier.sandbox.hidden_paths = list(dict.fromkeys([*self.verifier.sandbox.hidden_paths, *hidden]))
        options: dict[str, Any] = {"num_cpus": self.config.slots_per_worker * self.config.cpus_per_slot,
                                   "max_restarts": 0}
        if self.config.use_verifier_resource:
            options["resources"] = {"verifier": self.config.slots_per_worker}
        self._actor_class = ray.remote(concurrency_groups={HEALTH_GROUP: 1})(worker_class or VerifierWorker).options(
            **options)
        self.workers: dict[int, Worker] = {}
        self._next_id = 0
        self.target = self.config.workers
        self.modes: dict[tuple, str] = {}
        """Isolation modes this pool calibrated, by :func:`calibration_key`."""
        self.metrics = PoolMetrics()
        self.events: list[tuple[float, str, int]] = []  # (time, what, workers) for tests and reports
        self._runs: set[Run] = set()
        self._start_failures: list[str] = []
        self._requested = 0
        """Worker bundles asked of the autoscaler and not yet withdrawn."""
        self.tally = CacheTally()
        """Verdicts this pool handed out, and those the cache answered (:meth:`cache_figures`)."""
        self._reconcile()

    # ---------------------------------------------------------------- the service

    def verify(self, tasks: Iterable[Task], completions: Iterable[Completion]) -> list[Verdict]:
        """Completions joined to their tasks by task_id, code extracted; verdicts in completion order."""
        from actors.verify.verifier import pair_jobs

        return self.run(pair_jobs(tasks, completions))

    def run(self, jobs: Iterable[VerificationJob]) -> list[Verdict]:
        """Synchronous: one verdict per job, in input order."""
        jobs = list(jobs)

        async def collect() -> list[tuple[int, VerificationJob, Verdict]]:
            return [answer async for answer in self._stream(jobs)]

        verdicts: list[Verdict | None] = [None] * len(jobs)
        for index, _, verdict in asyncio.run(collect()):
            verdicts[index] = verdict
        return verdicts  # type: ignore[return-value]

    async def pairs(self, jobs: Iterable[VerificationJob] | AsyncIterable[VerificationJob]
                    ) -> AsyncIterator[tuple[VerificationJob, Verdict]]:
        """``(job, verdict)`` as each finishes, for jobs as they come (any iterable or async
        iterable): every input job comes back exactly once, itself, with the ``context`` its caller
        set. Nothing is joined by key, so (task_id, sample_idx) may repeat within one call."""
        async for _, job, verdict in self._stream(jobs, keyed=False):
            yield job, verdict

    async def submit(self, jobs: Iterable[VerificationJob] | AsyncIterable[VerificationJob]) -> AsyncIterator[Verdict]:
        """Verdicts as they finish; every input job yields exactly one, known by its (task_id,
        sample_idx) (unique within the call)."""
        async for _, _, verdict in self._stream(jobs):
            yield verdict

    def cache_figures(self) -> dict[str, float]:
        """The verdict cache's figures over every verdict this pool handed out (jobs report them)."""
        return self.tally.figures()

    # ---------------------------------------------------------------- size

    def resize(self, workers: int) -> None:
        """Set the number of workers now (the autoscaler, if on, moves it again within its bounds)."""
        if workers < 0:
            raise ValueError("a pool cannot have fewer than 0 workers")
        self.target = workers
        self._reconcile()

    def live_workers(self) -> int:
        return sum(not worker.retiring for worker in self.workers.values())

    def _reconcile(self, autoscaled: bool = False) -> None:
        import ray

        while self.live_workers() < self.target:
            worker_id, self._next_id = self._next_id, self._next_id + 1
            worker = Worker(self._actor_class.remote(self.verifier, self.config.slots_per_worker),
                             self.config.slots_per_worker, autoscaled=autoscaled)
            self._ping(worker, self.config.health_grace_s)
            self.workers[worker_id] = worker
            self.events.append((time.monotonic(), "start", self.live_workers()))
        live = sorted((item for item in self.workers.items() if not item[1].retiring),
                      key=lambda item: (item[1].ready, len(item[1].in_flight)))
        for _, worker in live[: max(0, self.live_workers() - self.target)]:
            worker.retiring = True  # finishes what it holds, then goes
            self.events.append((time.monotonic(), "retire", self.live_workers()))
        for worker_id, worker in list(self.workers.items()):
            if worker.retiring and not worker.in_flight:
                _kill(ray, worker.actor)
                del self.workers[worker_id]
        self.metrics.workers(self.live_workers())

    def _autoscale(self, backlog: int) -> None:
        if not self.config.autoscale:
            return
        live = [worker for worker in self.workers.values() if not worker.retiring]
        slots = max(1, sum(worker.slots for worker in live))
        now = time.monotonic()
        if (backlog / slots > self.config.scale_up_backlog_per_slot and self.target < self.config.max_workers
                and all(worker.ready for worker in live)):  # one start at a time: it may not fit anywhere
            self.target += 1
            self._reconcile(autoscaled=True)
        elif backlog == 0 and self.target > max(self.config.min_workers, 1):
            if any(now - worker.idle_since > self.config.scale_down_idle_s and not worker.in_flight for worker in live):
                self.target -= 1
                self._reconcile()

    # ---------------------------------------------------------------- health

    def _ping(self, worker: Worker, within_s: float) -> None:
        worker.ping = worker.actor.ping.options(concurrency_group=HEALTH_GROUP).remote().future()
        worker.ping_deadline = time.monotonic() + within_s

    def _request_capacity(self) -> None:
        """Ask the autoscaler for room for every live worker while one has not started; withdraw
        the request once all have (or none is left)."""
        if not self.config.request_capacity:
            return
        live = [worker for worker in self.workers.values() if not worker.retiring]
        wanted = len(live) if any(not worker.ready for worker in live) else 0
        if wanted != self._requested:
            self._ask_autoscaler(wanted)

    def _ask_autoscaler(self, bundles: int) -> None:
        from ray.autoscaler.sdk import request_resources

        bundle: dict[str, float] = {"CPU": self.config.slots_per_worker * self.config.cpus_per_slot}
        if self.config.use_verifier_resource:
            bundle["verifier"] = float(self.config.slots_per_worker)
        try:
            request_resources(bundles=[dict(bundle) for _ in range(bundles)])  # [] withdraws
        except Exception as error:  # noqa: BLE001 - a hint to the autoscaler; the pool works without it
            log.warning("could not ask Ray's autoscaler for %d verifier worker(s): %s", bundles, error)
            return
        self._requested = bundles
        self.events.append((time.monotonic(), "request", bundles))

    def _check_health(self) -> None:
        now = time.monotonic()
        for worker_id, worker in list(self.workers.items()):
            if worker.ping is not None and worker.ping.done():
                error = worker.ping.exception()
                worker.ping = None
                if error is not None:
                    self._lose(worker_id, f"it died ({type(error).__name__})")
                    if not worker.ready:
                        self._start_failed(f"{type(error).__name__}: {error}")
                    continue
                if not worker.ready:
                    worker.ready, worker.idle_since = True, now
                    self._start_failures.clear()
                    self.events.append((now, "ready", self.live_workers()))
                worker.answered = now
            if worker.ping is not None and now > worker.ping_deadline:
                if worker.ready:
                    self._lose(worker_id, f"it did not answer a ping within pool.health_check_s "
                                          f"({self.config.health_check_s:g} s)")
                elif worker.autoscaled and self.config.autoscale and self.target > max(self.config.min_workers, 1):
                    log.warning("verifier worker %d added by the autoscaler did not start within "
                                "pool.health_grace_s (%g s): the pool stays at %d", worker_id,
                                self.config.health_grace_s, self.target - 1)
                    self.target -= 1
                    self._lose(worker_id, "it did not start in time", replace_it=False)
                else:
                    self._lose(worker_id, f"it did not answer its first ping within pool.health_grace_s "
                                          f"({self.config.health_grace_s:g} s)")
                continue
            if worker.ready and worker.ping is None and now - worker.answered >= self.config.health_check_s:
                self._ping(worker, self.config.health_check_s)
            if worker.in_flight and worker.in_flight[0].started is not None:
                oldest = worker.in_flight[0]
                allowed = self._batch_allowance(oldest, worker.slots)
                if now - oldest.started > allowed:
                    self._lose(worker_id, f"its batch of {len(oldest.items)} job(s) ran {now - oldest.started:.0f} s, "
                                          f"past the {allowed:.0f} s its jobs' timeouts allow")

    def _batch_allowance(self, batch: Batch, slots: int) -> float:
        """The longest a healthy worker can take on a batch: rounds of jobs over its slots, each
        round a candidate child and a checker child (split) under verifier.timeout_s, with a
        minute of margin for forks and a zygote restart. QPU jobs wait in the gateway's queues
        (not counted against their timeout): no limit."""
        if self.verifier.qpu_gateway and any(item.job.task.requires_qpu for item in batch.items):
            return math.inf
        return math.ceil(len(batch.items) / max(1, slots)) * (2 * self.verifier.timeout_s + 60) + 60

    def _start_failed(self, error: str) -> None:
        self._start_failures.append(error)
        if len(self._start_failures) >= max(3, self.config.max_attempts):
            failures, self._start_failures = self._start_failures, []
            raise RuntimeError(f"verifier workers fail to start ({len(failures)} in a row); the last: {failures[-1][-3000:]}")

    def _lose(self, worker_id: int, reason: str, replace_it: bool = True) -> None:
        """Kill a worker, put the jobs it held back in their runs' queues, start a replacement."""
        import ray

        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return
        if replace_it:
            log.warning("verifier worker %d lost: %s; re-running its %d job(s)", worker_id, reason,
                        sum(len(batch.items) for batch in worker.in_flight))
        self.events.append((time.monotonic(), "lost", self.live_workers()))
        _kill(ray, worker.actor)
        in_flight, worker.in_flight = worker.in_flight, []
        for batch in in_flight:
            verdicts = batch_answer(batch)
            if verdicts is not None:  # answered before the worker went, not yet read: it stands
                batch.run.batches.pop(batch.future, None)
                self._accept(batch, verdicts)
                continue
            drop_answer(batch)  # its answer, if one still comes
            self._requeue(batch, f"verifier worker {worker_id}: {reason}")
        self._reconcile()

    def _requeue(self, batch: Batch, reason: str) -> None:
        run = batch.run
        for item in reversed(batch.items):
            item.lost = reason
            if item.tries >= self.config.max_attempts:
                self._deliver(run, item, self._exhausted(item))
            else:
                self._enqueue(run, item, front=True)
        run.wake.set()

    def _exhausted(self, item: Item) -> Verdict:
        from actors.verify.executor import make_verdict

        reason = (f"no verdict after {item.tries} attempts (pool.max_attempts={self.config.max_attempts}): "
                  f"the verifier worker was lost each time; last: {item.lost}")
        return make_verdict(item.job, {"status": "error", "reason": reason}, self.verifier, 0.0)

    # ---------------------------------------------------------------- work

    async def _stream(self, jobs: Iterable[VerificationJob] | AsyncIterable[VerificationJob], keyed: bool = True
                      ) -> AsyncIterator[tuple[int, VerificationJob, Verdict]]:
        """(input index, job, verdict) as each finishes. ``keyed``: the caller tells verdicts apart
        by (task_id, sample_idx), so a key given twice is an error."""
        run = Run(keyed=keyed)
        self._runs.add(run)
        reader = asyncio.create_task(self._read(jobs, run))
        wake: asyncio.Task | None = None
        tick = min(1.0, self.config.health_check_s / 4)
        try:
            while True:
                if wake is None or wake.done():  # before looking at the queue: no input slips past it
                    run.wake.clear()
                    wake = asyncio.ensure_future(run.wake.wait())
                self._check_health()
                self._autoscale(sum(other.backlog() for other in self._runs))
                self._request_capacity()
                self.metrics.queue(run.backlog())
                self._dispatch(run)
                while run.outbox:
                    yield run.outbox.popleft()
                if run.failed is not None:
                    raise run.failed
                if not run.reading and not run.ready and not run.calibrating and not run.batches:
                    for index, job in list(run.open.items()):  # unreachable unless the pool has a bug
                        log.error("the pool lost track of %s#%d; reporting it as an error", job.task.task_id,
                                  job.sample_idx)
                        yield index, job, self._exhausted(Item(index, job, 0, "lost track of by the pool (a bug)"))
                    return
                done, _ = await asyncio.wait([*run.batches, wake], timeout=tick, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    batch = run.batches.pop(future, None)
                    if batch is not None:
                        self._finished(batch, future)
        finally:
            reader.cancel()
            if wake is not None:
                wake.cancel()
            self._grounded(run.ready)
            for batch in list(run.batches.values()):  # abandoned (the caller stopped, or an error)
                self._grounded(batch.items)
                drop_answer(batch)
                worker = self.workers.get(batch.worker_id)
                if worker is not None and batch in worker.in_flight:
                    worker.in_flight.remove(batch)
            self._runs.discard(run)

    async def _read(self, jobs: Iterable[VerificationJob] | AsyncIterable[VerificationJob], run: Run) -> None:
        """Take inputs while fewer than max_queued wait (backpressure)."""
        try:
            async for job in _aiter(jobs):
                while run.waiting >= self.config.max_queued:
                    run.room.clear()
                    await run.room.wait()
                if run.keyed:
                    key = (job.task.task_id, job.sample_idx)
                    if key in run.keys:
                        raise ValueError(f"{key[0]}#{key[1]} appears twice in one call: verdicts are joined by "
                                         "(task_id, sample_idx)")
                    run.keys.add(key)
                index, run.taken = run.taken, run.taken + 1
                run.open[index] = job
                self._intake(run, Item(index, job))
                run.wake.set()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - raised to the caller by _stream
            run.failed = error
        finally:
            run.reading = False
            run.wake.set()

    def _intake(self, run: Run, item: Item) -> None:
        """Queue an input, or hold it until its task's isolation mode is known."""
        task = item.job.task
        key = calibration_key(task)
        if "isolation" not in task.metadata and key in self.modes:
            task.metadata["isolation"] = self.modes[key]
        if not self._needs_calibration(item.job):
            self._enqueue(run, item)
            return
        run.waiting += 1
        calibration = run.calibrating.get(key)
        if calibration is not None:
            calibration.held.append(item)
            return
        calibration = run.calibrating[key] = Calibration(task, held=[item])
        self._calibrate(run, task, "split")  # a cached reference verdict answers it at once

    def _needs_calibration(self, job: VerificationJob) -> bool:
        task = job.task
        return (self.verifier.isolation == "auto" and "isolation" not in task.metadata and job.code is not None
                and task.reference_solution is not None and not (self.verifier.qpu_gateway and task.requires_qpu))

    def _calibrate(self, run: Run, task: Task, mode: str) -> None:
        from actors.verify.executor import VerificationJob

        job = VerificationJob(replace(task, metadata={**task.metadata, "isolation": mode}), task.reference_solution, 0,
                              runs_at_least=reference_runs(task, self.verifier.noise))  # the flaky-reference check
        self._enqueue(run, Item(("calibrate", calibration_key(task), mode), job), front=True)

    def _calibrated(self, run: Run, key: tuple, mode: str, verdict: Verdict) -> None:
        """Split passed (or timed out: load is no reason for the weaker mode): split. Split
        failed: try shared; shared passed: shared, else split (the reference fails either way).
        Then the held jobs go, and the reference's own jobs are answered by the verdict in the
        chosen mode."""
        from actors.verify.verifier import needs_shared_try

        calibration = run.calibrating[key]
        if mode == "split" and needs_shared_try(verdict):
            calibration.split = verdict
            self._calibrate(run, calibration.task, "shared")
            return
        chosen = "shared" if mode == "shared" and verdict.status == "passed" else "split"
        reference = verdict if chosen == mode else calibration.split
        del run.calibrating[key]
        self.modes[key] = chosen
        calibration.task.metadata["isolation"] = chosen
        mark_reference([calibration.task, *(item.job.task for item in calibration.held)], reference)
        release = []
        for item in calibration.held:
            run.waiting -= 1
            item.job.task.metadata["isolation"] = chosen
            job = item.job
            if job.code == job.task.reference_solution and job.text in (None, job.code):
                self._emit(run, item.key, replace(reference, task_id=job.task.task_id, sample_idx=job.sample_idx))
            else:
                release.append(item)
        for item in reversed(release):
            self._enqueue(run, item, front=True)
        run.room.set()

    def _enqueue(self, run: Run, item: Item, front: bool = False) -> None:
        if self.cache is not None and item.tries == 0 and item.cache_key is None and self._answered(run, item):
            return
        if isinstance(item.key, int):
            run.waiting += 1
        if front:
            run.ready.appendleft(item)
        else:
            run.ready.append(item)

    def _answered(self, run: Run, item: Item) -> bool:
        """Answer the item from the cache, or park it behind its identical twin in flight; else it
        leads its key's flight and runs."""
        key = self.cache.key(item.job)
        if key is None:
            return False
        kept = self.cache.lookup(key, item.job)
        if kept is not None:
            self._deliver(run, item, kept)
            return True
        twins = self.cache.flights.get(key)
        if twins is not None:
            twins.append((run, item))
            return True
        self.cache.flights[key] = []
        item.cache_key = key
        return False

    def _landed(self, item: Item, verdict: Verdict) -> None:
        """A flight's leader has its verdict: keep it (if it is kept at all), answer its twins."""
        self.cache.remember(item.cache_key, verdict)
        for run, twin in self.cache.flights.pop(item.cache_key, []):
            self._deliver(run, twin, answer_for(verdict, twin.job))
            run.wake.set()

    def _grounded(self, items: Iterable[Item]) -> None:
        """Leaders that will never land (their call was abandoned): each parked twin queues again
        in its own call, where the first becomes the new leader."""
        for item in list(items):
            if item.cache_key is None or self.cache is None:
                continue
            for run, twin in self.cache.flights.pop(item.cache_key, []):
                self._enqueue(run, twin)
                run.wake.set()

    def _dispatch(self, run: Run) -> None:
        now = time.monotonic()
        for worker_id, worker in list(self.workers.items()):
            while (run.ready and worker.ready and not worker.retiring
                   and len(worker.in_flight) < self.config.batches_per_worker):
                if worker.in_flight and (run.ready[0].tries or worker.in_flight[0].alone):
                    break  # a re-run job waits for an idle worker and has it to itself
                items = [run.ready.popleft()]
                while (items[0].tries == 0 and run.ready and run.ready[0].tries == 0
                       and len(items) < self.config.batch_size):
                    items.append(run.ready.popleft())
                alone = items[0].tries > 0
                for item in items:
                    item.tries += 1
                    if isinstance(item.key, int):
                        run.waiting -= 1
                batch = Batch(run, worker_id, items, started=None if worker.in_flight else now,
                               alone=alone)
                ref = worker.actor.verify_batch.remote(None, [_without_context(item.job) for item in items])
                batch.reply = ref.future()
                batch.future = asyncio.wrap_future(batch.reply)
                run.batches[batch.future] = batch
                worker.in_flight.append(batch)
        run.room.set()

    def _finished(self, batch: Batch, future: asyncio.Future) -> None:
        worker = self.workers.get(batch.worker_id)
        try:
            _, verdicts = future.result()
            if len(verdicts) != len(batch.items):
                raise RuntimeError(f"the worker returned {len(verdicts)} verdicts for {len(batch.items)} jobs")
        except Exception as error:  # noqa: BLE001 - any failure of the call: the worker is replaced
            if worker is not None and batch in worker.in_flight:
                self._lose(batch.worker_id, f"{type(error).__name__}: {str(error)[:300]}")
            else:
                self._requeue(batch, f"verifier worker {batch.worker_id}: {type(error).__name__}")
            return
        if worker is not None and batch in worker.in_flight:
            worker.in_flight.remove(batch)
            if worker.in_flight:
                worker.in_flight[0].started = worker.in_flight[0].started or time.monotonic()
            else:
                worker.idle_since = time.monotonic()
        self._accept(batch, verdicts)
        if worker is not None and worker.retiring:
            self._reconcile()

    def _accept(self, batch: Batch, verdicts: list[Verdict]) -> None:
        for item, verdict in zip(batch.items, verdicts):
            self._deliver(batch.run, item, verdict)

    def _deliver(self, run: Run, item: Item, verdict: Verdict) -> None:
        if item.cache_key is not None and self.cache is not None:
            self._landed(item, verdict)
        if isinstance(item.key, tuple):
            _, key, mode = item.key
            self._calibrated(run, key, mode, verdict)
        else:
            self._emit(run, item.key, verdict)

    def _emit(self, run: Run, index: int, verdict: Verdict) -> None:
        job = run.open.pop(index, None)
        if job is not None:
            self.metrics.verified()
            self.tally.add(verdict.cached, verdict.duration_s)
            run.outbox.append((index, job, verdict))

    def close(self) -> None:
        import ray

        for worker in self.workers.values():
            _kill(ray, worker.actor)
        self.workers.clear()
        if self.cache is not None:
            self.cache.close()
        if self._requested and ray.is_initialized():
            self._ask_autoscaler(0)


def calibration_key(task: Task) -> tuple:
    """What a task's isolation mode is found for: its id and everything its reference's run reads
    (tasks that share an id but not their tests, such as QHE's and QHE-hard's, are two tasks)."""
    return (task.task_id, task.family, task.harness, task.prompt, task.tests, task.entry_point,
            task.reference_solution)


def _without_context(job: VerificationJob) -> VerificationJob:
    """The job as a worker gets it: the caller's context stays in the driver."""
    return job if job.context is None else replace(job, context=None)


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - already gone
        pass


async def _aiter(items: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if hasattr(items, "__aiter__"):
        async for item in items:  # type: ignore[union-attr]
            yield item
    else:
        for item in items:  # type: ignore[union-attr]
            yield item
