"""`qvr bench qpu`: many concurrent callers against one fake backend with IBM-style limits, in
scaled time, with transient failures injected at the backend (and retried by the gateway).

The backend is a RecordingBackend: it keeps its own record of every submission it received,
retries included. ``backend_violations`` (rolling minutes that held more submissions than allowed,
submissions that arrived while max_pending others were pending, rolling windows over the QPU
seconds) and the achieved rate come from that record; ``violations`` and ``max_in_flight`` are
the gateway's own view, kept beside them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.evidence import RecordingBackend, rate_under_backlog, rate_violations
from actors.verify.qpu.gateway import QpuGateway


class QpuBenchConfig(Config):
    jobs: int = Field(200, ge=2)
    """Jobs in all."""

    callers: int = Field(16, ge=1)
    """Concurrent callers (verifications waiting on the QPU)."""

    max_pending: int = Field(3, ge=1)
    """IBM's pending-job limit."""

    jobs_per_minute: float = Field(30.0, gt=0)
    """The rate limit (submissions per rolling minute, retries included)."""

    time_scale: float = Field(30.0, gt=0)
    """Gateway seconds per real second."""

    failure_rate: float = Field(0.25, ge=0, lt=1)
    """Chance that the backend fails a submission transiently (the gateway retries it)."""

    seed: int = 0
    """Seed of the injected failures."""

    max_retries: int = Field(8, ge=0, le=20)
    """Retries per job before the gateway gives up."""


def run(config: QpuBenchConfig) -> dict[str, Any]:
    from qiskit import QuantumCircuit

    from actors.verify.sandbox.codecs.registry import encode

    qpu = QpuConfig(time_scale=config.time_scale, noise=False, max_retries=config.max_retries, backoff_s=1.0,
                    limits={"max_pending": config.max_pending, "jobs_per_minute": config.jobs_per_minute})
    backend = RecordingBackend(qpu, fail_probability=config.failure_rate, seed=config.seed)
    gateway = QpuGateway(qpu, runner=backend)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    pubs = encode([circuit])

    async def caller(index: int, count: int) -> None:
        for _ in range(count):
            await gateway.run(f"caller-{index}", "ibm_manila", "sampler", pubs, {"shots": 32})

    async def everyone() -> None:
        shares = [config.jobs // config.callers + (1 if i < config.jobs % config.callers else 0)
                  for i in range(config.callers)]
        await asyncio.gather(*(caller(i, n) for i, n in enumerate(shares)))

    started = time.monotonic()
    asyncio.run(everyone())
    report = gateway.report()
    checked = backend.violations(qpu.limits)
    seen = checked["backends"]["ibm_manila"]
    received = [submission.at for submission in backend.submissions]
    achieved = rate_under_backlog(received, report["backlog"]["ibm_manila"])
    result = {"jobs": report["stats"].get("completed", 0), "callers": config.callers, "max_pending": config.max_pending,
              "limit_per_min": config.jobs_per_minute, "achieved_per_min": round(achieved, 3),
              "utilisation": round(achieved / config.jobs_per_minute, 3),
              "submissions": seen["submissions"], "retries": report["stats"].get("retried", 0),
              "failed_jobs": report["stats"].get("failed", 0),
              "max_in_flight": report["max_in_flight"]["ibm_manila"], "backend_max_pending": seen["max_pending"],
              "violations": rate_violations(report["starts"]["ibm_manila"], config.jobs_per_minute),
              "backend_violations": checked["violations"], "backend": seen,
              "real_s": round(time.monotonic() - started, 2)}
    print(f"qpu    {result['jobs']} jobs from {config.callers} callers, {result['submissions']} submissions at the "
          f"backend ({result['retries']} retries): {achieved:.2f}/min under backlog against a limit of "
          f"{config.jobs_per_minute:g}/min (utilisation {result['utilisation']:.3f}), at most "
          f"{result['backend_max_pending']} pending at the backend (limit {config.max_pending}), "
          f"{result['backend_violations']} violations in the backend's record ({result['violations']} in the gateway's)")
    return result
