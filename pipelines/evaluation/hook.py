"""Evaluation inside training: a held-out task set scored every ``eval.every`` steps and at the end.

One hook for every training job (GRPO today; SFT and DPO the same way): a job puts a
:class:`TrainingEvalConfig` in its config (``eval:``), builds a :class:`PolicyEvaluator` from it
and calls it with the rollout group that serves the current policy and a verifier pool; it gets
flat scalars (``eval/pass@1``, ``eval/greedy_pass@1``, per tier, format rate, failure shares) for
the run's metric sinks. The evaluator pickles (a job may hand it to the Ray actor that owns the
rollout group); its tasks keep the isolation marks the pool gives them, so only the first
evaluation pays for calibration.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from pipelines.evaluation.benchmarks import BenchmarkConfig, EvalPlan


class TrainingEvalConfig(EvalPlan):
    """A held-out evaluation during training (off while ``benchmarks`` is empty)."""

    benchmarks: dict[str, BenchmarkConfig] = {}
    """Name -> held-out tasks and prompting (e.g. a held-out split of synthetic tasks, QHE); empty:
    no evaluation. With one benchmark the metrics are ``eval/pass@1`` ..., with several
    ``eval/<name>/pass@1`` ..."""

    every: int = Field(0, ge=0)
    """Evaluate the policy after every N optimizer steps (0: only at the end)."""

    at_start: bool = False
    """Also evaluate the starting policy (logged at step 0)."""

    at_end: bool = True
    """Evaluate the final policy (logged at step = steps)."""

    @model_validator(mode="after")
    def _no_names_that_break_metrics(self) -> TrainingEvalConfig:
        bad = [name for name in self.benchmarks if "::" in name or "/" in name]
        if bad:
            raise ValueError(f"benchmark names may not contain '::' or '/': {bad}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.benchmarks)

    def plan(self) -> EvalPlan:
        return EvalPlan(greedy=self.greedy, sampled=self.sampled, shard_prompts=self.shard_prompts, turns=self.turns)

    def due(self, step: int, steps: int) -> bool:
        """Whether the policy after ``step`` optimizer steps is evaluated (of ``steps`` in all)."""
        if not self.enabled:
            return False
        if step == 0:
            return self.at_start
        if step == steps:
            return self.at_end or (self.every > 0 and step % self.every == 0)
        return self.every > 0 and step % self.every == 0


def load_sets(config: TrainingEvalConfig) -> list[Any]:
    """The held-out benchmarks' tasks (read once, in the driver: a bad source fails before training)."""
    from pipelines.evaluation.runner import EvalSet
    from pipelines.tasks.loader import load_tasks

    return [EvalSet(name, load_tasks(benchmark.tasks), benchmark) for name, benchmark in config.benchmarks.items()]


def hidden_paths(config: TrainingEvalConfig) -> list[str]:
    """The held-out task files' folders (and HumanEval's bundled data) for the pool to hide."""
    from pipelines.tasks.loader import source_format
    from pipelines.verify import task_source_paths

    paths: list[str] = []
    for benchmark in config.benchmarks.values():
        paths += task_source_paths(benchmark.tasks.source)
        if source_format(benchmark.tasks.source, benchmark.tasks.format) == "humaneval":
            from pipelines.tasks.humaneval import humaneval_data_dir

            paths.append(str(humaneval_data_dir()))
    return paths


class PolicyEvaluator:
    """``evaluator(group, pool, step)`` -> flat metrics of the policy ``group`` serves (after
    ``step`` optimizer steps), or ``{}`` when ``step`` is not due (see TrainingEvalConfig.due)."""

    def __init__(self, config: TrainingEvalConfig, sets: list[Any], steps: int) -> None:
        self.config, self.sets, self.steps = config, sets, steps
        self.tokenizer: Any = None

    def due(self, step: int) -> bool:
        return self.config.due(step, self.steps)

    def __call__(self, group: Any, pool: Any, step: int, force: bool = False) -> dict[str, float]:
        from pipelines.evaluation.runner import evaluate_policy

        if not (force or self.due(step)):
            return {}
        if self.tokenizer is None:
            from actors.rollout.engine import load_tokenizer

            self.tokenizer = load_tokenizer(group.config)
        flat, _ = evaluate_policy(group, pool, self.sets, self.config.plan(), tokenizer=self.tokenizer)
        flat["eval/step"] = float(step)
        return flat


def eval_line(metrics: dict[str, float]) -> str:
    """One console line of an evaluation's flat metrics (every training job prints it)."""
    shown = {key: value for key, value in metrics.items() if "pass@" in key and key.count("/") <= 2}
    return f"eval after {int(metrics.get('eval/step', 0))} step(s): " + "  ".join(
        f"{key.removeprefix('eval/')} {value:.3f}" for key, value in shown.items())
