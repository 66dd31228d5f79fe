"""`qvr bench TARGET`: benchmarks whose figures are ratios measured side by side in one run."""

from __future__ import annotations

import argparse
import importlib
import inspect
from typing import Any, Literal

from pipelines.benches.learner import LearnerBenchConfig
from pipelines.benches.noise import NoiseBenchConfig
from pipelines.benches.pool import PoolBenchConfig
from pipelines.benches.publish import PublishBenchConfig
from pipelines.benches.qpu import QpuBenchConfig
from pipelines.benches.rewards import RewardsBenchConfig
from pipelines.benches.rollout import RolloutBenchConfig
from pipelines.benches.step import StepBenchConfig
from pipelines.benches.templates import TemplatesBenchConfig
from pipelines.benches.verifier import VerifierBenchConfig
from pipelines.job import JobConfig
from pipelines.runs import Run

BENCHES = {"verifier": "pipelines.benches.verifier", "pool": "pipelines.benches.pool", "qpu": "pipelines.benches.qpu",
           "rollout": "pipelines.benches.rollout", "rewards": "pipelines.benches.rewards",
           "templates": "pipelines.benches.templates", "noise": "pipelines.benches.noise",
           "publish": "pipelines.benches.publish", "learner": "pipelines.benches.learner",
           "step": "pipelines.benches.step"}


class Config(JobConfig):
    target: Literal["verifier", "pool", "qpu", "rollout", "rewards", "templates", "noise", "publish",
                    "learner", "step"] = "verifier"
    """Which benchmark runs."""

    verifier: VerifierBenchConfig = VerifierBenchConfig()
    """`qvr bench verifier`: subprocess vs forked sandbox (shared and split) vs bare fork vs
    in-process, on small and QHE workloads."""

    pool: PoolBenchConfig = PoolBenchConfig()
    """`qvr bench pool`: the VerifierPool's throughput by size, and Ray's overhead per verification."""

    qpu: QpuBenchConfig = QpuBenchConfig()
    """`qvr bench qpu`: concurrent callers against one rate-limited fake backend, in scaled time;
    then QPU submissions and seconds per GRPO step with and without simulator tiers."""

    rollout: RolloutBenchConfig = RolloutBenchConfig()
    """`qvr bench rollout`: tokens/s of the vLLM actor, the same engine called directly, and transformers."""

    rewards: RewardsBenchConfig = RewardsBenchConfig()
    """`qvr bench rewards`: seconds per sample of the default, deprecation, QSpark and QSpark-paper rewards."""

    templates: TemplatesBenchConfig = TemplatesBenchConfig()
    """`qvr bench templates`: seconds each synthetic template's reference takes in the verifier."""

    noise: NoiseBenchConfig = NoiseBenchConfig()
    """`qvr bench noise`: on QHE's noisy-backend tasks, how often one run's verdict disagrees with
    the settled one, and how often a noise-aware verdict does (and the runs it spends)."""

    publish: PublishBenchConfig = PublishBenchConfig()
    """`qvr bench publish`: seconds per weight publish and GB/s against parameter count, per transport."""

    learner: LearnerBenchConfig = LearnerBenchConfig()
    """`qvr bench learner`: the learner alone (Ray Train + DeepSpeed), tokens/s against model size and ranks."""

    step: StepBenchConfig = StepBenchConfig()
    """`qvr bench step`: whole GRPO steps of a recipe's GRPO stage per setting (policy lag ...), split
    by component, beside TRL's GRPOTrainer on the same work."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bench_target", nargs="?", metavar="TARGET", help=f"one of: {', '.join(BENCHES)}")


def overrides_from(args: argparse.Namespace) -> list[str]:
    """TARGET is a shorthand of ``target=TARGET``; an override in its place is taken as one."""
    target = getattr(args, "bench_target", None)
    if not target:
        return []
    return [target if "=" in target else f"target={target}"]


def run(config: Config, run: Run) -> dict[str, Any]:
    module = importlib.import_module(BENCHES[config.target])
    target = getattr(config, config.target)
    # A bench whose run takes a folder writes files (a plot) into the bench run's.
    results = module.run(target, run.path) if "folder" in inspect.signature(module.run).parameters else module.run(target)
    flat = {f"{workload}/{key}": value for workload, figures in results.items() if isinstance(figures, dict)
            for key, value in figures.items() if isinstance(value, float)}
    flat.update({key: value for key, value in results.items() if isinstance(value, float)})
    run.log_metrics(flat, step=0)
    return results
