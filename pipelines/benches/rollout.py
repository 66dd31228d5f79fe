"""`qvr bench rollout`: generated tokens per second of the rollout engines, side by side.

(a) ``vllm``: the vLLM engine inside a RolloutWorker actor, called through Ray (what training
uses); (b) ``vllm_direct``: the same engine class in this process, no actor (so
``actor_overhead = 1 - vllm / vllm_direct`` is what the actor costs); (c) ``transformers``: the
transformers engine inside a RolloutWorker actor. Same model, prompts, sampling and seed for all;
each gets one untimed warm-up call, then ``repeats`` timed calls. One engine runs at a time, so
none competes with another for the cores. Start-up is excluded from the rates.

Without ``model`` the tiny random Qwen2 of ``actors.rollout.testing`` is built in a temporary
directory: the figures then measure the engines' overheads more than model compute.
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.prompts import Prompt

log = logging.getLogger("qvr.bench")


class RolloutBenchConfig(Config):
    model: str | None = None
    """Model directory (or hub id) to benchmark; None = the tiny random Qwen2 built locally."""

    prompts: int = Field(16, ge=1, le=100_000)
    """Prompts per generate call."""

    n: int = Field(4, ge=1, le=1024)
    """Samples per prompt (GRPO's group size)."""

    max_tokens: int = Field(64, ge=1, le=100_000)
    """Most new tokens per sample."""

    repeats: int = Field(2, ge=1, le=1000)
    """Timed generate calls per engine, after one untimed warm-up call."""

    max_model_len: int = Field(1024, ge=16)
    """Engines' context limit in tokens."""

    seed: int = 0
    """Sampling seed (prompt i gets seed + i), the same for every engine."""


def bench_prompts(count: int) -> list[Prompt]:
    """Short Qiskit requests, varied so no two prompts are the same."""
    shapes = ["a GHZ state", "a Bell pair", "a QFT", "Grover's diffuser", "a W state", "teleportation"]
    return [Prompt(task_id=f"bench/{index}",
                   text=f"Write a Qiskit function that builds {shapes[index % len(shapes)]} on {2 + index % 5} qubits.")
            for index in range(count)]


def tokens_per_second(generate, prompts: list[Prompt], sampling: SamplingConfig, repeats: int) -> dict[str, Any]:
    """Warm up once, then time ``repeats`` calls of ``generate(prompts, sampling)``."""
    generate(prompts, sampling)
    tokens, started = 0, time.monotonic()
    for _ in range(repeats):
        tokens += sum(len(completion.token_ids) for completion in generate(prompts, sampling))
    wall_s = time.monotonic() - started
    return {"tokens": tokens, "wall_s": wall_s, "tokens_per_s": tokens / wall_s}


def measure_actor(config: RolloutConfig, prompts: list[Prompt], sampling: SamplingConfig, repeats: int) -> dict[str, Any]:
    import ray

    from actors.rollout.worker import start_worker

    started = time.monotonic()
    worker = start_worker(config)
    try:
        info = ray.get(worker.info.remote())
        startup_s = time.monotonic() - started
        figures = tokens_per_second(lambda p, s: ray.get(worker.generate.remote(p, s)), prompts, sampling, repeats)
    finally:
        ray.kill(worker, no_restart=True)
    return {**figures, "startup_s": startup_s, "torch_threads": info["torch_threads"]}


def measure_direct(config: RolloutConfig, prompts: list[Prompt], sampling: SamplingConfig, repeats: int,
                   torch_threads: int) -> dict[str, Any]:
    """The engine in this process, with the actor's torch threads: Ray gives an actor
    OMP_NUM_THREADS = its CPUs, and on a small machine a second spinning OpenMP thread costs more
    than the whole actor round trip, which would hide what the comparison is for."""
    import torch

    from actors.rollout.engine import make_engine

    torch.set_num_threads(torch_threads)
    started = time.monotonic()
    engine = make_engine(config)
    try:
        startup_s = time.monotonic() - started
        figures = tokens_per_second(engine.generate, prompts, sampling, repeats)
    finally:
        engine.close()
    return {**figures, "startup_s": startup_s, "torch_threads": torch.get_num_threads()}


def run(config: RolloutBenchConfig) -> dict[str, Any]:
    from actors.rollout.testing import save_tiny_model
    from pipelines.job import RayConfig, connect_ray

    connect_ray(RayConfig())
    prompts = bench_prompts(config.prompts)
    sampling = SamplingConfig(n=config.n, max_tokens=config.max_tokens, seed=config.seed)
    with tempfile.TemporaryDirectory(prefix="qvr-bench-rollout-") as scratch:
        model = config.model or str(save_tiny_model(scratch))
        engine_config = {"model": model, "max_model_len": config.max_model_len, "seed": config.seed}
        vllm = RolloutConfig(engine="vllm", **engine_config)
        runs = {"vllm": measure_actor(vllm, prompts, sampling, config.repeats)}
        runs["vllm_direct"] = measure_direct(vllm, prompts, sampling, config.repeats, runs["vllm"]["torch_threads"])
        runs["transformers"] = measure_actor(RolloutConfig(engine="transformers", **engine_config), prompts, sampling,
                                             config.repeats)
    for name, figures in runs.items():
        log.info("%-12s %8.1f tokens/s (%d tokens in %.2f s; start-up %.1f s; %d torch threads)", name,
                 figures["tokens_per_s"], figures["tokens"], figures["wall_s"], figures["startup_s"],
                 figures["torch_threads"])
    rates = {name: round(figures["tokens_per_s"], 1) for name, figures in runs.items()}
    overhead = 1 - runs["vllm"]["tokens_per_s"] / runs["vllm_direct"]["tokens_per_s"]
    print(f"rollout vllm (actor) {rates['vllm']:9.1f} tok/s  vllm (direct) {rates['vllm_direct']:9.1f} tok/s  "
          f"transformers (actor) {rates['transformers']:9.1f} tok/s  actor overhead {overhead:+.1%}")
    return {"engines": rates, "actor_overhead": round(overhead, 4)}
