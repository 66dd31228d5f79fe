"""`qvr bench learner`: the learner alone, tokens per second of training steps (forward, backward,
optimizer step) on Ray Train + DeepSpeed, against model size and ranks, with nothing generated or
verified.

Each setting is a run of the SFT job (`qvr sft`: the same train loop, DeepSpeed engine and ranks as
GRPO's learner, fed from a dataset instead of the producer) over synthetic rows of exactly
``tokens`` tokens, on a random-initialised Qwen2 of the given depth and width (the shapes of
actors/rollout/testing.py, so nothing is downloaded). A setting's figure is a step's tokens, all
ranks together, over the median learn seconds of the timed steps (those after ``warmup_steps``);
the run's start-up (workers, DeepSpeed, weights, checkpoint) is reported apart, as ``overhead_s``.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config

log = logging.getLogger("qvr.bench")


class LearnerModel(Config):
    name: str
    """How the model is named in the results."""

    layers: int = Field(ge=1, le=64)
    """Decoder layers."""

    hidden_size: int = Field(ge=64, le=8192)
    """Width (heads of 64 dimensions; the MLP is twice as wide)."""


class LearnerBenchConfig(Config):
    models: list[LearnerModel] = Field(default_factory=lambda: [
        LearnerModel(name="tiny", layers=2, hidden_size=128), LearnerModel(name="small", layers=4, hidden_size=256),
        LearnerModel(name="medium", layers=8, hidden_size=512)], min_length=1)
    """Random-initialised Qwen2 models to train (tiny is the quickstart's policy shape)."""

    workers: list[int] = Field([1, 2], min_length=1)
    """Learner ranks to compare (Ray Train workers, gloo on CPU)."""

    cpus_per_worker: float = Field(0.5, gt=0, le=64)
    """Logical CPUs each rank asks Ray for (as the CPU presets do)."""

    zero_stage: int = Field(2, ge=0, le=3)
    """DeepSpeed ZeRO stage, as in the GRPO presets."""

    rows: int = Field(16, ge=1, le=4096)
    """Rows (sequences) per optimizer step, over all ranks."""

    tokens: int = Field(256, ge=8, le=32768)
    """Tokens in each row (prompt and completion)."""

    micro_batch_size: int = Field(4, ge=1, le=1024)
    """Rows per forward and backward pass on a rank."""

    steps: int = Field(6, ge=2, le=1000)
    """Optimizer steps per setting."""

    warmup_steps: int = Field(1, ge=0)
    """Steps left out of the figure (the first pays for lazy allocations)."""


def write_rows(path: Path, tokenizer: Any, rows: int, tokens: int, seed: int = 0) -> Path:
    """``rows`` prompt/completion rows whose completion is longer than ``tokens`` tokens of random
    vocabulary, so that cut at ``tokens`` (``data.max_length``) every row is exactly that long."""
    generator = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    vocabulary = [token for token in range(len(tokenizer)) if token not in special]
    lines = []
    for index in range(rows):
        completion = tokenizer.decode([generator.choice(vocabulary) for _ in range(2 * tokens)])
        lines.append(json.dumps({"prompt": f"row {index}", "completion": completion}))
    path.write_text("\n".join(lines) + "\n")
    return path


def save_model(path: Path, model: LearnerModel, tokenizer: Any) -> tuple[Path, int]:
    """The random model saved at ``path`` with ``tokenizer``; (path, parameter count)."""
    from actors.rollout.testing import build_model

    network = build_model(tokenizer, layers=model.layers, hidden_size=model.hidden_size)
    network.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, sum(parameter.numel() for parameter in network.parameters())


def sft_config(config: LearnerBenchConfig, model: Path, data: Path, workers: int, root: Path) -> Any:
    from pipelines.sft import Config as SftConfig

    return SftConfig.model_validate({
        "model": str(model), "run": {"root": str(root), "tensorboard": False}, "plot": False,
        "data": {"train": str(data), "heldout_fraction": 0.0, "prompt_format": "plain", "max_length": config.tokens},
        "train": {"epochs": config.steps, "global_batch_size": config.rows, "shuffle": False, "seed": 0},
        "learner": {"workers": workers, "cpus_per_worker": config.cpus_per_worker, "zero_stage": config.zero_stage,
                    "micro_batch_size": config.micro_batch_size, "schedule": {"kind": "constant"}},
        "checkpoint": {"every": config.steps, "keep": 1, "max_failures": 0}})


def measure(config: LearnerBenchConfig, model: Path, data: Path, workers: int, root: Path) -> dict[str, float]:
    """One setting: an SFT run, and its per-step figures read from the run's metrics."""
    from pipelines import sft
    from pipelines.runs import Run

    job = sft_config(config, model, data, workers, root)
    run = Run("sft", job, job.run)
    try:
        summary = sft.run(job, run)
    finally:
        run.close()
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if "tokens_per_s" in row]
    if len(steps) != config.steps:
        raise RuntimeError(f"the learner bench's run {run.path} logged {len(steps)} of {config.steps} steps")
    timed = steps[config.warmup_steps:]
    counts = {row["input_tokens"] for row in timed}
    if len(counts) != 1:
        raise RuntimeError(f"the learner bench's steps trained on different token counts: {sorted(counts)}")
    tokens, learn_s = float(counts.pop()), statistics.median(row["time/learn_s"] for row in timed)
    return {"tokens_per_s": tokens / learn_s, "learn_s": learn_s, "tokens_per_step": tokens,
            "overhead_s": summary["wall_s"] - sum(row["time/step_s"] for row in steps)}


def run(config: LearnerBenchConfig) -> dict[str, Any]:
    from actors.rollout.testing import build_tokenizer
    from pipelines.job import RayConfig, connect_ray

    if config.warmup_steps >= config.steps:
        raise ValueError(f"bench.learner.warmup_steps ({config.warmup_steps}) must be below steps ({config.steps})")
    if config.rows < max(config.workers):
        raise ValueError(f"bench.learner.rows ({config.rows}) leaves a rank without rows at {max(config.workers)} workers")
    connect_ray(RayConfig())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="qvr-bench-learner-") as scratch:
        root = Path(scratch)
        tokenizer = build_tokenizer()
        saved = {model.name: save_model(root / model.name, model, tokenizer) for model in config.models}
        data = write_rows(root / "rows.jsonl", tokenizer, config.rows, config.tokens)
        for workers in config.workers:
            for model in config.models:
                path, parameters = saved[model.name]
                figures = measure(config, path, data, workers, root / "runs")
                figures["parameters"] = float(parameters)
                results.setdefault(model.name, {})[f"{workers}_workers"] = figures
                log.info("learner %-8s %d worker(s): %8.0f tokens/s (%.3f s a step, %.1f s start-up)", model.name,
                         workers, figures["tokens_per_s"], figures["learn_s"], figures["overhead_s"])
    if len(config.workers) > 1:
        low, high = min(config.workers), max(config.workers)
        for figures in results.values():
            figures[f"{high}_over_{low}_workers"] = (figures[f"{high}_workers"]["tokens_per_s"]
                                                     / figures[f"{low}_workers"]["tokens_per_s"])
    return {"models": results, "rows": float(config.rows), "tokens": float(config.tokens)}
