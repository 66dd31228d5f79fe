"""Rollout workers: sample completions from the current policy and take new weights in place.

:class:`RolloutWorker` (a Ray actor) wraps one engine, vLLM or transformers, chosen by
:class:`RolloutConfig` alone; :class:`RolloutGroup` spreads prompts over several workers and
replaces those that die. New weights travel through a :class:`WeightTransport`.
``stream.SampleAndVerify`` is the one sample-and-verify stream (GRPO and eval): each completion
comes out with its own verdict; ``turns`` holds what multi-turn rollouts add.
"""

from actors.rollout.config import RolloutConfig, SamplingConfig, VllmConfig
from actors.rollout.engine import RolloutCompletion, RolloutEngine
from actors.rollout.factory import make_engine
from actors.rollout.group import RolloutGroup
from actors.rollout.prompts import Prompt
from actors.rollout.transport import ObjectStoreTransport, WeightTransport, make_transport
from actors.rollout.worker import RolloutWorker, start_worker

__all__ = [
    "ObjectStoreTransport", "Prompt", "RolloutCompletion", "RolloutConfig", "RolloutEngine", "RolloutGroup",
    "RolloutWorker", "SamplingConfig", "VllmConfig", "WeightTransport", "make_engine", "make_transport",
    "start_worker",
]
