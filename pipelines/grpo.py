"""`qvr grpo`: online RL with quantum-verifiable rewards, end to end: GRPO and its variants, or any
online algorithm ``algorithm.name`` picks (a discriminated union: a new online algorithm is a member
of :data:`actors.learner.algorithms.online.OnlineAlgorithmConfig`, not a new job).

Recipe: load tasks -> start the ExperienceProducer (rollout workers + verifier pool) -> run the
learner ranks (Ray Train TorchTrainer + DeepSpeed) for ``steps`` optimizer steps -> log each
step's metrics as it finishes -> plot reward and pass rate. Ray Train restarts failed ranks from
the latest checkpoint (``max_failures``); ``--resume RUN_DIR`` continues a stopped run in place.
"""

from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from actors.learner.algorithms.grpo import GrpoConfig
from actors.learner.algorithms.online import OnlineAlgorithmConfig
from actors.learner.config import LearnerConfig
from actors.learner.producer import ProducerConfig
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.turns import TurnsConfig
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.evaluation.hook import TrainingEvalConfig, eval_line
from pipelines.job import CheckpointSettings, JobConfig, add_resume_argument, local_or_hub, resume_overrides, resume_path  # noqa: F401
from pipelines.progress import StepProgress
from pipelines.runs import Run
from pipelines.tasks.loader import TaskSourceConfig

log = logging.getLogger("qvr.grpo")


class Config(JobConfig):
    tasks: TaskSourceConfig = TaskSourceConfig()
    """Where the tasks come from (QHE JSON, Parquet of synthetic tasks, JSONL, a hub id)."""

    steps: int = Field(3, ge=1, le=10_000_000)
    """Optimizer steps; each trains on prompts_per_step x group_size samples."""

    algorithm: OnlineAlgorithmConfig = GrpoConfig()
    """The online algorithm and its objective, picked by ``algorithm.name`` (grpo: GRPO, with its
    advantage estimator and policy loss as options)."""

    producer: ProducerConfig = ProducerConfig()
    """Prompts per step, policy lag, data seed."""

    rollout: RolloutConfig = RolloutConfig()
    """Rollout workers: engine, model (the starting policy), workers."""

    sampling: SamplingConfig = SamplingConfig(max_tokens=1024, temperature=1.0, seed=0)
    """How completions are sampled (n is the algorithm's samples per prompt: GRPO's algorithm.group_size).
    Temperature 1.0 as in the IBM paper. A seed makes each step's sampling a function of (seed, step),
    which resumption relies on."""

    turns: TurnsConfig = TurnsConfig()
    """Multi-turn rollouts: the verifier's feedback as a tool turn, the policy answers again (QUASAR,
    arXiv 2510.00967); max_turns 1 is single-turn. Only the policy's tokens are trained on."""

    verifier: VerifierConfig = VerifierConfig()
    """The sandbox and the rewards."""

    pool: PoolConfig = PoolConfig()
    """The verifier pool: workers, slots, CPUs, health checks, autoscaling."""

    learner: LearnerConfig = LearnerConfig()
    """Learner ranks, DeepSpeed, optimizer, LoRA."""

    checkpoint: CheckpointSettings = CheckpointSettings()
    """Checkpoint cadence, retention, restarts."""

    bootstrap_tiny_policy: bool = False
    """Smoke runs without weights: when rollout.model names a directory that does not exist, build
    a tiny policy there that has half-learned the tasks' references (so rewards vary)."""

    resume: str | None = None
    """A run directory to continue from its latest checkpoint (``--resume``); the run's own
    config is used, these settings are ignored except ``steps``."""

    plot: bool = True
    """Write rewards.png (reward mean and pass rate per step) at the end."""

    eval: TrainingEvalConfig = TrainingEvalConfig()
    """Held-out evaluation every ``eval.every`` steps and at the end (``eval/pass@1`` ... in the
    metrics, TensorBoard and rewards.png); off while ``eval.benchmarks`` is empty."""

    @model_validator(mode="after")
    def _sampling_n_is_the_group(self) -> Config:
        from actors.learner.algorithms import algorithm_for

        group = algorithm_for(self.algorithm).samples_per_prompt()
        if self.sampling.n not in (1, group):
            raise ValueError(f"sampling.n ({self.sampling.n}) must equal the samples per prompt of {self.algorithm.name} "
                             f"({group}) or stay 1: the algorithm sets it")
        return self


add_arguments = add_resume_argument
overrides_from = resume_overrides
run_path = resume_path


def resumed_config(config: Config) -> Config:
    """The resumed run's own config, with this invocation's steps."""
    from pipelines.config import resolve_config

    original = resolve_config(Config, Path(config.resume) / "config.yaml")
    steps = config.steps if "steps" in config.model_fields_set else original.steps
    return original.model_copy(update={"steps": steps, "resume": config.resume})


def run(config: Config, run: Run) -> dict[str, Any]:
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actors.learner import checkpoint
    from actors.learner.producer import ExperienceProducer
    from actors.learner.train_loop import LoopSpec, train_loop
    from pipelines.cluster import learner_demand, pool_demand, rollout_demand
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import load_tasks
    from pipelines.verify import task_source_paths

    resume_from = None
    if config.resume:
        config = resumed_config(config)
        resume_from = checkpoint.latest(run.path)
        if resume_from is None:
            raise FileNotFoundError(f"--resume {run.path}: no checkpoint in it")
        log.info("resuming from %s (%d steps in all)", resume_from, config.steps)

    tasks = load_tasks(config.tasks)
    if not tasks:
        raise ValueError(f"tasks.source {config.tasks.source!r} holds no tasks")
    if config.bootstrap_tiny_policy and not Path(config.rollout.model).exists():
        from pipelines.offline.bootstrap import sft_tiny_policy

        print(f"building a tiny policy at {config.rollout.model} (bootstrap_tiny_policy: a `qvr sft` run) ...",
              flush=True)
        sft_tiny_policy(config.rollout.model, tasks, run.path, ray=config.ray)
    # Local model directories travel as absolute paths: Ray Train workers and actors do not share
    # the driver's working directory.
    config = config.model_copy(update={"rollout": config.rollout.model_copy(
        update={"model": local_or_hub(config.rollout.model)})})
    model = local_or_hub(config.learner.model or config.rollout.model)
    from actors.rollout.engine import check_model_source

    for name in {config.rollout.model, model}:
        check_model_source(name)  # a missing local directory fails here, not in a remote actor

    evaluator, eval_paths = None, []
    if config.eval.enabled:
        from pipelines.evaluation.hook import PolicyEvaluator, hidden_paths, load_sets

        evaluator = PolicyEvaluator(config.eval, load_sets(config.eval), config.steps)
        eval_paths = hidden_paths(config.eval)

    connect_ray(config.ray, needs=[pool_demand(config.pool), rollout_demand(config.rollout),
                                   learner_demand(config.learner)])
    started = time.monotonic()
    # The producer's pool keeps its verdicts in the driver's cache: on the driver's node, at the path resolved here.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    pool = config.pool.model_copy(update={"cache": config.pool.cache.here()})
    producer = ray.remote(ExperienceProducer).options(num_cpus=0, max_concurrency=config.learner.workers + 8,
                                                      scheduling_strategy=here).remote(
        tasks, config.producer, config.algorithm, config.rollout, config.sampling, config.verifier, pool,
        config.learner.workers, config.learner.micro_batch_size,
        hidden_paths=[*task_source_paths(config.tasks.source), *eval_paths, str(run.path.resolve())],
        evaluator=evaluator, turns=config.turns)
    spec = LoopSpec(learner=config.learner, algorithm=config.algorithm, model=model,
                    rollout=config.rollout, steps=config.steps, checkpoint_every=config.checkpoint.every,
                    resume_from=str(resume_from) if resume_from else None)
    trainer = TorchTrainer(
        train_loop, train_loop_config={"spec": spec, "producer": producer},
        scaling_config=ScalingConfig(num_workers=config.learner.workers, use_gpu=config.learner.use_gpu,
                                     resources_per_worker={"CPU": config.learner.cpus_per_worker}),
        # A resumed run is a new Ray Train run (its own name) started from the checkpoint chosen
        # above, rather than Ray Train's implicit restore of a same-named run: one rule decides.
        run_config=RunConfig(name=f"learner-resumed-{time.strftime('%Y%m%dT%H%M%S')}" if resume_from else "learner",
                             storage_path=str((run.path / "checkpoints").absolute()),
                             failure_config=FailureConfig(max_failures=config.checkpoint.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=config.checkpoint.keep)))

    history: list[dict[str, float]] = []
    evals: list[dict[str, float]] = []
    try:
        with ThreadPoolExecutor(1) as pool, StepProgress(config.steps, config.algorithm.name, lines=STEP_LINES) as progress:
            fitting = pool.submit(trainer.fit)
            while True:
                finished = fitting.done()
                for step, metrics in ray.get(producer.drain_metrics.remote()):
                    history.append({"step": step, **metrics})
                    run.log_metrics(metrics, step=step)
                    if "eval/step" in metrics:
                        evals.append({key: value for key, value in metrics.items() if key.startswith("eval/")})
                        progress.note(eval_line(evals[-1]))
                    progress.advance(step + 1, progress_line(step, config.steps, metrics))
                if finished:
                    break
                time.sleep(0.5)
            result = fitting.result()
        if evaluator is not None and config.eval.due(config.steps, config.steps) and not getattr(result, "error", None):
            final_eval = ray.get(producer.evaluate.remote(config.steps))  # the final policy, after the last step
            run.log_metrics(final_eval, step=config.steps)
            evals.append(final_eval)
            print(eval_line(final_eval), flush=True)
    finally:
        ray.get(producer.close.remote())
        ray.kill(producer)
    wall_s = time.monotonic() - started
    final = checkpoint.latest(run.path)
    if config.plot and history:
        plot_rewards(history, run.path / "rewards.png", evals)
    summary = summarize(history, wall_s)
    if evals:
        summary["eval"] = evals[-1]
    summary.update(checkpoint=str(final) if final else None, policy=str(final / checkpoint.HF_MODEL) if final else None,
                   steps_done=int(json.loads((final / checkpoint.TRAINER_STATE).read_text())["step"]) if final else 0,
                   error=str(result.error) if getattr(result, "error", None) else None)
    if summary["error"]:
        raise RuntimeError(f"the learner failed: {summary['error']}")
    return summary


STEP_LINES = 30
"""Step lines on the console: every step of a run of up to 30, about 30 of a longer one."""


def progress_line(step: int, steps: int, metrics: dict[str, float]) -> str:
    qpu = ""
    if metrics.get("qpu_s") or metrics.get("over_budget"):
        qpu = f"  QPU {metrics.get('qpu_s', 0):.1f} s, {int(metrics.get('over_budget', 0))} over budget"
    return (f"step {step + 1}/{steps}  reward {metrics.get('reward_mean', 0):.3f}  pass {metrics.get('pass_rate', 0):.2f}"
            f"  loss {metrics.get('loss', 0):+.4f}  kl {metrics.get('kl', 0):.4f}  "
            f"{metrics.get('time/step_s', 0):.1f} s (generate {metrics.get('time/generate_s', 0):.1f}, "
            f"verify {metrics.get('time/verify_s', 0):.1f}, learn {metrics.get('time/learn_s', 0):.1f}, "
            f"publish {metrics.get('time/publish_s', 0):.2f})  cached {metrics.get('cache_hit_rate', 0):.0%}{qpu}")


TIME_KEYS = ("time/step_s", "time/generate_s", "time/verify_s", "time/verify_tail_s", "time/wait_batch_s",
             "time/learn_s", "time/publish_s")


def summarize(history: list[dict[str, float]], wall_s: float) -> dict[str, Any]:
    """The run in a few numbers: per-step means of the time split, first and last rewards."""
    if not history:
        return {"steps": 0, "wall_s": round(wall_s, 1)}
    mean = {key.split("/")[1]: round(sum(h.get(key, 0.0) for h in history) / len(history), 3) for key in TIME_KEYS}
    return {"steps": len(history), "wall_s": round(wall_s, 1), "seconds_per_step": mean,
            "reward_mean": [_rounded(h.get("reward_mean", 0.0), 4) for h in history],
            "pass_rate": [_rounded(h.get("pass_rate", 0.0), 4) for h in history],
            "learner_tokens_per_s": round(sum(h.get("learner_tokens_per_s", 0.0) for h in history) / len(history), 1),
            **cache_totals(history), "qpu": qpu_totals(history)}


def _rounded(value: float, digits: int) -> float | None:
    """None where a step judged no sample (every one over the QPU budget: NaN in its metrics)."""
    return round(value, digits) if math.isfinite(value) else None


def qpu_totals(history: list[dict[str, float]]) -> dict[str, Any]:
    """QPU seconds per step and in all, and the samples the QPU budget refused (never judged)."""
    per_step = [round(h.get("qpu_s", 0.0), 3) for h in history]
    return {"qpu_s": round(sum(per_step), 3), "qpu_s_per_step": per_step,
            "over_budget": int(sum(h.get("over_budget", 0.0) for h in history))}


def cache_totals(history: list[dict[str, float]]) -> dict[str, float]:
    """The verdict cache over the run: samples answered without running, their share, seconds saved."""
    return {"cache_hits": int(sum(h.get("cache_hits", 0.0) for h in history)),  # every step samples as many
            "cache_hit_rate": round(sum(h.get("cache_hit_rate", 0.0) for h in history) / len(history), 4),
            "cache_saved_s": round(sum(h.get("cache_saved_s", 0.0) for h in history), 1)}


def plot_rewards(history: list[dict[str, float]], path: Path, evals: list[dict[str, float]] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] + 1 for h in history]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(steps, [h.get("reward_mean", 0.0) for h in history], marker="o", label="reward (mean)")
    axis.plot(steps, [h.get("pass_rate", 0.0) for h in history], marker="s", label="pass rate")
    for key in sorted({key for e in evals or [] for key in e if key.endswith("pass@1")}):
        # The policy after s optimizer steps samples step s + 1: an evaluation of it sits there too.
        points = [(e["eval/step"] + 1, e[key]) for e in evals or [] if key in e]
        axis.plot([x for x, _ in points], [y for _, y in points], marker="^", linestyle="--", label=key)
    axis.set_xlabel("step")
    axis.set_ylim(bottom=0)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
