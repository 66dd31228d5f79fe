"""The recipe every offline job shares (``qvr sft``, ``qvr dpo``, ``qvr orpo``).

tokenize and validate the rows with Ray Data -> hand the training and held-out datasets to the
learner ranks (Ray Train TorchTrainer + DeepSpeed, ``get_dataset_shard``) -> score the held-out rows
before the first step -> train ``epochs`` over the data in global batches (seeded shuffle per
epoch, gradient accumulation, scheduled lr), a checkpoint every ``checkpoint.every`` steps -> score
the held-out rows after the last -> the final policy as a Hugging Face folder, metrics, TensorBoard,
a plot. Ray Train restarts failed ranks from the latest checkpoint; ``--resume RUN_DIR`` continues
a stopped run in place, mid-epoch, on the rows an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config as BaseConfig
from actors.learner.config import LearnerConfig
from pipelines.job import CheckpointSettings, JobConfig, add_resume_argument, resume_overrides, resume_path
from pipelines.offline.data import Kind, OfflineDataConfig
from pipelines.offline.evaluation import OfflineEvalConfig
from pipelines.offline.smoke import SmokeDataConfig
from pipelines.progress import StepProgress
from pipelines.runs import Run

log = logging.getLogger("qvr.offline")


class TrainSettings(BaseConfig):
    """How the learner walks the training rows."""

    epochs: int = Field(1, ge=1, le=100_000)
    """Passes over the training rows."""

    global_batch_size: int = Field(16, ge=1, le=1_000_000)
    """Rows (SFT examples, or preference pairs) per optimizer step, all ranks together; gradients
    accumulate over micro-batches of learner.micro_batch_size."""

    seed: int = 0
    """Seeds the per-epoch shuffle (epoch e is permutation (seed, e))."""

    shuffle: bool = True
    """Shuffle the rows every epoch."""


class OfflineJobConfig(JobConfig):
    """What every offline job's config holds besides its algorithm."""

    model: str = "runs/models/tiny-offline"
    """Starting weights: a local Hugging Face folder or a hub id (the tokenizer comes with it)."""

    data: OfflineDataConfig = OfflineDataConfig()
    """Training and held-out rows."""

    train: TrainSettings = TrainSettings()
    """Epochs, global batch, shuffle."""

    learner: LearnerConfig = LearnerConfig(lr=1e-5)
    """Learner ranks, DeepSpeed, optimizer and its schedule, LoRA."""

    checkpoint: CheckpointSettings = CheckpointSettings(every=10)
    """Checkpoint cadence, retention, restarts."""

    bootstrap_smoke: SmokeDataConfig | None = None
    """Smoke runs without downloads: when ``data.train`` / ``data.heldout`` or ``model`` name files
    that do not exist, build them here (rows from the task templates, a tiny random model)."""

    resume: str | None = None
    """A run directory to continue from its latest checkpoint (``--resume``); the run's own config
    is used, these settings are ignored (but ``learner.fail_at_steps``, a drill of this invocation)."""

    eval: OfflineEvalConfig = OfflineEvalConfig()
    """Held-out pass@k (sampled and greedy, verified in the sandbox) of the starting and the final
    policy: off while ``eval.benchmarks`` is empty."""

    plot: bool = True
    """Write training.png (loss; accuracy and margin for preference jobs) at the end."""


add_arguments = add_resume_argument
overrides_from = resume_overrides
run_path = resume_path


def check(config: OfflineJobConfig, kind: Kind) -> None:
    """Inputs checked before anything starts: a missing file or field is a ConfigError (exit 2)."""
    from pipelines.config import ConfigError

    if config.resume is not None:
        return
    if config.bootstrap_smoke is not None:
        return  # files that are missing will be built
    problems = check_sources(config, kind)
    if problems:
        raise ConfigError("\n".join(problems))


def check_sources(config: OfflineJobConfig, kind: Kind) -> list[str]:
    from actors.rollout.engine import check_model_source
    from pipelines.offline.data import check_sources as check_data

    problems = check_data(config.data, kind)
    try:
        check_model_source(config.model)
    except FileNotFoundError as error:
        problems.append(f"model: {error}")
    if config.eval.enabled:
        from pipelines.evaluation.hook import load_sets

        try:
            load_sets(config.eval)
        except (OSError, ValueError) as error:
            problems.append(f"eval.benchmarks: {error}")
    return problems


def bootstrap(config: OfflineJobConfig, kind: Kind) -> None:
    """Build the smoke rows and model where they are missing (the model's tokenizer trained on the
    training rows' text, JSONL or Parquet)."""
    from pipelines.offline.smoke import write_smoke_data, write_smoke_model

    smoke = config.bootstrap_smoke
    train, heldout = config.data.train, config.data.heldout
    if train and heldout and not (Path(train).exists() and Path(heldout).exists()):
        log.info("building smoke rows at %s and %s", train, heldout)
        write_smoke_data(Path(train), Path(heldout), smoke, pairs=kind == "pairs")
    if not Path(config.model).exists():
        from pipelines.inputfiles import UnreadableInput
        from pipelines.offline.data import read_rows

        try:
            texts = [value for row in read_rows(train) for value in row.values() if isinstance(value, str)]
        except UnreadableInput as error:
            raise UnreadableInput(f"data.train: {error}") from None
        log.info("building a tiny model at %s", config.model)
        write_smoke_model(Path(config.model), texts, shape=smoke.model)


def run_offline(config: OfflineJobConfig, algorithm: Any, kind: Kind, run: Run,
                rewrite: Callable[[Any, Run], tuple[Any, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The whole offline job; ``algorithm`` is the algorithm's typed config. ``rewrite(config, run)``
    (e.g. SFT's teacher) may replace the rows before they are read, on the run's own config (a
    resumed run's too); what it returns besides the config joins the summary."""
    import ray
    import ray.data
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from actors.learner import checkpoint
    from actors.learner.offline import MetricsBoard, OfflinePlan
    from actors.learner.train_loop import LoopSpec, train_loop
    from pipelines.cluster import learner_demand, pool_demand, rollout_demand
    from pipelines.config import resolve_config
    from pipelines.job import connect_ray, local_or_hub
    from pipelines.offline.data import prepare

    resume_from = None
    if config.resume:
        # The run's own config; fault injection is a drill of this invocation, not of the run.
        original = resolve_config(type(config), Path(config.resume) / "config.yaml")
        config = original.model_copy(update={"resume": config.resume, "learner": original.learner.model_copy(
            update={"fail_at_steps": config.learner.fail_at_steps})})
        algorithm = getattr(config, algorithm.name)
        resume_from = checkpoint.latest(run.path)
        if resume_from is None:
            raise FileNotFoundError(f"--resume {run.path}: no checkpoint in it")
        log.info("resuming from %s", resume_from)
    if config.bootstrap_smoke is not None:
        bootstrap(config, kind)
        problems = check_sources(config, kind)
        if problems:  # bad input, as check() finds it without bootstrap_smoke: exit 2
            from pipelines.config import ConfigError

            raise ConfigError("\n".join(problems))
    model = local_or_hub(config.model)

    # One after the other: the teacher's rollout workers, the learner ranks, the evaluation's workers.
    teacher = getattr(config, "teacher", None)
    needs = [learner_demand(config.learner, phase="train")]
    if rewrite is not None and teacher is not None:
        needs.append(rollout_demand(teacher.rollout, "teacher.rollout", phase="teacher"))
    if config.eval.enabled:
        needs += [pool_demand(config.eval.pool, "eval.pool", phase="eval"),
                  rollout_demand(config.eval.rollout, "eval.rollout", phase="eval")]
    connect_ray(config.ray, needs=needs)
    started = time.monotonic()
    extra: dict[str, Any] = {}
    if rewrite is not None:
        config, extra = rewrite(config, run)
    print("preparing data (Ray Data: read, validate, tokenize) ...", flush=True)
    train_rows, heldout_rows, data_report = prepare(config.data, kind, model)
    plan = OfflinePlan(rows=len(train_rows), epochs=config.train.epochs, global_batch_size=config.train.global_batch_size,
                       seed=config.train.seed, shuffle=config.train.shuffle, heldout=bool(heldout_rows))
    dropped = {key: value for key, value in data_report["train"].items() if key not in ("rows", "usable") and value}
    print(f"data: {plan.rows} training rows, {len(heldout_rows)} held-out; {plan.steps} steps "
          f"({plan.epochs} epoch(s) x {plan.steps_per_epoch})" + (f"; dropped or cut: {dropped}" if dropped else ""),
          flush=True)
    datasets = {"train": ray.data.from_items(train_rows)}
    if heldout_rows:
        datasets["heldout"] = ray.data.from_items(heldout_rows)
    board = ray.remote(MetricsBoard).options(num_cpus=0).remote()
    spec = LoopSpec(learner=config.learner, algorithm=algorithm, model=model, offline=plan, steps=plan.steps,
                    checkpoint_every=config.checkpoint.every, resume_from=str(resume_from) if resume_from else None)
    trainer = TorchTrainer(
        train_loop, train_loop_config={"spec": spec, "board": board},
        scaling_config=ScalingConfig(num_workers=config.learner.workers, use_gpu=config.learner.use_gpu,
                                     resources_per_worker={"CPU": config.learner.cpus_per_worker}),
        datasets=datasets, dataset_config=DataConfig(datasets_to_split=[]),
        run_config=RunConfig(name=f"learner-resumed-{time.strftime('%Y%m%dT%H%M%S')}" if resume_from else "learner",
                             storage_path=str((run.path / "checkpoints").absolute()),
                             failure_config=FailureConfig(max_failures=config.checkpoint.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=config.checkpoint.keep)))

    history: list[dict[str, float]] = []
    heldout: dict[str, dict[str, float]] = {}
    learn_s = tokens = 0.0
    with ThreadPoolExecutor(1) as pool, StepProgress(plan.steps, algorithm.name) as progress:
        fitting = pool.submit(trainer.fit)
        while True:
            finished = fitting.done()
            for step, metrics in ray.get(board.drain_metrics.remote()):
                if any(key.startswith("heldout/") for key in metrics):
                    tag = "before" if step == 0 else "after"
                    heldout[tag] = {key.removeprefix("heldout/"): value for key, value in metrics.items()}
                    run.log_metrics(metrics, step=step)
                    progress.note(heldout_line(tag, step, heldout[tag]))
                    continue
                history.append({"step": step, **metrics})
                learn_s += metrics.get("time/learn_s", 0.0)
                tokens += metrics.get("input_tokens", 0.0)
                run.log_metrics(metrics, step=step)
                progress.advance(step + 1, progress_line(step, plan.steps, metrics))
            if finished:
                break
            time.sleep(0.5)
        try:
            result = fitting.result()
        except ray.train.TrainingFailedError as error:  # Ray Train 2.x raises where 1.x returned result.error
            raise RuntimeError(f"the learner failed: {error}") from None
        finally:
            ray.kill(board)
    wall_s = time.monotonic() - started
    if getattr(result, "error", None):
        raise RuntimeError(f"the learner failed: {result.error}")
    final = checkpoint.latest(run.path)
    if config.plot and history:
        plot_training(history, run.path / "training.png")
    policy = final / checkpoint.HF_MODEL if final and (final / checkpoint.HF_MODEL).exists() else None
    evaluations = {}
    if config.eval.enabled and policy is not None:
        from pipelines.offline.evaluation import evaluate_policies

        evaluations = evaluate_policies(config.eval, {0: model, plan.steps: str(policy)}, plan.steps, run)
    shown = HELDOUT_KEYS[algorithm.name]
    return {
        "steps": len(history), "wall_s": round(wall_s, 1),
        "tokens_per_s": round(tokens / max(learn_s, 1e-9), 1),
        "loss": [round(h["loss"], 5) for h in history],
        "heldout": {tag: {key: round(values[key], 5) for key in shown if key in values} for tag, values in heldout.items()},
        "data": data_report,
        "checkpoint": str(final) if final else None,
        "policy": str(policy) if policy else None,
        "eval": {tag: {key.removeprefix("eval/"): round(value, 5) for key, value in flat.items() if "pass@" in key}
                 for tag, flat in evaluations.items()},
        **extra,
    }


HELDOUT_KEYS = {"sft": ("loss",), "dpo": ("accuracy", "margin", "loss"), "orpo": ("accuracy", "margin", "loss")}


def heldout_line(tag: str, step: int, values: dict[str, float]) -> str:
    shown = "  ".join(f"{key} {values[key]:.4f}" for key in ("loss", "accuracy", "margin") if key in values)
    return f"held-out {tag} (after {step} step(s)): {shown}"


def progress_line(step: int, steps: int, metrics: dict[str, float]) -> str:
    extra = "".join(f"  {key} {metrics[key]:.3f}" for key in ("accuracy", "margin") if key in metrics)
    return (f"step {step + 1}/{steps}  loss {metrics.get('loss', 0):.4f}{extra}  lr {metrics.get('lr', 0):.2e}  "
            f"{metrics.get('time/step_s', 0):.1f} s  {metrics.get('tokens_per_s', 0):.0f} tokens/s")


def plot_training(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] + 1 for h in history]
    preference = "accuracy" in history[0]
    figure, axes = plt.subplots(1, 2 if preference else 1, figsize=(10 if preference else 6, 3.5), squeeze=False)
    axes[0][0].plot(steps, [h["loss"] for h in history], marker="o", label="loss")
    axes[0][0].set_xlabel("step")
    axes[0][0].legend()
    axes[0][0].grid(alpha=0.3)
    if preference:
        axes[0][1].plot(steps, [h["accuracy"] for h in history], marker="s", label="preference accuracy")
        axes[0][1].plot(steps, [h["margin"] for h in history], marker="^", label="reward margin")
        axes[0][1].set_xlabel("step")
        axes[0][1].legend()
        axes[0][1].grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
