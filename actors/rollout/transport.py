"""How new policy weights travel from the learner to the rollout workers.

A :class:`WeightTransport` has two sides. ``send`` runs where the weights are (the learner, or a
RolloutGroup on its behalf) and returns a small picklable handle; each worker's ``receive`` turns
the handle back into ``(name, tensor)`` pairs that its engine loads as they arrive. ``push`` runs
on the sending side while the workers receive, for transports where the sender must take part
(an NCCL broadcast); pull transports leave it empty. A CUDA IPC or NCCL transport is one more
subclass registered in :data:`TRANSPORTS`.

Weights are cut into chunks of whole layers: vLLM fuses q/k/v and gate/up into single
parameters, and a chunk holding only part of such a group loads garbage without an error.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from actors.rollout.config import RolloutConfig

NamedTensors = Iterable[tuple[str, Any]]

_LAYER = re.compile(r"^(.*?\.layers\.\d+)\.")


def layer_of(name: str) -> str:
    """The unit a tensor must travel with: its decoder layer, or itself outside the layers."""
    match = _LAYER.match(name)
    return match.group(1) if match else name


def chunk_weights(weights: Mapping[str, Any] | NamedTensors, chunk_bytes: int) -> list[list[tuple[str, Any]]]:
    """Group tensors into chunks of about ``chunk_bytes``, never splitting a layer; a layer larger
    than ``chunk_bytes`` is a chunk of its own. Order within the state dict is kept."""
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    items = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
    layers: dict[str, list[tuple[str, Any]]] = {}
    for name, tensor in items:
        if not isinstance(name, str):
            raise TypeError(f"weight names must be str, got {name!r}")
        layers.setdefault(layer_of(name), []).append((name, tensor))
    chunks: list[list[tuple[str, Any]]] = []
    current: list[tuple[str, Any]] = []
    current_bytes = 0
    for layer in layers.values():
        size = sum(tensor.numel() * tensor.element_size() for _, tensor in layer)
        if current and current_bytes + size > chunk_bytes:
            chunks.append(current)
            current, current_bytes = [], 0
        current.extend(layer)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


class WeightTransport(ABC):
    """Moves a state dict (Hugging Face names) from one sender to any number of workers."""

    name: ClassVar[str]
    handle_type: ClassVar[type]

    @classmethod
    def from_config(cls, config: RolloutConfig) -> WeightTransport:
        return cls()

    @abstractmethod
    def send(self, weights: Mapping[str, Any] | NamedTensors) -> Any:
        """Stage ``weights`` for the workers; returns a picklable handle they receive from. The
        handle stays receivable (by a restarted worker too) for as long as the sender keeps it."""

    def is_handle(self, value: Any) -> bool:
        """Whether ``value`` is what this transport's ``send`` returns (already sent)."""
        return isinstance(value, self.handle_type)

    def push(self, handle: Any) -> None:  # noqa: B027 - optional: pull transports keep the default
        """Sender's part while the workers receive ``handle``; nothing for pull transports."""

    @abstractmethod
    def receive(self, handle: Any) -> Iterator[tuple[str, Any]]:
        """Worker side: the ``(name, tensor)`` pairs of ``handle`` in the order they were sent,
        yielded as they arrive so the engine can load them one chunk at a time."""


@dataclass
class ObjectStoreHandle:
    """Chunks of a state dict in Ray's object store; each ref holds a list of (name, tensor)."""

    chunks: list[Any] = field(default_factory=list)
    tensors: int = 0
    nbytes: int = 0


class ObjectStoreTransport(WeightTransport):
    """The state dict in chunks through Ray's object store: any device, any node, no setup.
    Workers pull chunk by chunk, so a worker holds one chunk at a time beside its model."""

    name = "object_store"
    handle_type = ObjectStoreHandle

    def __init__(self, chunk_bytes: int) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.chunk_bytes = chunk_bytes

    @classmethod
    def from_config(cls, config: RolloutConfig) -> ObjectStoreTransport:
        return cls(chunk_bytes=int(config.chunk_mb * 1024 * 1024))

    def send(self, weights: Mapping[str, Any] | NamedTensors) -> ObjectStoreHandle:
        import ray

        handle = ObjectStoreHandle()
        for chunk in chunk_weights(weights, self.chunk_bytes):
            tensors = [(name, tensor.detach().to("cpu").contiguous()) for name, tensor in chunk]
            handle.chunks.append(ray.put(tensors))
            handle.tensors += len(tensors)
            handle.nbytes += sum(tensor.numel() * tensor.element_size() for _, tensor in tensors)
        if not handle.tensors:
            raise ValueError("no weights to send: the state dict is empty")
        return handle

    def receive(self, handle: ObjectStoreHandle) -> Iterator[tuple[str, Any]]:
        import ray

        if not isinstance(handle, ObjectStoreHandle):
            raise TypeError(f"the object_store transport received a {type(handle).__name__}, not an ObjectStoreHandle")
        for ref in handle.chunks:
            yield from ray.get(ref)


TRANSPORTS: dict[str, type[WeightTransport]] = {ObjectStoreTransport.name: ObjectStoreTransport}


def make_transport(config: RolloutConfig) -> WeightTransport:
    if config.transport not in TRANSPORTS:
        raise ValueError(f"unknown weight transport {config.transport!r}; known: {sorted(TRANSPORTS)}")
    return TRANSPORTS[config.transport].from_config(config)
