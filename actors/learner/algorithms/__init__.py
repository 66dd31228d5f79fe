"""Learner algorithms: one module each, chosen by name. The producer and the train loop are algorithm-blind.

An algorithm module defines:

- ``Config``: its pydantic config, with a class variable ``name`` (its registry name); jobs hand
  the typed config itself to the producer and the ranks, and :func:`algorithm_of` finds the module;
- ``needs_reference(config) -> bool``: whether the loss wants reference-policy logprobs;
- ``batch_loss(micro_batch, logprobs, ref_logprobs, config, num_items) -> (loss, metrics)``: the
  loss of one micro-batch (a dict of tensors the module collated itself) as a share of the whole
  batch's (``num_items``: the batch's global denominator(s), all ranks), so gradients summed over
  micro-batches and ranks are the batch's;
- ``SUMMED``, ``micro_sums(metrics) -> list[float]`` and ``report(sums) -> dict``: the metrics it
  logs, as sums that add up over micro-batches and ranks, and the step's values from the totals
  (``SUMMED`` starts with ``tokens``: the trained tokens).

Optionally, ``updates_per_batch(config) -> int`` (default 1): optimizer steps on each batch; from
the second on, each micro-batch carries ``logprobs_before_update`` (the policy's logprobs before
the batch's first step).

and either, online (sampled and verified each step, by ``actors.learner.producer``):

- ``ONLINE = True``, ``samples_per_prompt(config)``, ``score_step(step, tasks, completions, verdicts,
  config, world_size, micro_batch_size, timing) -> (rank batches, stats)``;

or offline (a Ray Data dataset, by ``actors.learner.offline``):

- ``ROW_FIELDS``: the tokenized columns a row has; ``collate(rows, pad_id)`` -> micro-batch;
  ``count(rows, config) -> dict`` -> the global denominators of a batch of rows.

A new algorithm is one module here plus one line in :data:`ALGORITHMS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

ALGORITHMS: dict[str, str] = {
    "grpo": "actors.learner.algorithms.grpo",
    "sft": "actors.learner.algorithms.sft",
    "dpo": "actors.learner.algorithms.dpo",
    "orpo": "actors.learner.algorithms.orpo",
}


def algorithm_module(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name])


def algorithm_of(config: Any) -> ModuleType:
    """The module of an algorithm's typed config."""
    name = getattr(type(config), "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{type(config).__name__} is not an algorithm config (no class variable 'name')")
    return algorithm_module(name)
