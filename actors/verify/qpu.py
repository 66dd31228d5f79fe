"""The QPU gateway: one named, detached Ray actor through which every job reaches a quantum backend.

Each backend has one queue with IBM's limits (pending jobs, jobs per rolling minute, QPU seconds
per rolling window, maximum job size), shared by every caller of every job on the cluster, and
served round-robin across callers so that no caller starves the others. Transient errors are
retried with exponential backoff and jitter. Backends are ``fake`` (qiskit-ibm-runtime's fake
backends with their noise models, run locally, with an optional simulated queue latency) or
``ibm`` (QiskitRuntimeService; the token comes from an environment variable or a file that the
config names, and is read only here: it never enters a sandbox).

Times are in *gateway seconds*: real seconds times ``time_scale``, so tests and benchmarks can run
an hour of IBM's limits in a minute.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from actors.config import Config

log = logging.getLogger("qvr.qpu")
GATEWAY_NAME = "qvr-qpu-gateway"


class QpuLimits(Config):
    max_pending: int = Field(3, ge=1, le=1000)
    """Jobs in flight at the backend at once (IBM's open plan allows 3 pending jobs)."""

    jobs_per_minute: float = Field(30.0, gt=0)
    """Job starts per rolling minute: starts take evenly spaced slots (60/jobs_per_minute apart,
    so bursts are smoothed), and a sliding-window count guarantees that no window of any
    alignment ever holds more."""

    qpu_seconds_per_window: float = Field(600.0, gt=0)
    """QPU (run) seconds allowed per rolling ``window_s``."""

    window_s: float = Field(600.0, gt=0)
    """The rolling window of ``qpu_seconds_per_window``."""

    max_circuits: int = Field(300, ge=1)
    """Most circuits (pubs) in one job."""

    max_shots: int = Field(100_000, ge=1)
    """Most shots per pub."""


class QpuConfig(Config):
    backend_kind: Literal["fake", "ibm"] = "fake"
    """``fake``: qiskit-ibm-runtime's fake backends with noise, run locally. ``ibm``: real
    hardware through QiskitRuntimeService."""

    backends: list[str] = ["ibm_manila", "ibm_kyoto", "ibm_fez"]
    """Backends offered to sandboxes (IBM names; a fake backend stands in for each)."""

    least_busy: str = "ibm_manila"
    """What ``least_busy()`` answers with fake backends."""

    limits: QpuLimits = QpuLimits()
    """Per-backend limits, shared by every caller."""

    noise: bool = True
    """Fake backends simulate with their noise models (False: ideal simulation, for load tests)."""

    simulated_latency_s: float = Field(0.0, ge=0)
    """Extra queue latency per fake job (gateway seconds)."""

    time_scale: float = Field(1.0, gt=0)
    """Gateway seconds per real second (tests and benchmarks run scaled time)."""

    max_retries: int = Field(4, ge=0, le=20)
    """Retries of a transient backend error (exponential backoff with jitter)."""

    backoff_s: float = Field(2.0, gt=0)
    """First retry delay (gateway seconds); doubles each retry."""

    token_env: str = "QVR_IBM_TOKEN"
    """Environment variable holding the IBM Quantum token (``ibm`` backends only)."""

    token_file: str | None = None
    """A file holding the token instead (read only inside the gateway)."""

    instance: str | None = None
    """IBM Quantum instance (CRN) for ``ibm`` backends."""

    transient_failure_every: int = Field(0, ge=0)
    """Fault injection for tests: every Nth fake run raises a transient error (0 = never)."""

    always_fail: bool = False
    """Fault injection for tests: every fake run raises a permanent error."""


class TransientQpuError(RuntimeError):
    """A backend error worth retrying (queue full, network, 5xx)."""


class QpuError(RuntimeError):
    """A job the gateway could not run, with why."""


def fake_backend_class(name: str) -> type:
    """'ibm_kyoto' or 'fake_kyoto' -> FakeKyoto."""
    from qiskit_ibm_runtime import fake_provider

    stem = name.split("_", 1)[1] if "_" in name else name
    for candidate in (f"Fake{stem.capitalize()}V2", f"Fake{stem.capitalize()}"):
        kind = getattr(fake_provider, candidate, None)
        if isinstance(kind, type):
            return kind
    raise QpuError(f"no fake backend stands in for {name!r}")


class FakeRunner:
    """Runs primitive jobs locally on fake backends with their noise models (Aer's primitives,
    built once per backend: what qiskit-ibm-runtime's local mode does, without rebuilding the
    noise model for every job)."""

    def __init__(self, config: QpuConfig) -> None:
        self.config = config
        self._primitives: dict[tuple[str, str], Any] = {}
        self._runs = 0

    def primitive(self, name: str, kind: str) -> Any:
        if (name, kind) not in self._primitives:
            from qiskit_aer.primitives import EstimatorV2, SamplerV2

            backend = fake_backend_class(name)()
            kind_class = SamplerV2 if kind == "sampler" else EstimatorV2
            self._primitives[(name, kind)] = kind_class.from_backend(backend) if self.config.noise else kind_class()
        return self._primitives[(name, kind)]

    def run(self, name: str, primitive: str, pubs: list, options: dict[str, Any]) -> Any:
        self._runs += 1
        if self.config.always_fail:
            raise QpuError(f"backend {name} failed the job (fault injection: always_fail)")
        every = self.config.transient_failure_every
        if every and self._runs % every == 0:
            raise TransientQpuError(f"backend {name} is temporarily unavailable (fault injection)")
        if primitive == "sampler":
            arguments = {"shots": int(options.get("shots") or options.get("default_shots") or 1024)}
        else:
            arguments = {"precision": options["precision"]} if options.get("precision") else {}
        return self.primitive(name, primitive).run(pubs, **arguments).result()


class IbmRunner:
    """Runs primitive jobs on IBM hardware. The token is read here, and only here."""

    def __init__(self, config: QpuConfig) -> None:
        from qiskit_ibm_runtime import QiskitRuntimeService

        token = os.environ.get(config.token_env)
        if config.token_file:
            token = Path(config.token_file).read_text().strip()
        if not token:
            raise QpuError(f"ibm backends need a token: set {config.token_env} or qpu.token_file")
        self.service = QiskitRuntimeService(channel="ibm_quantum_platform", token=token, instance=config.instance)

    def backend(self, name: str) -> Any:
        return self.service.backend(name)

    def run(self, name: str, primitive: str, pubs: list, options: dict[str, Any]) -> Any:
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        kind = SamplerV2 if primitive == "sampler" else EstimatorV2
        job = kind(mode=self.backend(name)).run(pubs, **({"shots": options["shots"]} if options.get("shots") else {}))
        try:
            return job.result()
        except Exception as error:  # noqa: BLE001 - classify for the retry policy
            text = str(error).lower()
            if any(word in text for word in ("temporarily", "timeout", "503", "502", "rate", "queue is full")):
                raise TransientQpuError(str(error)) from error
            raise


class BackendQueue:
    """One backend's queue and limits. Single event loop: no locks needed."""

    def __init__(self, name: str, config: QpuConfig, clock: Any) -> None:
        self.name, self.config, self.clock = name, config, clock
        self.waiting: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: collections.deque[float] = collections.deque()
        self.history: list[float] = []  # every start, for reports and tests
        self.next_slot = 0.0  # evenly spaced start slots: a late start does not push the rest back
        self.usage: collections.deque[tuple[float, float]] = collections.deque()  # (end, qpu seconds)
        self.wake = asyncio.Event()

    def enqueue(self, caller: str, item: Any) -> None:
        self.waiting.setdefault(caller, collections.deque()).append(item)
        self.wake.set()

    def depth(self) -> int:
        return sum(len(queue) for queue in self.waiting.values())

    def next_item(self) -> Any:
        """Round-robin: the first caller with work goes to the back of the line."""
        for caller in list(self.waiting):
            queue = self.waiting.pop(caller)
            item = queue.popleft()
            if queue:
                self.waiting[caller] = queue
            return item
        return None

    def wait_needed(self) -> float:
        """Gateway seconds until another job may start (0 = now)."""
        now = self.clock()
        limits = self.config.limits
        minute = 60.0
        while self.starts and self.starts[0] <= now - minute:
            self.starts.popleft()
        while self.usage and self.usage[0][0] <= now - limits.window_s:
            self.usage.popleft()
        waits = [0.0]
        if len(self.starts) >= limits.jobs_per_minute:
            waits.append(self.starts[0] + minute - now)
        waits.append(self.next_slot - now)
        if sum(seconds for _, seconds in self.usage) >= limits.qpu_seconds_per_window and self.usage:
            waits.append(self.usage[0][0] + limits.window_s - now)
        return max(waits)


class QpuGateway:
    """The gateway's logic (wrapped as a named, detached Ray actor by :func:`get_gateway`)."""

    def __init__(self, config: QpuConfig | dict[str, Any] | None = None) -> None:
        logging.basicConfig(level=logging.INFO)
        self.config = QpuConfig.model_validate(config or {})
        self.runner = IbmRunner(self.config) if self.config.backend_kind == "ibm" else FakeRunner(self.config)
        self.queues: dict[str, BackendQueue] = {}
        self.schedulers: dict[str, asyncio.Task] = {}
        self.stats = collections.Counter()
        self.waits: list[float] = []
        self.metrics = _GatewayMetrics()

    def clock(self) -> float:
        return time.monotonic() * self.config.time_scale

    async def sleep(self, gateway_seconds: float) -> None:
        await asyncio.sleep(max(0.0, gateway_seconds) / self.config.time_scale)

    def info(self) -> dict[str, Any]:
        return {"backends": list(self.config.backends), "least_busy": self.config.least_busy,
                "kind": self.config.backend_kind}

    async def run(self, caller: str, backend: str, primitive: str, pubs: Any, options: dict[str, Any]) -> Any:
        """Run one primitive job; returns the encoded PrimitiveResult and the queue wait (gateway seconds)."""
        from actors.verify.codecs import decode, encode

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
        queue.enqueue(caller, (future, primitive, decoded, options, self.clock()))
        self.metrics.depth(backend, queue.depth())
        result, waited = await future
        return {"result": encode(result), "wait_s": waited}

    def _check_size(self, pubs: Any, options: dict[str, Any]) -> None:
        limits = self.config.limits
        if not isinstance(pubs, list) or len(pubs) > limits.max_circuits:
            self.stats["rejected"] += 1
            self.metrics.rejection()
            raise QpuError(f"a job may hold at most {limits.max_circuits} circuits")
        if int(options.get("shots") or 0) > limits.max_shots:
            self.stats["rejected"] += 1
            self.metrics.rejection()
            raise QpuError(f"a job may ask for at most {limits.max_shots} shots")

    async def _schedule(self, queue: BackendQueue) -> None:
        while True:
            if queue.depth() == 0 or queue.in_flight >= self.config.limits.max_pending:
                queue.wake.clear()
                await queue.wake.wait()
                continue
            wait = queue.wait_needed()
            if wait > 0:
                await self.sleep(wait)
                continue
            item = queue.next_item()
            now = self.clock()
            queue.starts.append(now)
            queue.history.append(now)
            queue.next_slot = max(queue.next_slot, now - 60.0 / self.config.limits.jobs_per_minute) \
                + 60.0 / self.config.limits.jobs_per_minute
            queue.in_flight += 1
            queue.max_in_flight = max(queue.max_in_flight, queue.in_flight)
            self.stats["started"] += 1
            asyncio.get_running_loop().create_task(self._execute(queue, item))

    async def _execute(self, queue: BackendQueue, item: Any) -> None:
        future, primitive, pubs, options, enqueued = item
        waited = self.clock() - enqueued
        self.waits.append(waited)
        self.metrics.wait(queue.name, waited)
        try:
            if self.config.backend_kind == "fake" and self.config.simulated_latency_s:
                await self.sleep(self.config.simulated_latency_s)
            started = self.clock()
            result = await self._with_retries(queue.name, primitive, pubs, options)
            queue.usage.append((self.clock(), self.clock() - started))
            self.stats["completed"] += 1
            future.set_result((result, waited))
        except Exception as error:  # noqa: BLE001 - handed to the caller
            self.stats["failed"] += 1
            future.set_exception(error if isinstance(error, QpuError) else QpuError(f"{type(error).__name__}: {error}"))
        finally:
            queue.in_flight -= 1
            queue.wake.set()
            self.metrics.depth(queue.name, queue.depth())

    async def _with_retries(self, backend: str, primitive: str, pubs: list, options: dict[str, Any]) -> Any:
        for attempt in range(self.config.max_retries + 1):
            try:
                return await asyncio.to_thread(self.runner.run, backend, primitive, pubs, options)
            except TransientQpuError as error:
                self.stats["retried"] += 1
                if attempt == self.config.max_retries:
                    raise QpuError(f"{backend}: still failing after {attempt + 1} tries: {error}") from error
                delay = self.config.backoff_s * 2**attempt
                await self.sleep(delay * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    def report(self) -> dict[str, Any]:
        return {"stats": dict(self.stats), "max_in_flight": {name: q.max_in_flight for name, q in self.queues.items()},
                "starts": {name: list(q.history) for name, q in self.queues.items()}, "waits": list(self.waits)}


def rate_violations(starts: list[float], per_minute: float) -> int:
    """Windows of 60 gateway seconds (any alignment) that hold more starts than allowed."""
    allowed = int(per_minute)
    ordered = sorted(starts)
    return sum(1 for i in range(len(ordered) - allowed) if ordered[i + allowed] - ordered[i] < 60.0 - 1e-9)


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

    actor = ray.remote(num_cpus=0, max_concurrency=1000)(QpuGateway)
    return actor.options(name=GATEWAY_NAME, namespace=namespace, lifetime="detached", get_if_exists=True).remote(
        (config or QpuConfig()).model_dump())


def gateway_handler(config: QpuConfig) -> Any:
    """What a verifier slot does with a sandbox's QPU request: ask the cluster's gateway."""
    gateway = None

    def handle(request: dict[str, Any], caller: str) -> dict[str, Any]:
        nonlocal gateway
        import ray

        if not ray.is_initialized():
            return {"error": "no QPU gateway: this verifier does not run under Ray"}
        gateway = gateway or get_gateway(config)
        if request.get("op") == "info":
            return ray.get(gateway.info.remote())
        if request.get("op") == "run":
            return ray.get(gateway.run.remote(caller, request["backend"], request["primitive"], request["pubs"],
                                              request.get("options") or {}))
        return {"error": f"unknown QPU request {request.get('op')!r}"}

    return handle
