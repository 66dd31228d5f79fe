"""`qvr bench rollout`: generated tokens per second of the rollout engines, side by side.

(a) ``vllm``: the vLLM engine inside a RolloutWorker actor, called through Ray (what training
uses); (b) ``vllm_direct``: the same engine class in this process, no actor (so
``actor_overhead = 1 - vllm / vllm_direct`` is what the actor costs); (c) ``transformers``: the
transformers engine inside a RolloutWorker actor. Same model, prompts, sampling, seed and torch
threads for all; each gets one untimed warm-up call, then ``repeats`` timed rounds in which the
three take turns (one engine runs at a time, and a change in the machine's load hits all three
alike). Start-up is excluded from the rates.

Without ``model`` the tiny random Qwen2 of ``actors.rollout.testing`` is built in a temporary
directory: the figures then measure the engines' overheads more than model compute.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
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

    repeats: int = Field(5, ge=1, le=1000)
    """Timed rounds (one generate call per engine each), after one untimed warm-up call."""

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


def side_by_side(runners: dict[str, Callable], prompts: list[Prompt], sampling: SamplingConfig,
                 repeats: int) -> dict[str, dict[str, Any]]:
    """Warm each runner up once, then time ``repeats`` rounds of one call each, interleaved, so
    a change in the machine's load hits every runner alike."""
    figures = {name: {"tokens": 0, "wall_s": 0.0} for name in runners}
    for generate in runners.values():
        generate(prompts, sampling)
    for _ in range(repeats):
        for name, generate in runners.items():
            started = time.monotonic()
            completions = generate(prompts, sampling)
            figures[name]["wall_s"] += time.monotonic() - started
            figures[name]["tokens"] += sum(len(completion.token_ids) for completion in completions)
    for values in figures.values():
        values["tokens_per_s"] = values["tokens"] / values["wall_s"]
    return figures


def start_actor(config: RolloutConfig) -> tuple[Any, Callable]:
    """A RolloutWorker actor and a blocking generate that calls it through Ray."""
    import ray

    from actors.rollout.worker import start_worker

    worker = start_worker(config)
    return worker, lambda prompts, sampling: ray.get(worker.generate.remote(prompts, sampling))


def start_direct(config: RolloutConfig, torch_threads: int) -> Any:
    """The engine in this process, with the actor's torch threads: Ray gives an actor
    OMP_NUM_THREADS = its CPUs, and on a small machine a second spinning OpenMP thread costs more
    than the whole actor round trip, which would hide what the comparison is for."""
    import torch

    from actors.rollout.factory import make_engine

    torch.set_num_threads(torch_threads)
    return make_engine(config)


def run(config: RolloutBenchConfig) -> dict[str, Any]:
    import ray

    from actors.rollout.testing import save_tiny_model
    from pipelines.job import RayConfig, connect_ray

    connect_ray(RayConfig())
    prompts = bench_prompts(config.prompts)
    sampling = SamplingConfig(n=config.n, max_tokens=config.max_tokens, seed=config.seed)
    with tempfile.TemporaryDirectory(prefix="qvr-bench-rollout-") as scratch:
        model = config.model or str(save_tiny_model(scratch))
        shared = {"model": model, "max_model_len": config.max_model_len, "seed": config.seed}
        vllm = RolloutConfig(engine="vllm", **shared)
        started = time.monotonic()
        vllm_actor, vllm_generate = start_actor(vllm)
        hf_actor, hf_generate = start_actor(RolloutConfig(engine="transformers", **shared))
        try:
            threads = ray.get(vllm_actor.info.remote())["torch_threads"]
            hf_threads = ray.get(hf_actor.info.remote())["torch_threads"]
            direct = start_direct(vllm, threads)
            startup_s = time.monotonic() - started
            runs = side_by_side({"vllm": vllm_generate, "vllm_direct": direct.generate, "transformers": hf_generate},
                                prompts, sampling, config.repeats)
            direct.close()
        finally:
            ray.kill(vllm_actor, no_restart=True)
            ray.kill(hf_actor, no_restart=True)
    log.info("engines started in %.1f s; torch threads: vllm %d, vllm_direct %d, transformers %d", startup_s, threads,
             threads, hf_threads)
    for name, figures in runs.items():
        log.info("%-12s %8.1f tokens/s (%d tokens in %.2f s)", name, figures["tokens_per_s"], figures["tokens"],
                 figures["wall_s"])
    rates = {name: round(figures["tokens_per_s"], 1) for name, figures in runs.items()}
    overhead = 1 - runs["vllm"]["tokens_per_s"] / runs["vllm_direct"]["tokens_per_s"]
    print(f"rollout vllm (actor) {rates['vllm']:9.1f} tok/s  vllm (direct) {rates['vllm_direct']:9.1f} tok/s  "
          f"transformers (actor) {rates['transformers']:9.1f} tok/s  actor overhead {overhead:+.1%}")
    return {"engines": rates, "actor_overhead": round(overhead, 4)}
