"""`qvr bench publish`: seconds per weight publish, and GB/s, against parameter count, for each
weight transport (actors/rollout/transport.py), side by side in one run.

A publish is what the learner's rank 0 does after each optimizer step: ``send`` the state dict,
and every rollout worker ``receive`` it whole. Here the workers are ``workers`` Ray actors that
receive through the transport and copy each tensor into a buffer of their own (as an engine's
load does), so the figure is the transport's, without an engine's own load time. The models are
random-initialised float32 state dicts of decoder layers of a width that gives each parameter
count (``qvr bench rollout`` measures the engines). Each size and transport publishes ``repeats``
times after one untimed publish; the sizes take turns, so a change in the machine's load hits all.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from pydantic import Field

from actors.config import Config

log = logging.getLogger("qvr.bench")


class PublishBenchConfig(Config):
    parameters: list[int] = Field([10_000_000, 100_000_000, 500_000_000], min_length=1)
    """Parameter counts of the random models (float32: 4 bytes each). 500M is 2 GB a publish."""

    transports: list[str] = ["object_store"]
    """Transports to compare (names in actors.rollout.transport.TRANSPORTS)."""

    workers: int = Field(2, ge=1, le=64)
    """Receiving workers, each a Ray actor (the rollout workers of a run)."""

    layers: int = Field(8, ge=1, le=1024)
    """Decoder layers the parameters are spread over (a transport's chunks never split a layer)."""

    repeats: int = Field(3, ge=1, le=100)
    """Timed publishes per size and transport, after one untimed one."""


def random_state_dict(parameters: int, layers: int) -> dict[str, Any]:
    """float32 tensors named as a decoder's (``model.layers.i.*``), ``parameters`` in all (to within
    a row): per layer two square projections and an embedding of the rest."""
    import torch

    per_layer = parameters // layers
    width = max(1, int(math.sqrt(per_layer / 2)))
    generator = torch.Generator().manual_seed(0)
    state = {}
    for layer in range(layers):
        for name in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
            state[f"model.layers.{layer}.{name}"] = torch.randn(width, width, generator=generator)
    rest = parameters - layers * 2 * width * width
    if rest > 0:
        state["model.embed_tokens.weight"] = torch.randn(rest, generator=generator)
    return state


class Receiver:
    """A rollout worker's side of a publish: receive, and copy each tensor into its own buffer."""

    def __init__(self, transport_name: str) -> None:
        self.transport = transport_for(transport_name)
        self.buffers: dict[str, Any] = {}

    def receive(self, handle: Any) -> int:
        """Bytes received."""
        received = 0
        for name, tensor in self.transport.receive(handle):
            buffer = self.buffers.get(name)
            if buffer is None or buffer.shape != tensor.shape:
                buffer = self.buffers[name] = tensor.clone()
            else:
                buffer.copy_(tensor)
            received += tensor.numel() * tensor.element_size()
        return received

    def checksum(self, names: list[str]) -> float:
        """What the worker holds now under ``names``, in one number (compared with the sender's, untimed)."""
        return state_checksum({name: self.buffers[name] for name in names})


def state_checksum(state: dict[str, Any]) -> float:
    """The tensors' sums, each weighted by its place (two tensors swapped change it too)."""
    return float(sum(float(tensor.double().sum()) * (index + 1) for index, tensor in enumerate(state.values())))


def transport_for(name: str) -> Any:
    """The named transport as a run's rollout config (its defaults) makes it."""
    from actors.rollout.config import RolloutConfig
    from actors.rollout.transport import TRANSPORTS

    return TRANSPORTS[name].from_config(RolloutConfig())


def publish_seconds(transport: Any, receivers: list[Any], state: dict[str, Any]) -> tuple[float, int]:
    """(seconds from send to the last worker's whole state dict, bytes each worker received)."""
    import ray

    started = time.perf_counter()
    handle = transport.send(state)
    done = [receiver.receive.remote(handle) for receiver in receivers]
    transport.push(handle)
    received = ray.get(done)
    seconds = time.perf_counter() - started
    if len(set(received)) != 1:
        raise RuntimeError(f"the workers received different amounts: {received}")
    return seconds, received[0]


def figures(state: dict[str, Any], size: int, seconds: list[float], workers: int) -> dict[str, float]:
    """One size's figures from its timed publishes (their median)."""
    median = sorted(seconds)[len(seconds) // 2]
    return {"parameters": float(sum(tensor.numel() for tensor in state.values())), "gb": size / 1e9,
            "seconds": median, "gb_per_s": size / 1e9 / median, "gb_per_s_all_workers": workers * size / 1e9 / median}


def run(config: PublishBenchConfig) -> dict[str, Any]:
    import ray

    from actors.rollout.transport import TRANSPORTS
    from pipelines.job import RayConfig, connect_ray

    unknown = sorted(set(config.transports) - set(TRANSPORTS))
    if unknown:
        raise ValueError(f"bench.publish.transports: unknown {unknown}; known: {sorted(TRANSPORTS)}")
    connect_ray(RayConfig())
    states = {count: random_state_dict(count, config.layers) for count in config.parameters}
    remote = ray.remote(num_cpus=0)(Receiver)
    results: dict[str, Any] = {}
    for name in config.transports:
        transport = transport_for(name)
        receivers = [remote.remote(name) for _ in range(config.workers)]
        try:
            times: dict[int, list[float]] = {count: [] for count in config.parameters}
            sizes: dict[int, int] = {}
            for state in states.values():
                publish_seconds(transport, receivers, state)  # untimed: the workers' buffers are made
            for _ in range(config.repeats):
                for count, state in states.items():
                    seconds, sizes[count] = publish_seconds(transport, receivers, state)
                    times[count].append(seconds)
                    log.info("%s: %d parameters in %.3f s", name, count, seconds)
                    expected = state_checksum(state)
                    held = ray.get([receiver.checksum.remote(list(state)) for receiver in receivers])
                    if any(not math.isclose(value, expected, rel_tol=1e-9) for value in held):
                        raise RuntimeError(f"{name}: a worker holds other weights than were sent ({held} vs {expected})")
        finally:
            for receiver in receivers:
                ray.kill(receiver, no_restart=True)
        results[name] = {f"{count / 1e6:g}M": figures(states[count], sizes[count], times[count], config.workers)
                         for count in config.parameters}
    return {"transports": results, "workers": float(config.workers)}
