"""Learner algorithms: one module each, chosen by name. The train loop is algorithm-blind.

An algorithm module defines:

- ``Config``: its pydantic config;
- ``needs_reference(config) -> bool``: whether the loss wants reference-policy logprobs;
- ``batch_loss(micro_batch, logprobs, ref_logprobs, config, num_items) -> (loss, metrics)``: the
  loss of one micro-batch (a dict of tensors from ``actors.learner.experience.collate``) as a
  share of the whole batch's, so gradients summed over micro-batches and ranks are the batch's.
  ``metrics`` holds at least ``tokens``, ``sequences``, ``kl``, ``clip_fraction``,
  ``logprob_gap`` and ``importance_weight_mean``.

A new algorithm is one module here plus one line in :data:`ALGORITHMS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ALGORITHMS: dict[str, str] = {
    "grpo": "actors.learner.algorithms.grpo",
}


def algorithm_module(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    return importlib.import_module(ALGORITHMS[name])
