"""`qvr bench qpu`: many concurrent callers against one fake backend with IBM-style limits, in
scaled time. Reports the achieved rate against the limit, the most jobs ever in flight, and
the number of rolling one-minute windows that held more starts than allowed (violations)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.verify.qpu import QpuConfig, QpuGateway, rate_violations


class QpuBenchConfig(Config):
    jobs: int = Field(200, ge=2)
    """Jobs in all."""

    callers: int = Field(16, ge=1)
    """Concurrent callers (verifications waiting on the QPU)."""

    max_pending: int = Field(3, ge=1)
    """IBM's pending-job limit."""

    jobs_per_minute: float = Field(30.0, gt=0)
    """The rate limit."""

    time_scale: float = Field(30.0, gt=0)
    """Gateway seconds per real second."""


def run(config: QpuBenchConfig) -> dict[str, Any]:
    from qiskit import QuantumCircuit

    from actors.verify.codecs import encode

    gateway = QpuGateway(QpuConfig(time_scale=config.time_scale, noise=False, limits={
        "max_pending": config.max_pending, "jobs_per_minute": config.jobs_per_minute}))
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
    starts = report["starts"]["ibm_manila"]
    achieved = (len(starts) - 1) / (max(starts) - min(starts)) * 60 if len(starts) > 1 else 0.0
    result = {"jobs": report["stats"]["completed"], "callers": config.callers, "max_pending": config.max_pending,
              "limit_per_min": config.jobs_per_minute, "achieved_per_min": round(achieved, 3),
              "max_in_flight": report["max_in_flight"]["ibm_manila"],
              "violations": rate_violations(starts, config.jobs_per_minute),
              "real_s": round(time.monotonic() - started, 2)}
    print(f"qpu    {result['jobs']} jobs from {config.callers} callers: {achieved:.2f}/min against a limit of "
          f"{config.jobs_per_minute:g}/min, at most {result['max_in_flight']} in flight (limit {config.max_pending}), "
          f"{result['violations']} violations")
    return result
