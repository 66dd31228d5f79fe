"""RolloutGroup: several rollout workers behind one ``generate``, load-balanced and self-healing.

Prompts are cut into shards (a prompt's whole group stays in one shard, so vLLM shares its KV
cache); each idle worker takes the next shard, so a slow worker simply takes fewer. A worker that
dies is replaced by a fresh one, which first loads the latest weights, and the shard it held goes
back to the queue for whichever worker is free next. Errors raised by the engine itself (a bad
prompt, bad sampling) are not failures of the worker: they reach the caller unchanged.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.engine import NamedTensors, RolloutCompletion, as_sampling
from actors.rollout.prompts import Prompt, PromptLike, as_prompts
from actors.rollout.transport import make_transport
from actors.rollout.worker import start_worker

log = logging.getLogger("qvr.rollout")


class RolloutGroup:
    def __init__(self, config: RolloutConfig, shard_prompts: int | None = None) -> None:
        """``config.workers`` workers; ``shard_prompts`` prompts per request (None: an even split,
        one request per worker, the largest batches)."""
        import ray

        if shard_prompts is not None and shard_prompts < 1:
            raise ValueError(f"shard_prompts must be at least 1, got {shard_prompts}")
        self.config = config
        self.shard_prompts = shard_prompts
        self.transport = make_transport(config)
        self.policy_version = 0
        self.restarts = 0
        self._latest_weights: Any = None  # kept so a replacement worker can catch up
        self._replacing = threading.Lock()
        self.workers = [start_worker(config) for _ in range(config.workers)]
        try:
            ray.get([worker.info.remote() for worker in self.workers])
        except ray.exceptions.RayActorError as error:
            self.close()
            raise RuntimeError(f"a rollout worker failed to start ({config.engine} on {config.model}): {error}") from error

    def generate(self, prompts: Sequence[PromptLike],
                 sampling: SamplingConfig | Mapping[str, Any] | None = None) -> list[RolloutCompletion]:
        """``sampling.n`` completions per prompt in prompt order, whichever workers served them."""
        shards = dict(self.stream(prompts, sampling))
        return [completion for index in sorted(shards) for completion in shards[index]]

    def stream(self, prompts: Sequence[PromptLike],
               sampling: SamplingConfig | Mapping[str, Any] | None = None) -> Iterator[tuple[int, list[RolloutCompletion]]]:
        """Like :meth:`generate`, but yields ``(shard index, completions)`` the moment each shard
        is sampled, so a consumer (the verifier) starts on the first group while later ones are
        still being generated. Shards are consecutive runs of prompts; every prompt's group is in
        exactly one shard."""
        import ray

        prompts, sampling = as_prompts(prompts), as_sampling(sampling)
        size, shards = self._shards(prompts)
        pending = deque(range(len(shards)))
        in_flight: dict[Any, tuple[int, int, Any]] = {}  # ref -> (shard, worker index, worker)
        restarts_left = self.config.max_restarts
        while pending or in_flight:
            busy = {index for _, index, _ in in_flight.values()}
            for index in range(len(self.workers)):
                if pending and index not in busy:
                    shard = pending.popleft()
                    worker = self.workers[index]
                    request = worker.generate.remote(shards[shard], self._shard_sampling(sampling, shard * size))
                    in_flight[request] = (shard, index, worker)
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            shard, index, worker = in_flight.pop(ref)
            try:
                completions = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                if restarts_left == 0:
                    raise RuntimeError(f"rollout workers failed {self.config.max_restarts + 1} times in one "
                                       f"generate call; last: {error}") from error
                restarts_left -= 1
                log.warning("rollout worker %d died (%s); replacing it and retrying its %d prompts",
                            index, type(error).__name__, len(shards[shard]))
                self._replace(index, worker)
                pending.appendleft(shard)
                continue
            yield shard, completions

    def update_weights(self, version: int, weights: Mapping[str, Any] | NamedTensors | Any,
                       rewind: bool = False) -> None:
        """Send ``weights`` (a Hugging Face state dict, or whole layers of one) to every worker and
        serve them as policy ``version`` from now on. ``weights`` may also be a handle that this
        group's transport already ``send``-ed (a learner puts its weights into the object store
        itself and hands over only the handle). Versions only grow, unless ``rewind`` is set: a
        learner restarted from an older checkpoint serves that checkpoint's version again. The
        group keeps the latest weights staged (for the object store: one copy of them) until the
        next update, so that a worker replaced later loads them before it serves anything."""
        if not isinstance(version, int) or version < 0 or (version < self.policy_version and not rewind):
            raise ValueError(f"policy version must be an int >= the current {self.policy_version}, got {version!r}")
        handle = weights if self.transport.is_handle(weights) else self.transport.send(weights)
        workers = list(self.workers)
        refs = [worker.update_weights.remote(version, handle) for worker in workers]
        self.transport.push(handle)
        self._latest_weights, self.policy_version = handle, version
        self._await_or_replace(workers, refs, "a weight update")

    def serve_folder(self, version: int, path: str) -> None:
        """Serve the model saved at ``path`` (a checkpoint of the served model: the same architecture
        and tokenizer) as policy ``version``, without starting the engines again: each worker reads
        the folder itself. A worker replaced later starts from that folder."""
        self.config = self.config.model_copy(update={"model": str(path)})
        self._latest_weights, self.policy_version = None, version
        workers = list(self.workers)
        self._await_or_replace(workers, [worker.load_folder.remote(version, str(path)) for worker in workers],
                               f"loading {path}")

    def _await_or_replace(self, workers: list[Any], refs: list[Any], doing: str) -> None:
        """Wait for each worker's call; a worker that died during it is replaced (the replacement
        catches up with what the group serves now)."""
        import ray

        for index, ref in enumerate(refs):
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                log.warning("rollout worker %d died during %s; replacing it", index, doing)
                self._replace(index, workers[index])

    def policy_versions(self) -> list[int]:
        """Each worker's policy version, as the workers report it."""
        import ray

        return ray.get([worker.policy_version.remote() for worker in self.workers])

    def _shards(self, prompts: list[Prompt]) -> tuple[int, list[list[Prompt]]]:
        if not self.workers:
            raise RuntimeError("this RolloutGroup is closed")
        size = self.shard_prompts or max(1, math.ceil(len(prompts) / len(self.workers)))
        return size, [prompts[start:start + size] for start in range(0, len(prompts), size)]

    @staticmethod
    def _shard_sampling(sampling: SamplingConfig, first_prompt: int) -> SamplingConfig:
        """A seeded call samples prompt i with seed + i over the whole call, however it is sharded."""
        if sampling.seed is None:
            return sampling
        return sampling.model_copy(update={"seed": sampling.seed + first_prompt})

    def _replace(self, index: int, dead: Any) -> None:
        """A fresh worker in slot ``index`` in place of ``dead``; it loads the latest weights before
        any request. Streams may run in several threads at once (multi-turn rollouts: every later
        turn is its own call), and each sees the same death: only the first replaces the worker."""
        import ray

        with self._replacing:
            if self.workers[index] is not dead:
                return
            ray.kill(dead, no_restart=True)
            worker = start_worker(self.config)
            self.workers[index] = worker
            self.restarts += 1
        # Wait for it: a replacement that cannot start or catch up must fail here, loudly, rather
        # than serve completions from stale weights.
        try:
            if self._latest_weights is not None:
                ray.get(worker.update_weights.remote(self.policy_version, self._latest_weights))
            else:
                ray.get(worker.info.remote())
        except ray.exceptions.RayActorError as error:
            raise RuntimeError(f"the replacement for rollout worker {index} failed to start: {error}") from error

    def close(self) -> None:
        import ray

        for worker in self.workers:
            ray.kill(worker, no_restart=True)
        self.workers = []
        self._latest_weights = None

    def __enter__(self) -> RolloutGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
