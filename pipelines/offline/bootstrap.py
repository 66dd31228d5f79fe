"""A tiny policy that has half-learned a task set, made by a run of the SFT job (`qvr sft`).

A random model never writes code that passes, so every GRPO group would have zero reward variance
and nothing to learn. This one is a tiny random model (a tokenizer trained here on the tasks'
text, nothing downloaded) fine-tuned by the offline learner to answer each task's prompt with its
reference: full-batch steps at a high learning rate, so that sampled at temperature 1 it writes the
reference sometimes and a corrupted copy otherwise, which gives smoke runs real, mixed rewards
from the sandbox. Deterministic for a given torch build and seed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def tiny_policy_config(data: Path, model: Path, rows: int, steps: int, seed: int, lr: float, run_root: Path,
                       ray: Any = None, evaluate_on: str | None = None) -> Any:
    """The SFT job's config: one rank, every row in every step, a constant learning rate; with
    ``evaluate_on`` (a task source) greedy pass@1 of the starting and the final policy on it."""
    from pipelines.sft import Config

    return Config.model_validate({
        "model": str(model), "run": {"root": str(run_root), "tensorboard": False},
        "data": {"train": str(data), "heldout_fraction": 0.0, "prompt_format": "chat", "max_length": 1024},
        "train": {"epochs": steps, "global_batch_size": rows, "shuffle": False, "seed": seed},
        "learner": {"workers": 1, "cpus_per_worker": 0.5, "zero_stage": 0, "lr": lr, "micro_batch_size": rows,
                    "adam_betas": [0.9, 0.999], "weight_decay": 0.01, "schedule": {"kind": "constant"}},
        "checkpoint": {"every": steps, "keep": 1, "max_failures": 0}, "plot": False,
        **({"ray": ray.model_dump()} if ray is not None else {}),
        **({"eval": {"benchmarks": {"tasks": {"tasks": {"source": evaluate_on}, "max_tokens": 160}},
                     "greedy": True, "rollout": {"engine": "vllm", "max_model_len": 512}}} if evaluate_on else {})})


def sft_tiny_policy(path: str | Path, tasks: list, run_root: str | Path, steps: int = 30, seed: int = 0,
                    lr: float = 3e-3, ray: Any = None, evaluate_on: str | None = None) -> Path:
    """Fine-tune a tiny random model on ``tasks`` (prompt -> reference solution) with `qvr sft` (its
    run under ``run_root``; Ray joined or started with ``ray``, a RayConfig) and save the final
    policy, tokenizer included, at ``path``. With ``evaluate_on`` (a task source), the starting and the
    final policy's greedy pass@1 on it go to ``qvr-tiny-policy.json`` beside the weights."""
    from pipelines import sft
    from pipelines.offline.smoke import write_smoke_model
    from pipelines.runs import Run

    path = Path(path)
    rows = [{"prompt": task.prompt, "completion": task.reference_solution} for task in tasks if task.reference_solution]
    if not rows:
        raise ValueError("a tiny policy needs tasks with reference solutions")
    work = Path(run_root) / f"{path.name}-bootstrap"
    work.mkdir(parents=True, exist_ok=True)
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    start = write_smoke_model(work / "start", [text for row in rows for text in row.values()], seed=seed)
    config = tiny_policy_config(data, start, len(rows), steps, seed, lr, work / "runs", ray, evaluate_on)
    run = Run("sft", config, config.run)
    try:
        summary = sft.run(config, run)
    finally:
        run.close()
    if not summary.get("policy"):
        raise RuntimeError(f"the SFT run {run.path} wrote no policy")
    shutil.copytree(summary["policy"], path, dirs_exist_ok=True)
    (path / "qvr-tiny-policy.json").write_text(json.dumps({
        "sft_run": str(run.path), "steps": steps, "seed": seed, "final_loss": summary["loss"][-1],
        "eval": summary["eval"]}))
    return path
