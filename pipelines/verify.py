"""`qvr verify`: run completions (or each task's reference solution) against the hidden tests.

Recipe: load tasks -> pair them with completions -> one Ray task per verification, spread over
the cluster's CPUs -> verdicts Parquet + a table + per-status counts.
"""

from __future__ import annotations

import argparse
import collections
import logging
import time
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
    from actors.verify.verifier import pair_jobs, reference_jobs, verify_job
    from pipelines.completions import load_completions
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import load_tasks

    tasks = load_tasks(config.tasks)
    if config.completions is None:
        jobs = reference_jobs(tasks)
    else:
        jobs = pair_jobs(tasks, load_completions(config.completions))
    log.info("%d verifications of %d tasks from %s", len(jobs), len(tasks), config.tasks.source)

    connect_ray(config.ray)
    remote_verify = ray.remote(num_cpus=config.verifier.cpus_per_verification)(verify_job)
    started = time.monotonic()
    pending = {remote_verify.remote(job, config.verifier): index for index, job in enumerate(jobs)}
    verdicts: list[Any] = [None] * len(jobs)
    by_status: collections.Counter[str] = collections.Counter()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        verdict = ray.get(ready[0])
        verdicts[pending.pop(ready[0])] = verdict
        by_status[verdict.status] += 1
        done = len(jobs) - len(pending)
        log.info("[%d/%d] %s#%d %s %d/%d tests (%.1f s)", done, len(jobs), verdict.task_id, verdict.sample_idx,
                 verdict.status, verdict.tests_passed, verdict.tests_total, verdict.duration_s)
        run.log_metrics({"verify/pass_rate": by_status["passed"] / done, "verify/duration_s": verdict.duration_s,
                         "verify/reward": verdict.reward}, step=done)
    wall_s = time.monotonic() - started

    verdicts_path = run.path / "verdicts.parquet"
    write_parquet(verdicts, str(verdicts_path))
    print(format_table(verdicts))
    passed = by_status["passed"]
    print(f"{passed}/{len(verdicts)} passed in {wall_s:.1f} s; by status: {dict(sorted(by_status.items()))}")
    return {"total": len(verdicts), "passed": passed, "by_status": dict(sorted(by_status.items())),
            "verdicts": str(verdicts_path), "wall_s": round(wall_s, 3)}


def format_table(verdicts: list[Any], limit: int = 60) -> str:
    header = f"{'task_id':<40} {'sample':>6} {'status':<8} {'tests':>7} {'seconds':>8}"
    rows = [f"{v.task_id[:40]:<40} {v.sample_idx:>6} {v.status:<8} {f'{v.tests_passed}/{v.tests_total}':>7} "
            f"{v.duration_s:>8.2f}" for v in verdicts[:limit]]
    if len(verdicts) > limit:
        rows.append(f"... {len(verdicts) - limit} more rows in the verdicts Parquet")
    return "\n".join([header, *rows])
