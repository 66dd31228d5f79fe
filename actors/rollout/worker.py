"""RolloutWorker: one rollout engine behind a Ray actor.

The class is plain (testable without Ray); :func:`start_worker` makes it an actor with the
config's resources. Callers never learn which engine runs inside.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.engine import RolloutCompletion, folder_weights
from actors.rollout.factory import make_engine
from actors.rollout.prompts import PromptLike
from actors.rollout.transport import make_transport


class RolloutWorker:
    def __init__(self, config: RolloutConfig) -> None:
        logging.basicConfig(level=logging.INFO)
        self.config = config
        self.transport = make_transport(config)
        self.engine = make_engine(config)

    def generate(self, prompts: Sequence[PromptLike],
                 sampling: SamplingConfig | Mapping[str, Any] | None = None) -> list[RolloutCompletion]:
        """``sampling.n`` completions per prompt, tagged with the policy version that sampled them."""
        return self.engine.generate(prompts, sampling)

    def update_weights(self, version: int, handle: Any) -> int:
        """Load the weights behind ``handle`` (from this worker's transport's ``send``) and serve
        them as policy ``version``; returns the version."""
        self.engine.update_weights(version, self.transport.receive(handle))
        return self.engine.policy_version

    def load_folder(self, version: int, path: str) -> int:
        """Serve the weights saved in the model folder ``path`` (the same architecture and tokenizer
        as the one being served; read here, not sent) as policy ``version``; returns the version."""
        self.engine.update_weights(version, folder_weights(path))
        self.config = self.config.model_copy(update={"model": path})
        return self.engine.policy_version

    def policy_version(self) -> int:
        return self.engine.policy_version

    def info(self) -> dict[str, Any]:
        """What serves here: engine, model, policy version, process id, torch's CPU threads."""
        import torch

        return {"engine": self.engine.name, "model": self.config.model, "policy_version": self.engine.policy_version,
                "pid": os.getpid(), "torch_threads": torch.get_num_threads()}

    def close(self) -> None:
        self.engine.close()


def start_worker(config: RolloutConfig) -> Any:
    """A RolloutWorker actor with ``config.num_cpus`` / ``num_gpus`` (it starts in the background;
    its first method call waits for it)."""
    import ray

    return ray.remote(num_cpus=config.num_cpus, num_gpus=config.num_gpus)(RolloutWorker).remote(config)
