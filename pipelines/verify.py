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
from pipelines.tasks.loader import TaskSourceConfig

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
    import ray
    from ray.util import ActorPool

    from actors.contracts import write_parquet
    from actors.verify.verifier import pair_jobs, reference_jobs
    from actors.verify.worker import VerifierWorker
    from pipelines.completions import load_completions
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import load_tasks

    tasks = load_tasks(config.tasks)
    jobs = reference_jobs(tasks) if config.completions is None else pair_jobs(tasks, load_completions(config.completions))
    log.info("%d verifications of %d tasks from %s", len(jobs), len(tasks), config.tasks.source)
    verifier = hide_task_files(config)

    connect_ray(config.ray)
    slots = config.verifier.slots or default_slots(verifier.cpus_per_slot, verifier.workers)
    worker_class = ray.remote(num_cpus=slots * verifier.cpus_per_slot)(VerifierWorker)
    workers = [worker_class.remote(verifier, slots) for _ in range(verifier.workers)]
    log.info("verifying with %d worker(s) x %d slot(s), executor %s, isolation %s", len(workers), slots,
             verifier.executor, ray.get(workers[0].features.remote()) or "none (not forked)")
    batches = [list(range(start, min(start + slots, len(jobs)))) for start in range(0, len(jobs), slots)]
    started = time.monotonic()
    verdicts: list[Any] = [None] * len(jobs)
    by_status: collections.Counter[str] = collections.Counter()
    done = 0
    results = ActorPool(workers).map_unordered(
        lambda worker, batch: worker.verify_batch.remote(batch, [jobs[index] for index in batch]), batches)
    for batch, batch_verdicts in results:
        for index, verdict in zip(batch, batch_verdicts):
            verdicts[index] = verdict
            by_status[verdict.status] += 1
            done += 1
            log.info("[%d/%d] %s#%d %s %d/%d tests (%.2f s)", done, len(jobs), verdict.task_id, verdict.sample_idx,
                     verdict.status, verdict.tests_passed, verdict.tests_total, verdict.duration_s)
            run.log_metrics({"verify/pass_rate": by_status["passed"] / done, "verify/duration_s": verdict.duration_s,
                             "verify/reward": verdict.reward}, step=done)
    wall_s = time.monotonic() - started
    for worker in workers:
        ray.kill(worker)

    verdicts_path = run.path / "verdicts.parquet"
    write_parquet(verdicts, str(verdicts_path))
    print(format_table(verdicts))
    passed = by_status["passed"]
    print(f"{passed}/{len(verdicts)} passed in {wall_s:.1f} s; by status: {dict(sorted(by_status.items()))}")
    return {"total": len(verdicts), "passed": passed, "by_status": dict(sorted(by_status.items())),
            "verdicts": str(verdicts_path), "wall_s": round(wall_s, 3)}


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
