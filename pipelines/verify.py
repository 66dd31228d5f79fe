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

    from actors.contracts import write_parquet
    from actors.verify.verifier import pair_jobs, reference_jobs
    from actors.verify.worker import VerifierWorker
    from pipelines.completions import load_completions
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import load_tasks

    tasks = load_tasks(config.tasks)
    verifier = hide_task_files(config)
    connect_ray(config.ray)
    slots = config.verifier.slots or default_slots(verifier.cpus_per_slot, verifier.workers)
    worker_class = ray.remote(num_cpus=slots * verifier.cpus_per_slot)(VerifierWorker)
    workers = [worker_class.remote(verifier, slots) for _ in range(verifier.workers)]
    log.info("verifying with %d worker(s) x %d slot(s), executor %s, isolation features %s", len(workers), slots,
             verifier.executor, ray.get(workers[0].features.remote()) or "none (not forked)")
    started = time.monotonic()

    calibrated: list[Any] = []
    if verifier.executor == "forked" and verifier.isolation == "auto":
        unmarked = [task for task in tasks if "isolation" not in task.metadata and task.reference_solution]
        log.info("calibrating isolation: running %d references split (and shared where split fails)", len(unmarked))
        by_id = {task.task_id: task for task in unmarked}
        for task_ids, (modes, verdicts) in dispatch(workers, "calibrate_batch", list(by_id.items()), slots):
            for task_id, verdict in zip(task_ids, verdicts):
                by_id[task_id].metadata["isolation"] = modes[task_id]
                calibrated.append(verdict)
    shared_tasks = sorted(task.task_id for task in tasks if task.metadata.get("isolation") == "shared")
    if shared_tasks:
        print(f"{len(shared_tasks)} task(s) need the shared isolation mode: {', '.join(shared_tasks)}")

    progress = Progress(run)
    if config.completions is None and calibrated and len(calibrated) == len(tasks):
        order = {task.task_id: index for index, task in enumerate(tasks)}
        verdicts = sorted(calibrated, key=lambda verdict: order[verdict.task_id])  # the calibration ran them all
        for verdict in verdicts:
            progress.add(verdict)
    else:
        jobs = reference_jobs(tasks) if config.completions is None else pair_jobs(tasks, load_completions(config.completions))
        log.info("%d verifications of %d tasks from %s", len(jobs), len(tasks), config.tasks.source)
        verdicts = [None] * len(jobs)
        for indices, batch_verdicts in dispatch(workers, "verify_batch", list(enumerate(jobs)), slots):
            for index, verdict in zip(indices, batch_verdicts):
                verdicts[index] = verdict
                progress.add(verdict)
    wall_s = time.monotonic() - started
    for worker in workers:
        ray.kill(worker)

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


def dispatch(workers: list[Any], method: str, keyed: list[tuple[Any, Any]], batch_size: int) -> Any:
    """(keys, result) per batch of (key, item) pairs, as the workers finish them (ray's ActorPool
    is unordered, so each batch carries its keys through the worker and back)."""
    from ray.util import ActorPool

    batches = [keyed[start:start + batch_size] for start in range(0, len(keyed), batch_size)]
    return ActorPool(workers).map_unordered(
        lambda worker, batch: getattr(worker, method).remote([key for key, _ in batch], [item for _, item in batch]),
        batches)


class Progress:
    """One log line and one metrics row per verdict."""

    def __init__(self, run: Run) -> None:
        self.run, self.done, self.passed = run, 0, 0

    def add(self, verdict: Any) -> None:
        self.done += 1
        self.passed += verdict.status == "passed"
        log.info("[%d] %s#%d %s %d/%d tests, %s (%.2f s)", self.done, verdict.task_id, verdict.sample_idx,
                 verdict.status, verdict.tests_passed, verdict.tests_total, verdict.isolation, verdict.duration_s)
        self.run.log_metrics({"verify/pass_rate": self.passed / self.done, "verify/duration_s": verdict.duration_s,
                              "verify/reward": verdict.reward}, step=self.done)


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
