"""The QPU gateway: one named, detached Ray actor through which every job reaches a quantum backend.

Each backend has one queue with IBM's limits (pending jobs, jobs per rolling minute, QPU seconds
per rolling window, maximum job size), shared by every caller of every job on the cluster, and
served round-robin across callers so that no caller starves the others. Every submission the
backend receives counts against those limits, retries included: a transient error sends the job
back to its caller's queue after an exponential backoff with jitter, and the retry takes a start
slot of its own, counts as pending while the backend has it, and its run time counts as QPU
seconds. Backends are ``fake`` (qiskit-ibm-runtime's fake backends with their noise models, run
locally, with an optional simulated queue latency) or ``ibm`` (QiskitRuntimeService; the token
comes from an environment variable or a file that the config names, and is read only inside the
gateway: it never enters a sandbox); their runners are in :mod:`actors.verify.qpu.runners`.
:class:`~actors.verify.qpu.evidence.RecordingBackend` is a fake backend that keeps its own record of
what it received (tests and ``qvr bench qpu`` take their evidence from it, not from the gateway).
Each run (and training step) may have a budget of QPU seconds: jobs that would go over it are
refused before the backend sees them (:mod:`actors.verify.qpu.budget`).

Times are in *gateway seconds*: real seconds times ``time_scale``, so tests and benchmarks can run
an hour of IBM's limits in a minute.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from actors.verify.qpu.budget import BudgetLedger, BudgetScope
from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.errors import QpuBudgetExceeded, QpuError, TransientQpuError
from actors.verify.qpu.runners import FakeRunner, IbmRunner

log = logging.getLogger("qvr.qpu")
GATEWAY_NAME = "qvr-qpu-gateway"


class BackendQueue:
    """One backend's queue and limits. Single event loop: no locks needed."""

    def __init__(self, name: str, config: QpuConfig, clock: Any) -> None:
        self.name, self.config, self.clock = name, config, clock
        self.waiting: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self.in_flight = 0  # submissions the backend may have: from the start slot until the runner returns
        self.max_in_flight = 0
        self.sent: dict[int, float | None] = {}  # the last minute's submissions: backend had it since (None: unknown)
        self.history: list[float] = []  # every start, retries included, for reports
        self.backlog: list[bool] = []  # per start: work still waiting after it (until the next start, then)
        self.next_slot = 0.0  # evenly spaced start slots: a late start does not push the rest back
        self.usage: collections.deque[tuple[float, float]] = collections.deque()  # (end, qpu seconds) per submission
        self.runs: collections.deque[float] = collections.deque(maxlen=20)  # recent QPU seconds per submission
        self.wake = asyncio.Event()

    def enqueue(self, caller: str, item: Any, retry: bool = False) -> None:
        """A retry goes to the front of its caller's queue (it is that caller's oldest job); the
        caller still waits its round-robin turn."""
        queue = self.waiting.setdefault(caller, collections.deque())
        if retry:
            queue.appendleft(item)
        else:
            queue.append(item)
        self.wake.set()

    def depth(self) -> int:
        return sum(len(queue) for queue in self.waiting.values())

    def next_item(self, held: Callable[[Any], bool] = lambda item: False) -> Any:
        """Round-robin: the first caller with work (whose next item is not ``held``) goes to the back
        of the line."""
        for caller in list(self.waiting):
            if held(self.waiting[caller][0]):
                continue
            queue = self.waiting.pop(caller)
            item = queue.popleft()
            if queue:
                self.waiting[caller] = queue
            return item
        return None

    def estimate(self) -> float | None:
        """QPU seconds a submission is expected to use: the longest recent run (None: none yet)."""
        return max(self.runs) if self.runs else None

    def acknowledge(self, key: int, at: float) -> None:
        """The backend has submission ``key`` since ``at`` (the runner said so from its thread)."""
        if key in self.sent and self.sent[key] is None:
            self.sent[key] = at
            self.wake.set()

    def wait_needed(self) -> float | None:
        """Gateway seconds until another submission may start (0 = now; None = not before a
        submission in flight ends or is acknowledged)."""
        now = self.clock()
        limits = self.config.limits
        waits = [0.0, self.next_slot - now]
        # Jobs per rolling minute, at the backend: a submission counts from before the call until a
        # minute after the backend acknowledged it, so however long the hop to the backend takes,
        # no minute there holds more than allowed.
        for key, at in list(self.sent.items()):
            if at is not None and at <= now - 60.0:
                del self.sent[key]
        excess = len(self.sent) - max(1, int(limits.jobs_per_minute)) + 1
        if excess > 0:
            known = sorted(at for at in self.sent.values() if at is not None)
            if len(known) < excess:
                return None
            waits.append(known[excess - 1] + 60.0 - now)
        # QPU seconds per rolling window: what ended in the window, plus a reservation (the longest
        # recent run, at most the whole budget) for each submission in flight and for this one.
        while self.usage and self.usage[0][0] <= now - limits.window_s:
            self.usage.popleft()
        if not self.runs and self.in_flight:
            return None  # how long a run takes is not known yet: one at a time until it is
        reserve = min(max(self.runs, default=0.0), limits.qpu_seconds_per_window)
        over = sum(seconds for _, seconds in self.usage) + reserve * (self.in_flight + 1) - limits.qpu_seconds_per_window
        if over > 1e-9:
            freed = 0.0
            for end, seconds in self.usage:
                freed += seconds
                if freed >= over - 1e-9:
                    waits.append(end + limits.window_s - now)
                    break
            else:
                return None
        return max(waits)


@dataclasses.dataclass
class _Job:
    caller: str
    future: asyncio.Future
    primitive: str
    pubs: list
    options: dict[str, Any]
    queued_at: float  # when it (last) entered the queue
    scope: BudgetScope = BudgetScope()
    waited: float = 0.0  # gateway seconds not at the backend: in the queue and in backoff
    tries: int = 0
    qpu_s: float = 0.0  # QPU seconds its tries used


class QpuGateway:
    """The gateway's logic (wrapped as a named, detached Ray actor by :func:`get_gateway`).

    A job is queued for its backend; the scheduler starts it when the limits allow (a start slot,
    room under max_pending, the rolling minute and the QPU seconds); a transient error sends it
    back to the queue after a backoff, where it waits for a start of its own like any submission.
    ``runner`` replaces the backend (tests and benchmarks pass a :class:`RecordingBackend`)."""

    def __init__(self, config: QpuConfig | dict[str, Any] | None = None, runner: Any = None) -> None:
        logging.basicConfig(level=logging.INFO)
        self.config = QpuConfig.model_validate(config or {})
        self.runner = runner or (IbmRunner(self.config) if self.config.backend_kind == "ibm" else FakeRunner(self.config))
        self.queues: dict[str, BackendQueue] = {}
        self.schedulers: dict[str, asyncio.Task] = {}
        self.stats = collections.Counter()
        self.budgets = BudgetLedger()
        self.waits: list[float] = []
        self.metrics = _GatewayMetrics()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(256, self.config.limits.max_pending * len(self.config.backends) + 2),
            thread_name_prefix="qvr-qpu")
        self._ids = itertools.count()

    def clock(self) -> float:
        return time.monotonic() * self.config.time_scale

    async def sleep(self, gateway_seconds: float) -> None:
        await asyncio.sleep(max(0.0, gateway_seconds) / self.config.time_scale)

    def info(self) -> dict[str, Any]:
        return {"backends": list(self.config.backends), "least_busy": self.config.least_busy,
                "kind": self.config.backend_kind}

    async def run(self, caller: str, backend: str, primitive: str, pubs: Any, options: dict[str, Any],
                  scope: BudgetScope | None = None) -> Any:
        """Run one primitive job billed to ``scope`` (its run and step, and their budgets); returns the
        encoded PrimitiveResult, the wait (gateway seconds not at the backend: in the queue, and in
        backoff between tries) and the QPU seconds its tries used. Raises QpuBudgetExceeded when the
        budget refuses it (a first try or a retry), QpuError when it cannot run."""
        from actors.verify.sandbox.codecs.registry import decode, encode

        if backend not in self.config.backends:
            raise QpuError(f"backend {backend!r} is not served; served: {self.config.backends}")
        if primitive not in ("sampler", "estimator"):
            raise QpuError(f"unknown primitive {primitive!r}")
        decoded = decode(pubs)
        self._check_size(decoded, options)
        queue = self.queues.get(backend)
        if queue is None:
            queue = self.queues[backend] = BackendQueue(backend, self.config, self.clock)
            self.schedulers[backend] = asyncio.get_running_loop().create_task(self._schedule(queue))
        future = asyncio.get_running_loop().create_future()
        queue.enqueue(caller, _Job(caller, future, primitive, decoded, options, self.clock(), scope or BudgetScope()))
        self.metrics.depth(backend, queue.depth())
        result, waited, qpu_s = await future
        return {"result": encode(result), "wait_s": waited, "qpu_s": qpu_s}

    def _check_size(self, pubs: Any, options: dict[str, Any]) -> None:
        limits = self.config.limits
        if not isinstance(pubs, list) or len(pubs) > limits.max_circuits:
            self.stats["rejected"] += 1
            self.metrics.rejection()
            count = len(pubs) if isinstance(pubs, list) else "not a list of"
            raise QpuError(f"a job may hold at most {limits.max_circuits} circuits (pubs); this one has {count}")
        if int(options.get("shots") or 0) > limits.max_shots:
            self.stats["rejected"] += 1
            self.metrics.rejection()
            raise QpuError(f"a job may ask for at most {limits.max_shots} shots")

    async def _schedule(self, queue: BackendQueue) -> None:
        while True:
            queue.wake.clear()  # cleared before looking: whatever changes after this wakes us
            self._refuse_over_budget(queue)
            full = queue.depth() == 0 or queue.in_flight >= self.config.limits.max_pending
            wait = None if full else queue.wait_needed()
            if wait is not None and wait <= 0:
                job = queue.next_item(held=lambda job: self.budgets.decide(job.scope, queue.estimate())[0] == "hold")
                if job is not None:
                    self._start(queue, job)
                    continue
                wait = None  # every job waiting waits for its run's jobs in flight: until one ends
            try:
                await asyncio.wait_for(queue.wake.wait(), None if wait is None else wait / self.config.time_scale)
            except asyncio.TimeoutError:
                pass

    def _refuse_over_budget(self, queue: BackendQueue) -> None:
        """Answer every waiting job whose run (or step) can no longer afford it: no start slot, and
        the backend never sees it."""
        estimate = queue.estimate()
        for caller, jobs in list(queue.waiting.items()):
            kept = collections.deque()
            for job in jobs:
                decision, why = self.budgets.decide(job.scope, estimate)
                if decision != "refuse":
                    kept.append(job)
                    continue
                self.stats["over_budget"] += 1
                if not job.future.done():
                    error = QpuBudgetExceeded(why)
                    error.qpu_s = job.qpu_s
                    job.future.set_exception(error)
            if kept:
                queue.waiting[caller] = kept
            else:
                del queue.waiting[caller]

    def _start(self, queue: BackendQueue, job: _Job) -> None:
        """Take a start slot for one submission (a first try or a retry) and hand it to the runner."""
        now = self.clock()
        spacing = 60.0 / self.config.limits.jobs_per_minute
        key = next(self._ids)
        queue.sent[key] = None
        queue.history.append(now)
        queue.backlog.append(queue.depth() > 0)
        queue.next_slot = max(queue.next_slot, now - spacing) + spacing
        queue.in_flight += 1
        queue.max_in_flight = max(queue.max_in_flight, queue.in_flight)
        self.budgets.start(job.scope)
        waited = now - job.queued_at
        job.waited += waited
        self.waits.append(waited)
        self.metrics.wait(queue.name, waited)
        self.stats["started"] += 1
        asyncio.get_running_loop().create_task(self._submit(queue, job, key))

    async def _submit(self, queue: BackendQueue, job: _Job, key: int) -> None:
        """One submission: at the backend, then done, failed, or back to the queue after a backoff."""
        loop = asyncio.get_running_loop()

        def submitted() -> None:  # called by the runner, in its thread, once the backend has the job
            at = self.clock()
            loop.call_soon_threadsafe(queue.acknowledge, key, at)

        outcome: Any = None
        try:
            if self.config.backend_kind == "fake" and self.config.simulated_latency_s:
                await self.sleep(self.config.simulated_latency_s)
            started = self.clock()
            try:
                result = await loop.run_in_executor(self.executor, functools.partial(
                    self.runner.run, queue.name, job.primitive, job.pubs, job.options, submitted))
            finally:
                ended = self.clock()
                queue.usage.append((ended, ended - started))  # failed runs cost QPU time too
                queue.runs.append(ended - started)
                job.qpu_s += ended - started
                self.budgets.spend(job.scope, ended - started)
        except Exception as error:  # noqa: BLE001 - retried or handed to the caller
            outcome = error
        finally:
            if queue.sent.get(key, 0.0) is None:
                queue.sent[key] = self.clock()  # never acknowledged: count it from now
            queue.in_flight -= 1
            self.budgets.end(job.scope)
            for each in self.queues.values():  # a run's budget spans backends: its jobs may wait anywhere
                each.wake.set()
        if job.future.done():  # the caller went away
            pass
        elif outcome is None:
            self.stats["completed"] += 1
            job.future.set_result((result, job.waited, job.qpu_s))
        elif isinstance(outcome, TransientQpuError) and job.tries < self.config.max_retries:
            self.stats["retried"] += 1
            delay = self.config.backoff_s * 2**job.tries * random.uniform(0.5, 1.5)
            job.tries += 1
            await self.sleep(delay)
            job.waited += delay
            job.queued_at = self.clock()
            queue.enqueue(job.caller, job, retry=True)  # back through the limiter: a start of its own
        else:
            self.stats["failed"] += 1
            if isinstance(outcome, TransientQpuError):
                outcome = QpuError(f"{queue.name}: still failing after {job.tries + 1} tries: {outcome}")
            error = outcome if isinstance(outcome, QpuError) else QpuError(f"{type(outcome).__name__}: {outcome}")
            error.qpu_s = job.qpu_s
            job.future.set_exception(error)
        self.metrics.depth(queue.name, queue.depth())

    def report(self) -> dict[str, Any]:
        """The gateway's own record (every start, retries included). Evidence that the limits hold
        at the backend comes from the backend's record (:meth:`RecordingBackend.violations`)."""
        return {"stats": dict(self.stats), "max_in_flight": {name: q.max_in_flight for name, q in self.queues.items()},
                "starts": {name: list(q.history) for name, q in self.queues.items()},
                "backlog": {name: list(q.backlog) for name, q in self.queues.items()}, "waits": list(self.waits),
                "qpu_s": self.budgets.report()}


class _GatewayMetrics:
    """Prometheus metrics through Ray's metrics API (shown by the Ray dashboard); inert outside Ray."""

    def __init__(self) -> None:
        try:
            from ray.util import metrics

            self._depth = metrics.Gauge("qvr_qpu_queue_depth", "QPU jobs waiting", tag_keys=("backend",))
            self._wait = metrics.Histogram("qvr_qpu_wait_seconds", "QPU queue wait (gateway seconds)",
                                           boundaries=[0.1, 1, 10, 60, 600, 3600], tag_keys=("backend",))
            self._rejections = metrics.Counter("qvr_qpu_rejections_total", "QPU jobs rejected")
        except Exception:  # noqa: BLE001 - no Ray worker here (plain tests)
            self._depth = self._wait = self._rejections = None

    def depth(self, backend: str, value: int) -> None:
        if self._depth:
            self._depth.set(value, tags={"backend": backend})

    def wait(self, backend: str, seconds: float) -> None:
        if self._wait:
            self._wait.observe(seconds, tags={"backend": backend})

    def rejection(self) -> None:
        if self._rejections:
            self._rejections.inc()


def get_gateway(config: QpuConfig | None = None, namespace: str | None = None) -> Any:
    """The cluster's gateway actor, created (named, detached) on first use."""
    import ray

    config = config or QpuConfig()
    actor = ray.remote(num_cpus=0, max_concurrency=1000)(QpuGateway)
    placement = {"resources": {config.resource: 1}} if config.resource else {}
    return actor.options(name=GATEWAY_NAME, namespace=namespace, lifetime="detached", get_if_exists=True,
                         **placement).remote(config.model_dump())


def gateway_handler(config: QpuConfig, call: Callable[..., Any] | None = None) -> Callable[..., dict[str, Any]]:
    """What a verifier slot does with a sandbox's QPU request: ask the gateway, billing the job to
    ``config``'s run (``run_id``) and to the job's training step, under their budgets.

    ``handle(request, caller, step)`` returns the gateway's answer for the sandbox, or raises the
    gateway's own error: :class:`QpuBudgetExceeded` when the budget refused the job (the verifier's
    parent records it: actors/verify/qpu/budget.py), :class:`QpuError` otherwise, each with the
    ``qpu_s`` its tries used. ``call(method, *args)`` reaches the gateway (default: the cluster's
    gateway actor, through Ray; tests pass one in this process)."""
    call = call or _ray_gateway(config)

    def handle(request: dict[str, Any], caller: str, step: int | None = None) -> dict[str, Any]:
        if request.get("op") == "info":
            return call("info")
        if request.get("op") == "run":
            scope = BudgetScope(config.run_id or "", step, config.budget_s, config.budget_per_step_s)
            return call("run", caller, request["backend"], request["primitive"], request["pubs"],
                        request.get("options") or {}, scope)
        return {"error": f"unknown QPU request {request.get('op')!r}"}

    return handle


def _ray_gateway(config: QpuConfig) -> Callable[..., Any]:
    """``call(method, *args)`` on the cluster's gateway actor; the gateway's errors come out as
    they were raised, not in Ray's wrapping."""
    gateway = None

    def call(method: str, *args: Any) -> Any:
        nonlocal gateway
        import ray

        if not ray.is_initialized():
            raise QpuError("no QPU gateway: this verifier does not run under Ray")
        gateway = gateway or get_gateway(config)
        try:
            return ray.get(getattr(gateway, method).remote(*args))
        except Exception as error:  # noqa: BLE001 - re-raised as the gateway raised it
            raise gateway_error(error) from None

    return call


def gateway_error(error: BaseException) -> BaseException:
    """The gateway's own error (a QpuError, its type and ``qpu_s`` kept) out of the RayTaskError Ray
    wraps it in; any other error as it is. (Ray's wrapper is an instance of the error's class too,
    but without its state: ``qpu_s`` would read 0.)"""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, QpuError) else error
