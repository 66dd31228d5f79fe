"""`qvr verify`: run completions (or each task's reference solution) against the hidden tests.

Recipe: load tasks -> pair them with completions (or take each task's reference) -> the verifier
pool (the one verification service: it calibrates each unmarked task's isolation mode once, hides
the task files and the run directory from the sandbox, and answers every input exactly once) ->
verdicts Parquet + a table + per-status counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import time
from pathlib import Path
from typing import Any

from actors.verify.config import VerifierConfig
from actors.verify.feedback import FeedbackConfig
from actors.verify.pool.config import PoolConfig
from pipelines.job import JobConfig
from pipelines.runs import Run
from pipelines.tasks.loader import TaskSourceConfig, load_tasks

log = logging.getLogger("qvr.verify")


class Config(JobConfig):
    tasks: TaskSourceConfig = TaskSourceConfig()
    """Which tasks to verify."""

    completions: str | None = None
    """JSONL of {task_id, completion[, sample_idx]}; None verifies each task's reference solution."""

    verifier: VerifierConfig = VerifierConfig()
    """How each verification runs."""

    pool: PoolConfig = PoolConfig()
    """The verifier workers: how many, their slots and CPUs, health checks."""

    feedback: FeedbackConfig | None = None
    """Write each verdict's feedback, rendered as a multi-turn policy would read it between turns
    with these settings (a GRPO or eval run's ``turns.feedback``), to a ``feedback`` column of
    verdicts.parquet. None writes no such column. ``--feedback [RUN_CONFIG]`` sets it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", metavar="FILE", help="tasks: QHE JSON, JSONL or Parquet (sets tasks.source)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--completions", metavar="FILE", help="JSONL rows {task_id, completion[, sample_idx]}")
    source.add_argument("--canonical", action="store_true", help="verify each task's reference solution")
    parser.add_argument("--feedback", nargs="?", const="", metavar="RUN_CONFIG",
                        help="add each verdict's feedback, as a multi-turn policy would read it, to verdicts.parquet; "
                             "with RUN_CONFIG (a grpo or eval preset) under its turns.feedback settings")


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The flags as config overrides, so they are validated like any other."""
    overrides = []
    if args.tasks:
        overrides.append(f"tasks.source={args.tasks}")
    if args.completions:
        overrides.append(f"completions={args.completions}")
    if args.canonical:
        overrides.append("completions=null")
    if args.feedback is not None:
        # The preset's settings, each unless the command line sets it too (an override wins).
        given = {text.partition("=")[0].strip() for text in args.overrides}
        settings = {f"feedback.{key}": value for key, value in feedback_settings(args.feedback).items()}
        overrides += [f"{key}={json.dumps(value)}" for key, value in settings.items() if key not in given]
        if not any(key.startswith("feedback.") for key in given | settings.keys()):
            overrides.append("feedback={}")
    return overrides


def feedback_settings(run_config: str) -> dict[str, Any]:
    """The ``turns.feedback`` section of a run's preset ('' : the defaults), as raw settings that
    the config then validates like any override."""
    from pipelines.config import ConfigError, load_yaml

    if not run_config:
        return {}
    turns = load_yaml(run_config).get("turns")
    if not isinstance(turns, dict) or turns.get("max_turns", 1) == 1:
        raise ConfigError(f"--feedback {run_config}: the preset has no multi-turn rollouts "
                          "(turns.max_turns > 1), so its policy is never told anything")
    feedback = turns.get("feedback") or {}
    if not isinstance(feedback, dict):
        raise ConfigError(f"--feedback {run_config}: turns.feedback must be a mapping, got {feedback!r}")
    return feedback


def check(config: Config) -> None:
    """The tasks and the completions file read and checked before anything starts: a bad one is a
    ConfigError (exit 2) that names the file, the line and the task."""
    read_inputs(config)


def read_inputs(config: Config) -> tuple[list[Any], list[Any] | None]:
    """(tasks, completions or None for the references)."""
    from pipelines.completions import CompletionsError, load_completions
    from pipelines.config import ConfigError
    from pipelines.tasks.loader import TaskSourceError

    try:
        tasks = load_tasks(config.tasks)
    except (TaskSourceError, FileNotFoundError) as error:
        raise ConfigError(f"tasks: {error}") from None
    if config.completions is None:
        return tasks, None
    try:
        return tasks, load_completions(config.completions, {task.task_id for task in tasks},
                                       f"the tasks of {config.tasks.source}")
    except CompletionsError as error:
        raise ConfigError(f"completions: {error}") from None


def run(config: Config, run: Run) -> dict[str, Any]:
    import asyncio
    from dataclasses import replace

    from actors.contracts import write_parquet
    from actors.verify.cache.figures import cache_figures, cache_line
    from actors.verify.noise.references import flaky_line, flaky_references
    from actors.verify.pool.pool import VerifierPool
    from actors.verify.qpu.figures import qpu_figures
    from actors.verify.verifier import pair_jobs, reference_jobs
    from pipelines.cluster import pool_demand
    from pipelines.job import connect_ray

    tasks, completions = read_inputs(config)
    # A task without a reference is an error before Ray starts.
    jobs = reference_jobs(tasks) if completions is None else pair_jobs(tasks, completions)
    jobs = [replace(job, context=index) for index, job in enumerate(jobs)]  # each comes back with its place
    unmarked = {task.task_id for task in tasks if "isolation" not in task.metadata}
    connect_ray(config.ray, needs=[pool_demand(config.pool)])
    pool = VerifierPool(config.verifier, config.pool, hidden_paths=[*task_source_paths(config.tasks.source), run.path])
    log.info("%d verifications of %d tasks from %s on %d worker(s) x %d slot(s)", len(jobs), len(tasks),
             config.tasks.source, config.pool.workers, config.pool.slots_per_worker)
    progress = Progress(run)

    async def verify_all() -> list[tuple[Any, Any]]:
        return [(job, progress.add(verdict)) async for job, verdict in pool.pairs(jobs)]

    started = time.monotonic()
    try:
        answered = sorted(asyncio.run(verify_all()), key=lambda pair: pair[0].context)  # in input order
    finally:
        pool.close()
    verdicts = [verdict for _, verdict in answered]
    wall_s = time.monotonic() - started
    calibrated = [task for task in tasks if task.task_id in unmarked and "isolation" in task.metadata]
    shared_tasks = sorted(task.task_id for task in tasks if task.metadata.get("isolation") == "shared")
    if shared_tasks:
        print(f"{len(shared_tasks)} task(s) need the shared isolation mode: {', '.join(shared_tasks)}")
    flaky = flaky_references(tasks)
    if flaky:
        print(flaky_line(flaky))

    verdicts_path = run.path / "verdicts.parquet"
    if config.feedback is None:
        write_parquet(verdicts, str(verdicts_path))
    else:
        write_with_feedback(answered, config, verdicts_path)
    if calibrated:
        write_parquet(tasks, str(run.path / "tasks.parquet"))  # the tasks with their isolation marks
    print(format_table(verdicts))
    by_status = collections.Counter(verdict.status for verdict in verdicts)
    by_isolation = collections.Counter(verdict.isolation for verdict in verdicts)
    cache = cache_figures(verdicts)
    print(f"{by_status['passed']}/{len(verdicts)} passed in {wall_s:.1f} s; by status: {dict(sorted(by_status.items()))}; "
          f"by isolation: {dict(sorted(by_isolation.items()))}")
    print(cache_line(cache))
    return {"total": len(verdicts), "passed": by_status["passed"], "by_status": dict(sorted(by_status.items())),
            "qpu": qpu_figures(verdicts),
            "by_isolation": {"split": by_isolation["split"], "shared": by_isolation["shared"]},
            "shared_tasks": shared_tasks, "flaky_references": flaky,
            "verdicts": str(verdicts_path), "wall_s": round(wall_s, 3), **cache}


def write_with_feedback(answered: list[tuple[Any, Any]], config: Config, path: Path) -> None:
    """verdicts.parquet with a ``feedback`` column: each verdict's feedback text exactly as
    actors/rollout/turns.py renders it for the policy's next turn."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.contracts import to_rows
    from actors.verify.feedback import build_feedback, render_feedback

    texts = [render_feedback(build_feedback(job.task, verdict, config.feedback, job.code, config.verifier.timeout_s),
                             config.feedback) for job, verdict in answered]
    table = pa.Table.from_pylist(to_rows([verdict for _, verdict in answered]))
    table = table.append_column("feedback", pa.array(texts, pa.string()))
    pq.write_table(table, str(path))


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


def task_source_paths(source: str) -> list[str]:
    """What to hide from the sandbox for a task source: a local file's folder (it holds the hidden
    tests and the reference solutions, often beside other task files), or a dataset folder. A hub
    id lives in the cache under the home directory, which the sandbox never shows."""
    path = Path(source)
    if not path.exists():
        return []
    return [str(path.resolve() if path.is_dir() else path.resolve().parent)]


def format_table(verdicts: list[Any], limit: int = 60) -> str:
    header = f"{'task_id':<40} {'sample':>6} {'status':<8} {'tests':>7} {'seconds':>8}"
    rows = [f"{v.task_id[:40]:<40} {v.sample_idx:>6} {v.status:<8} {f'{v.tests_passed}/{v.tests_total}':>7} "
            f"{v.duration_s:>8.2f}" for v in verdicts[:limit]]
    if len(verdicts) > limit:
        rows.append(f"... {len(verdicts) - limit} more rows in the verdicts Parquet")
    return "\n".join([header, *rows])
