"""`qvr bench pool`: verifications/s of the VerifierPool with 1, 2 and 4 workers, and Ray's overhead
per verification against the bare sandbox (the same jobs through a Verifier in this process).

Workers are timed warm (their zygotes started), so the figures are steady-state throughput."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.benches.verifier import small_jobs

log = logging.getLogger("qvr.bench")


class PoolBenchConfig(Config):
    jobs: int = Field(120, ge=4)
    """Verifications per measurement (the ``small`` workload of `qvr bench verifier`)."""

    workers: list[int] = [1, 2, 4]
    """Pool sizes to measure (one slot each)."""

    cpus_per_slot: float = Field(0.5, gt=0)
    """Ray CPUs per slot, fractional so that 4 workers fit on a small machine."""


def _timed_pool(workers: int, config: PoolBenchConfig, jobs: list) -> float:
    from actors.verify.pool.pool import VerifierPool

    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=workers, cpus_per_slot=config.cpus_per_slot, batch_size=2))
    try:
        pool.run(jobs[: workers * 2])  # warm: every worker's zygote is up
        started = time.monotonic()
        verdicts = pool.run(jobs)
        wall = time.monotonic() - started
    finally:
        pool.close()
    assert len(verdicts) == len(jobs)
    log.info("pool of %d: %d verifications in %.2f s", workers, len(jobs), wall)
    return len(jobs) / wall


def run(config: PoolBenchConfig) -> dict[str, Any]:
    from actors.verify.verifier import Verifier
    from pipelines.job import RayConfig, connect_ray

    jobs = small_jobs(config.jobs)
    with Verifier(VerifierConfig(), slots=1) as bare:
        bare.run(jobs[:2])
        started = time.monotonic()
        bare.run(jobs)
        bare_per_s = len(jobs) / (time.monotonic() - started)
    connect_ray(RayConfig())
    rates = [_timed_pool(workers, config, jobs) for workers in config.workers]
    one_worker = rates[config.workers.index(1)] if 1 in config.workers else rates[0]
    overhead_ms = (1 / one_worker - 1 / bare_per_s) * 1000
    print("pool   " + "  ".join(f"{w} worker(s) {r:7.2f}/s" for w, r in zip(config.workers, rates))
          + f"  bare sandbox {bare_per_s:7.2f}/s  Ray overhead {overhead_ms:.2f} ms/verification")
    return {"workers": list(config.workers), "per_s": [round(rate, 3) for rate in rates],
            "bare_per_s": round(bare_per_s, 3), "ray_overhead_ms": round(overhead_ms, 3)}



