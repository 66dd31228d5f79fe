"""Learner algorithms: one class each (:mod:`actors.learner.algorithms.base` is their contract),
chosen by the name their typed config carries. The producer and the train loop are algorithm-blind.

A new algorithm is one module here (its config, a subclass of ``OnlineAlgorithm`` or
``OfflineAlgorithm``) plus one line in :data:`ALGORITHMS`; an online one is also a member of the
online job's union (:mod:`actors.learner.algorithms.online`). GRPO's advantage estimators and policy
losses are plug-ins of their own (``advantages/``, ``policy_losses/``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.learner.algorithms.base import Algorithm, AlgorithmConfig

ALGORITHMS: dict[str, str] = {
    "grpo": "actors.learner.algorithms.grpo:Grpo",
    "sft": "actors.learner.algorithms.sft:Sft",
    "dpo": "actors.learner.algorithms.dpo:Dpo",
    "orpo": "actors.learner.algorithms.orpo:Orpo",
}


def algorithm_class(name: str) -> type[Algorithm]:
    if name not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    module, _, attribute = ALGORITHMS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def algorithm_for(config: AlgorithmConfig) -> Algorithm:
    """The algorithm of a typed config, holding it."""
    name = getattr(config, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{type(config).__name__} is not an algorithm config (it has no name)")
    return algorithm_class(name)(config)
