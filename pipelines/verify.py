"""`qvr verify`: run completions (or each task's reference solution) against the hidden tests.

Recipe: load tasks -> pair them with completions -> one Ray task per verification, spread over
the cluster's CPUs -> verdicts Parquet + a table + per-status counts.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import time
from pathlib import Path
from typing import Any

from actors.verify.config import VerifierConfig
from pipelines.job import JobConfig
from pipelines.runs import Run
from pipelines.tasks.loader import TaskSourceConfig, load_tasks

HELP = "verify completions (or the tasks' reference solutions) against their hidden unit tests"
log = logging.getLogger("qvr.verify")


class Config(JobConfig):
    tasks: TaskSourceConfig = TaskSourceConfig()
    """Which tasks to verify."""

    completions: str | None = None
    """JSONL of {task_id, completion[, sample_idx]}; None verifies each task's reference solution."""

    verifier: VerifierConfig = VerifierConfig()
    """How each verification runs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", metavar="FILE", help="tasks: QHE JSON, JSONL or Parquet (sets tasks.source)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--completions", metavar="FILE", help="JSONL rows {task_id, completion[, sample_idx]}")
    source.add_argument("--canonical", action="store_true", help="verify each task's reference solution")


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The flags as config overrides, so they are validated like any other."""
    overrides = []
    if args.tasks:
        overrides.append(f"tasks.source={args.tasks}")
    if args.completions:
        overrides.append(f"completions={args.completions}")
    if args.canonical:
        overrides.append("completions=null")
    return overrides


def run(config: Config, run: Run) -> dict[str, Any]:
    import asyncio

    from actors.contracts import write_parquet
    from actors.verify.pool import PoolConfig, VerifierPool
    from actors.verify.verifier import calibrate_isolation, pair_jobs, reference_jobs
    from pipelines.completions import load_completions
    from pipelines.job import connect_ray

    tasks = load_tasks(config.tasks)
    verifier = hide_task_files(config)
    connect_ray(config.ray)
    slots = config.verifier.slots or default_slots(verifier.cpus_per_slot, verifier.workers)
    pool = VerifierPool(verifier, PoolConfig(initial_workers=verifier.workers, min_workers=verifier.workers,
                                             max_workers=verifier.workers, slots_per_worker=slots,
                                             cpus_per_slot=verifier.cpus_per_slot, batch_size=slots, autoscale=False))
    log.info("verifying with %d worker(s) x %d slot(s), executor %s", verifier.workers, slots, verifier.executor)
    progress = Progress(run)

    def verify_all(jobs: list[Any]) -> list[Any]:
        async def stream() -> list[Any]:
            return [progress.add(verdict) async for verdict in pool.submit(jobs)]

        order = {(job.task.task_id, job.sample_idx): index for index, job in enumerate(jobs)}
        return sorted(asyncio.run(stream()), key=lambda verdict: order[(verdict.task_id, verdict.sample_idx)])

    started = time.monotonic()
    try:
        calibrated: list[Any] = []
        if verifier.executor == "forked" and verifier.isolation == "auto":
            unmarked = [task for task in tasks if "isolation" not in task.metadata and task.reference_solution]
            log.info("calibrating isolation: %d references split (and shared where split fails)", len(unmarked))
            modes, calibrated = calibrate_isolation(verify_all, unmarked)
            for task in unmarked:
                task.metadata["isolation"] = modes[task.task_id]
        if config.completions is None and calibrated and len(calibrated) == len(tasks):
            verdicts = calibrated  # the calibration ran every reference in its chosen mode
        else:
            jobs = reference_jobs(tasks) if config.completions is None else pair_jobs(tasks, load_completions(config.completions))
            log.info("%d verifications of %d tasks from %s", len(jobs), len(tasks), config.tasks.source)
            verdicts = verify_all(jobs)
    finally:
        pool.close()
    wall_s = time.monotonic() - started
    shared_tasks = sorted(task.task_id for task in tasks if task.metadata.get("isolation") == "shared")
    if shared_tasks:
        print(f"{len(shared_tasks)} task(s) need the shared isolation mode: {', '.join(shared_tasks)}")

    verdicts_path = run.path / "verdicts.parquet"
    write_parquet(verdicts, str(verdicts_path))
    if calibrated:
        write_parquet(tasks, str(run.path / "tasks.parquet"))  # the tasks with their isolation marks
    print(format_table(verdicts))
    by_status = collections.Counter(verdict.status for verdict in verdicts)
    by_isolation = collections.Counter(verdict.isolation for verdict in verdicts)
    print(f"{by_status['passed']}/{len(verdicts)} passed in {wall_s:.1f} s; by status: {dict(sorted(by_status.items()))}; "
          f"by isolation: {dict(sorted(by_isolation.items()))}")
    return {"total": len(verdicts), "passed": by_status["passed"], "by_status": dict(sorted(by_status.items())),
            "by_isolation": {"split": by_isolation["split"], "shared": by_isolation["shared"]},
            "shared_tasks": shared_tasks, "verdicts": str(verdicts_path), "wall_s": round(wall_s, 3)}


class Progress:
    """One log line and one metrics row per verdict."""

    def __init__(self, run: Run) -> None:
        self.run, self.done, self.passed = run, 0, 0

    def add(self, verdict: Any) -> Any:
        self.done += 1
        self.passed += verdict.status == "passed"
        log.info("[%d] %s#%d %s %d/%d tests, %s (%.2f s)", self.done, verdict.task_id, verdict.sample_idx,
                 verdict.status, verdict.tests_passed, verdict.tests_total, verdict.isolation, verdict.duration_s)
        self.run.log_metrics({"verify/pass_rate": self.passed / self.done, "verify/duration_s": verdict.duration_s,
                              "verify/reward": verdict.reward}, step=self.done)
        return verdict


def hide_task_files(config: Config) -> Any:
    """The verifier config with the task file's folder hidden from the sandbox (it holds the
    hidden tests and the reference solutions)."""
    verifier = config.verifier.model_copy(deep=True)
    source = Path(config.tasks.source)
    if source.exists():
        folder = str(source.resolve() if source.is_dir() else source.resolve().parent)
        verifier.sandbox.hidden_paths = [*verifier.sandbox.hidden_paths, folder]
    return verifier


def default_slots(cpus_per_slot: float, workers: int) -> int:
    """As many slots as this node has cores, within what the cluster's CPUs allow per worker."""
    import ray

    cluster_cpus = ray.cluster_resources().get("CPU", 1)
    return max(1, min(os.cpu_count() or 1, int(cluster_cpus / (cpus_per_slot * workers))))


def format_table(verdicts: list[Any], limit: int = 60) -> str:
    header = f"{'task_id':<40} {'sample':>6} {'status':<8} {'tests':>7} {'seconds':>8}"
    rows = [f"{v.task_id[:40]:<40} {v.sample_idx:>6} {v.status:<8} {f'{v.tests_passed}/{v.tests_total}':>7} "
            f"{v.duration_s:>8.2f}" for v in verdicts[:limit]]
    if len(verdicts) > limit:
        rows.append(f"... {len(verdicts) - limit} more rows in the verdicts Parquet")
    return "\n".join([header, *rows])
