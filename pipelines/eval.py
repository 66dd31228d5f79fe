"""`qvr eval`: pass@k of one or more models on Qiskit HumanEval, QHE-hard, HumanEval and task files.

Recipe: check every input (models, task sources, a completions file) before anything starts ->
one verifier pool for the whole run (it calibrates each task's isolation once and hides the task
files and the run directory) -> per model a RolloutGroup (vLLM or transformers) samples greedy
(temperature 0, n=1) and/or n samples per task, and every shard of samples goes to the pool the
moment it is sampled (verification overlaps generation) -> pass@k (unbiased estimator), greedy
pass@1, per difficulty tier and area, format rate, failure kinds -> ``samples.parquet``,
``report.md``, ``passk.png``, ``summary.json``.

``--completions FILE`` scores samples made elsewhere (no model); ``--canonical`` scores each
task's reference solution (the benchmark's ceiling on this machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from actors.rollout.config import RolloutConfig
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.evaluation.benchmarks import BenchmarkConfig, EvalPlan
from pipelines.job import JobConfig
from pipelines.runs import Run
from pipelines.tasks.loader import TaskSourceConfig

log = logging.getLogger("qvr.eval")


class Config(JobConfig, EvalPlan):
    models: dict[str, str] = {}
    """Display name -> model: a Hugging Face id, a local model folder, or a qvr run directory (its
    last checkpoint's ``hf_model/``, where ``qvr grpo`` writes the final policy). Several models
    are evaluated one after the other and reported side by side."""

    completions: str | None = None
    """A JSONL of ``{task_id, completion[, sample_idx]}`` made elsewhere, scored instead of
    sampling (one benchmark; every task needs at least max(sampled.k) samples)."""

    canonical: bool = False
    """Score each task's reference solution instead of a model (pass@1 of the references)."""

    benchmarks: dict[str, BenchmarkConfig] = {
        "qhe": BenchmarkConfig(tasks=TaskSourceConfig(source="Qiskit/qiskit_humaneval")),
    }
    """Benchmark name -> its tasks and prompting. The name is what reports show; tasks.format (or
    the source's name) tells QHE, QHE-hard and HumanEval apart."""

    only: list[str] | None = None
    """Evaluate only these benchmarks (names in ``benchmarks``); None: all of them."""

    rollout: RolloutConfig = RolloutConfig(num_cpus=0.5)
    """Rollout workers (engine, workers, max_model_len ...); ``rollout.model`` is ignored: each
    entry of ``models`` is loaded in turn."""

    verifier: VerifierConfig = VerifierConfig(timeout_s=90.0)
    """The sandbox: QHE's slowest canonical solution needs ~40 s on 2 cores."""

    pool: PoolConfig = PoolConfig()
    """The verifier workers."""

    plot: bool = True
    """Write passk.png."""

    isolation_cache: bool = True
    """Keep the isolation modes the verifier pool calibrates (by running each task's reference) in
    ``<run.root>/isolation-cache.json``, keyed by the task, the sandbox's code and limits and the
    Qiskit stack, so the next evaluation of the same tasks does not run every reference again."""

    progress_every_s: float = Field(10.0, gt=0)
    """Seconds between progress lines."""

    @model_validator(mode="after")
    def _one_source_of_samples(self) -> Config:
        chosen = [name for name, on in (("models", bool(self.models)), ("completions", self.completions is not None),
                                        ("canonical", self.canonical)) if on]
        if len(chosen) > 1:
            raise ValueError("give one of: models (--model), completions (--completions FILE), canonical "
                             f"(--canonical); got {', '.join(chosen)}")
        if not self.benchmarks:
            raise ValueError("no benchmarks")
        unknown = [name for name in self.only or [] if name not in self.benchmarks]
        if unknown:
            raise ValueError(f"only: {unknown} are not benchmarks; benchmarks: {', '.join(self.benchmarks)}")
        if self.completions is not None and len(self.selected()) != 1:
            raise ValueError(f"completions score one benchmark; choose it with --benchmark NAME (of "
                             f"{', '.join(self.selected())})")
        if any(("::" in name or "/" in name) for name in self.benchmarks):
            raise ValueError("benchmark names may not contain '::' or '/'")
        return self

    def selected(self) -> list[str]:
        return [name for name in self.benchmarks if self.only is None or name in self.only]

    def plan(self) -> EvalPlan:
        return EvalPlan(greedy=self.greedy, sampled=self.sampled, shard_prompts=self.shard_prompts, turns=self.turns)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", action="append", metavar="MODEL",
                        help="a Hugging Face id, model folder or qvr run directory (repeat for several; sets models)")
    source.add_argument("--completions", metavar="FILE", help="score JSONL rows {task_id, completion[, sample_idx]}")
    source.add_argument("--canonical", action="store_true", help="score each task's reference solution")
    parser.add_argument("--benchmark", action="append", metavar="NAME", help="evaluate only this benchmark (repeat)")
    parser.add_argument("--tasks", metavar="SOURCE",
                        help="a task source to evaluate: alone, one benchmark named after it (the file's stem); "
                             "with one --benchmark NAME, that benchmark's tasks.source")


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The flags as config overrides, validated like any other."""
    from pipelines.evaluation.inputs import model_name

    overrides = []
    if getattr(args, "model", None):
        names: dict[str, str] = {}
        for model in args.model:
            name, suffix = model_name(model), 2
            while name in names:
                name, suffix = f"{model_name(model)}-{suffix}", suffix + 1
            names[name] = model
        overrides += [f"models={json.dumps(names)}", "completions=null", "canonical=false"]
    if getattr(args, "completions", None):
        overrides += ["models={}", f"completions={args.completions}", "canonical=false"]
    if getattr(args, "canonical", False):
        overrides += ["models={}", "completions=null", "canonical=true"]
    if getattr(args, "benchmark", None):
        overrides.append(f"only={json.dumps(args.benchmark)}")
    if getattr(args, "tasks", None):
        names = args.benchmark or []
        if len(names) > 1:
            from pipelines.config import ConfigError

            raise ConfigError("--tasks sets the source of one benchmark: give one --benchmark NAME, or none "
                              f"(the benchmark is then named after the file, {benchmark_name(args.tasks)!r})")
        name = names[0] if names else benchmark_name(args.tasks)
        overrides.append(f"benchmarks.{name}.tasks.source={args.tasks}")
        if not names:
            overrides.append(f"only={json.dumps([name])}")
    return overrides


def benchmark_name(source: str) -> str:
    """The benchmark ``--tasks SOURCE`` alone evaluates: the file's stem (``qiskit-basics`` for
    ``.../qiskit-basics.jsonl``, also ``.jsonl.gz``; a dataset's last name), in the letters a
    dotted setting allows (``benchmarks.NAME.tasks.source``)."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "tasks"


def check(config: Config) -> None:
    """Every input read and checked before anything starts: a bad one is a ConfigError (exit 2)
    that names the file, the line and the task."""
    prepare(config)


def prepare(config: Config) -> tuple[list[Any], dict[str, str], dict[str, list[Any]] | None]:
    """(benchmark sets, model name -> what to load, completions by benchmark)."""
    from pipelines.config import ConfigError
    from pipelines.evaluation.inputs import EvalInputError, read_completions, resolve_model
    from pipelines.evaluation.runner import EvalSet
    from pipelines.tasks.loader import TaskSourceError, load_tasks

    sets = []
    problems = []
    if not (config.models or config.completions or config.canonical):
        problems.append("nothing to evaluate: name a model (--model, or models.NAME=...), a completions file "
                        "(--completions FILE) or --canonical")
    for name in config.selected():
        benchmark = config.benchmarks[name]
        try:
            sets.append(EvalSet(name, load_tasks(benchmark.tasks), benchmark))
        except (TaskSourceError, FileNotFoundError) as error:
            problems.append(f"benchmarks.{name}.tasks: {error}")
    models: dict[str, str] = {}
    for name, source in config.models.items():
        try:
            models[name] = resolve_model(source)
        except EvalInputError as error:
            problems.append(f"models.{name}: {error}")
    completions = None
    if config.completions is not None and not problems:
        try:
            completions = {sets[0].name: read_completions(config.completions, sets[0].tasks, sets[0].name,
                                                          config.sampled.k)}
        except EvalInputError as error:
            problems.append(f"completions: {error}")
    if problems:
        raise ConfigError("\n".join(problems))
    return sets, models, completions


def run(config: Config, run: Run) -> dict[str, Any]:
    from actors.contracts import Task  # noqa: F401 - the contracts before Ray pickles tasks
    from actors.verify.noise.references import flaky_line, flaky_references
    from actors.verify.pool.pool import VerifierPool
    from pipelines.cluster import pool_demand, rollout_demand
    from pipelines.evaluation.runner import evaluate
    from pipelines.job import connect_ray

    sets, models, completions = prepare(config)
    unmarked = [task for eval_set in sets for task in eval_set.tasks if "isolation" not in task.metadata]
    cache, reused = None, 0
    if config.isolation_cache and config.verifier.isolation == "auto":
        from pipelines.evaluation.isolation import IsolationCache

        cache = IsolationCache(Path(config.run.root) / "isolation-cache.json", config.verifier)
        reused = cache.apply(unmarked)
        if reused:
            log.info("isolation modes of %d of %d task(s) from %s (calibrated by an earlier run)", reused,
                     len(unmarked), cache.path)
    # The rollout workers serve one model at a time, beside the pool; the references need none.
    connect_ray(config.ray, needs=[pool_demand(config.pool), *([rollout_demand(config.rollout)] if models else [])])
    pool = VerifierPool(config.verifier, config.pool, hidden_paths=[*hidden_paths(config), str(run.path)])
    results: dict[str, Any] = {}
    sources: dict[str, str] = {}
    progress = _Progress(config.progress_every_s)
    try:
        if config.canonical:
            results["canonical"] = evaluate(pool, sets, canonical=True, on_row=progress)
            sources["canonical"] = "reference solutions"
        elif completions is not None:
            name = Path(config.completions).stem
            results[name] = evaluate(pool, sets, config.plan(), completions=completions, ks=config.sampled.k,
                                     on_row=progress)
            sources[name] = str(config.completions)
        else:
            for name, model in models.items():
                results[name] = _evaluate_model(config, pool, sets, model, progress)
                sources[name] = config.models[name]
                _log_model(run, len(sources) - 1, results[name])
    finally:
        pool.close()
        if cache is not None:
            cache.save(unmarked)
    marked = sum("isolation" in task.metadata for task in unmarked)
    summary = write_outputs(run, config, results, sources)
    flaky = flaky_references(task for eval_set in sets for task in eval_set.tasks)
    if flaky:  # their tests fail correct code by chance (verifier.noise.reference_runs)
        print(flaky_line(flaky), flush=True)
        with open(run.path / "report.md", "a") as report:
            report.write(f"\n**Flaky references** (not passing every calibration run): {', '.join(flaky)}\n")
    return {**summary, "isolation_marks": {"from_cache": reused, "calibrated": marked - reused},
            "flaky_references": flaky}


def _evaluate_model(config: Config, pool: Any, sets: list[Any], model: str, progress: Any) -> Any:
    from actors.rollout.group import RolloutGroup
    from pipelines.evaluation.runner import evaluate

    rollout = config.rollout.model_copy(update={"model": model, "prompt_format": "completion"})
    log.info("loading %s with %s (%d worker(s))", model, rollout.engine, rollout.workers)
    started = time.monotonic()
    with RolloutGroup(rollout, shard_prompts=config.shard_prompts) as group:
        load_s = time.monotonic() - started
        result = evaluate(pool, sets, config.plan(), group=group, on_row=progress)
    result.timing["load_s"] = round(load_s, 3)
    return result


def _log_model(run: Run, index: int, result: Any) -> None:
    from pipelines.evaluation.metrics import flat_metrics

    flat: dict[str, float] = {}
    for name, metrics in result.metrics.items():
        flat.update(flat_metrics(metrics, f"eval/{name}/"))
    run.log_metrics(flat, step=index)


class _Progress:
    """A progress line every few seconds: samples verified, passed, per benchmark."""

    def __init__(self, every_s: float) -> None:
        self.every_s, self.last, self.done, self.passed = every_s, time.monotonic(), 0, 0

    def __call__(self, row: dict[str, Any]) -> None:
        self.done += 1
        self.passed += row["status"] == "passed"
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            log.info("verified %d samples, %d passed (last: %s %s#%d %s)", self.done, self.passed, row["benchmark"],
                     row["task_id"], row["sample_idx"], row["status"])


def hidden_paths(config: Config) -> list[str]:
    """What the sandbox must not show: the task files' folders, HumanEval's bundled data."""
    from pipelines.tasks.loader import HUMANEVAL_SOURCE, source_format
    from pipelines.verify import task_source_paths

    paths: list[str] = []
    for name in config.selected():
        tasks = config.benchmarks[name].tasks
        paths += task_source_paths(tasks.source)
        if tasks.source == HUMANEVAL_SOURCE or source_format(tasks.source, tasks.format) == "humaneval":
            from pipelines.tasks.humaneval import humaneval_data_dir

            paths.append(str(humaneval_data_dir()))
    if config.completions:
        paths += task_source_paths(config.completions)
    return list(dict.fromkeys(paths))


def write_outputs(run: Run, config: Config, results: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """samples.parquet, report.md, passk.png; the summary (also summary.json)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.verify.cache.figures import cache_figures, cache_line
    from actors.verify.qpu.figures import qpu_figures
    from pipelines.evaluation.report import plot_passk, render_report

    rows = [{"model": name, **row} for name, result in results.items() for row in result.rows]
    samples_path = run.path / "samples.parquet"
    pq.write_table(pa.Table.from_pylist(rows), samples_path)
    per_model = {name: result.metrics for name, result in results.items()}
    timing = {name: result.timing for name, result in results.items()}
    settings = _settings(config)
    report = render_report(per_model, title=f"qvr eval: {run.path.name}", settings=settings, timing=timing)
    (run.path / "report.md").write_text(report + "\n")
    plot = plot_passk(per_model, run.path / "passk.png") if config.plot else None
    print(report, flush=True)
    first = next(iter(per_model))
    summary = {
        "benchmarks": per_model[first],
        "models": {name: {"source": sources[name], "benchmarks": metrics, "timing": timing[name]}
                   for name, metrics in per_model.items()},
        "settings": settings, "samples": str(samples_path), "report": str(run.path / "report.md"),
        "plot": str(plot) if plot else None, "timing": timing[first], **cache_figures(rows),
        "qpu": qpu_figures(rows),
    }
    print(cache_line(summary), flush=True)
    return summary


def _settings(config: Config) -> dict[str, Any]:
    if config.canonical:
        return {"source": "canonical solutions"}
    settings: dict[str, Any] = {}
    if config.completions:
        return {"source": config.completions, "k": config.sampled.k}
    settings["engine"] = config.rollout.engine
    settings["greedy"] = config.greedy
    if config.turns.max_turns > 1:
        settings["turns"] = config.turns.max_turns
    if config.sampled.n:
        settings.update({"n": config.sampled.n, "k": config.sampled.k, "temperature": config.sampled.temperature,
                         "top_p": config.sampled.top_p})
    return settings
