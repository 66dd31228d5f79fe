"""The engine factory: :func:`make_engine` is the only place that knows which engine a config picks.
Apart from the engines' base (:mod:`actors.rollout.engine`), which the engines import."""

from __future__ import annotations

from actors.rollout.config import RolloutConfig
from actors.rollout.engine import RolloutEngine


def make_engine(config: RolloutConfig) -> RolloutEngine:
    """The engine ``config.engine`` names; nothing else in qvr branches on it."""
    if config.engine == "vllm":
        from actors.rollout.vllm_engine import VllmEngine

        return VllmEngine(config)
    if config.engine == "transformers":
        from actors.rollout.hf_engine import TransformersEngine

        return TransformersEngine(config)
    raise ValueError(f"unknown rollout engine {config.engine!r}; known: vllm, transformers")
