"""ExperienceProducer: turns tasks into scored, sharded experience for the learner ranks.

One Ray actor per run. A background thread, for step after step: takes the step's tasks, samples
and verifies them through the sample-and-verify stream (actors/rollout/stream.py: G samples per
task from the RolloutGroup, each group verified by the VerifierPool the moment it is sampled, every
completion handed over with its own verdict; multi-turn trajectories alike), and hands the rollouts,
in task order, to :func:`actors.learner.scoring.score_step` with the online algorithm (GRPO:
rewards, group advantages, what the loss keeps, dealt to the ranks). The producer knows no algorithm: it asks the
one it is given how many samples each prompt needs. It runs at most ``max_policy_lag``
steps ahead of the weights the learner has published: 0 is on-policy (step t samples with the
weights after step t-1), 1 lets step t+1's generation overlap step t's training.

Rank 0 publishes new weights here after every optimizer step; the producer loads them into the
rollout workers and bumps the policy version. Everything the run needs to resume is the step
number: the tasks of step t and the sampling seeds are functions of (seed, t).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Task
from actors.learner.algorithms import algorithm_for
from actors.learner.algorithms.base import AlgorithmConfig, OnlineAlgorithm
from actors.learner.experience import RankBatch
from actors.learner.samples import Rollout
from actors.learner.scoring import score_step
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.turns import TurnsConfig
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig

log = logging.getLogger("qvr.producer")


class ProducerConfig(Config):
    """How experience is produced for each step."""

    prompts_per_step: int = Field(2, ge=1, le=1_000_000)
    """Tasks per step; each is sampled group_size times."""

    max_policy_lag: int = Field(0, ge=0, le=16)
    """How many optimizer steps older than the learner's the weights that sampled a token may be.
    0: synchronous on-policy GRPO. 1: generate step t+1 while the learner trains step t (one step
    stale; the importance weight corrects for it). k: generation runs up to k steps ahead. The
    bound holds per token: a token sampled by weights more than k versions old is masked out of
    the loss, its sample kept (actors/learner/staleness.py; ``stale_tokens`` in the metrics).
    verl's and AReaL's asynchronous modes use 1-4 with an importance-sampling correction."""

    seed: int = 0
    """Seeds the task order (a fresh shuffle per pass over the tasks) and the sampling of each
    step, so a resumed run sees exactly the data an uninterrupted one would."""

    shuffle: bool = True
    """Shuffle the tasks on every pass; False takes them in the source's order."""

    batch_timeout_s: float = Field(3600.0, gt=0.0)
    """A rank waiting longer than this for its batch fails (the producer is stuck)."""


class ExperienceProducer:
    def __init__(self, tasks: list[Task], config: ProducerConfig, algorithm: AlgorithmConfig, rollout: RolloutConfig,
                 sampling: SamplingConfig, verifier: VerifierConfig, pool: PoolConfig, world_size: int,
                 micro_batch_size: int, group: Any = None, verifier_pool: Any = None,
                 hidden_paths: list[str] | tuple[str, ...] = (), evaluator: Any = None,
                 turns: TurnsConfig | None = None) -> None:
        """``algorithm``: an online algorithm's typed config (its algorithm scores the samples).
        ``group`` / ``verifier_pool``: ready-made ones to use instead of starting a RolloutGroup
        and a VerifierPool from the configs (anything with the same methods). ``hidden_paths``:
        what the pool hides from every sandbox (the task files, the run directory). ``evaluator``:
        a held-out evaluation, ``evaluator(group, pool, step) -> metrics`` with ``due(step)``
        (pipelines.evaluation.hook.PolicyEvaluator); it runs before a due step's generation, on
        the policy after ``step`` optimizer steps, and its metrics join that step's. ``turns``:
        multi-turn rollouts (actors/rollout/turns.py); None or max_turns 1 is single-turn."""
        from actors.rollout.group import RolloutGroup
        from actors.verify.pool.pool import VerifierPool

        logging.basicConfig(level=logging.INFO)
        if not tasks:
            raise ValueError("the producer needs at least one task")
        self.tasks, self.config = tasks, config
        self.algorithm = algorithm_for(algorithm)
        if not isinstance(self.algorithm, OnlineAlgorithm):
            raise ValueError(f"algorithm {algorithm.name!r} trains offline; the producer serves online ones")
        self.sampling = sampling.model_copy(update={"n": self.algorithm.samples_per_prompt()})
        self.world_size, self.micro_batch_size = world_size, micro_batch_size
        # One group per request, so verification starts on each group as soon as it is sampled.
        self.group = group if group is not None else RolloutGroup(rollout, shard_prompts=1)
        self.pool = verifier_pool if verifier_pool is not None else VerifierPool(verifier, pool, hidden_paths)
        self.evaluator = evaluator
        self.turns = turns if turns is not None and turns.max_turns > 1 else None
        self.rollout_config, self.verifier_config = rollout, verifier
        self.feedback_tokens = None
        if self.turns is not None:
            from actors.rollout.turns import feedback_tokens_for

            self.feedback_tokens = feedback_tokens_for(rollout, self.turns)
        self.version = 0
        self.batches: dict[int, dict[int, RankBatch]] = {}
        self.stats: dict[int, dict[str, float]] = {}
        self.finished: list[tuple[int, dict[str, float]]] = []
        self.failed: BaseException | None = None
        self.failures_injected: set[int] = set()
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    # ------------------------------------------------------------ learner side

    def start(self, first_step: int, steps: int) -> int:
        """(Re)start producing from ``first_step`` up to ``steps``; anything produced before is
        dropped (a restarted learner may have restored an older checkpoint). Returns the policy
        version the rollout workers serve."""
        self._stop_thread()
        with self.cond:
            self.batches.clear()
            self.failed = None
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._produce, args=(first_step, steps, self.stop),
                                           name="qvr-producer", daemon=True)
            self.thread.start()
            return self.version

    def get_batch(self, step: int, rank: int) -> RankBatch:
        """Rank ``rank``'s share of step ``step`` (blocks until it is produced)."""
        deadline = time.monotonic() + self.config.batch_timeout_s
        with self.cond:
            while step not in self.batches or rank not in self.batches[step]:
                if self.failed is not None:
                    raise RuntimeError(f"experience production failed: {self.failed!r}") from self.failed
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no batch for step {step} after {self.config.batch_timeout_s} s")
                self.cond.wait(timeout=1.0)
            batch = self.batches[step].pop(rank)
            if not self.batches[step]:
                del self.batches[step]
            return batch

    def publish(self, version: int, weights: Any) -> float:
        """Load new weights (a transport handle, or None for unchanged weights) into the rollout
        workers as ``version``; returns the seconds it took."""
        started = time.monotonic()
        if weights is not None:
            self.group.update_weights(version, weights, rewind=version < self.group.policy_version)
        with self.cond:
            self.version = version
            self.cond.notify_all()
        return time.monotonic() - started

    def finish_step(self, step: int, learner_metrics: dict[str, float]) -> None:
        """Rank 0's report of a finished step; merged with what the producer measured for it."""
        with self.cond:
            metrics = {**self.stats.pop(step, {}), **learner_metrics}
            self.finished.append((step, metrics))

    def should_fail(self, step: int) -> bool:
        """Fault injection (LearnerConfig.fail_at_steps): True the first time only."""
        if step in self.failures_injected:
            return False
        self.failures_injected.add(step)
        return True

    # ------------------------------------------------------------ driver side

    def drain_metrics(self) -> list[tuple[int, dict[str, float]]]:
        with self.cond:
            finished, self.finished = self.finished, []
            return finished

    def close(self) -> None:
        self._stop_thread()
        self.group.close()
        self.pool.close()

    # ------------------------------------------------------------ production

    def _stop_thread(self) -> None:
        if self.thread is not None:
            self.stop.set()
            with self.cond:
                self.cond.notify_all()
            self.thread.join()
            self.thread = None

    def _produce(self, first_step: int, steps: int, stop: threading.Event) -> None:
        try:
            for step in range(first_step, steps):
                with self.cond:
                    while self.version < step - self.config.max_policy_lag and not stop.is_set():
                        self.cond.wait(timeout=1.0)
                if stop.is_set():
                    return
                evaluated = self._evaluate(step, stop)
                batch, stats = self._make_batch(step)
                stats.update(evaluated)
                with self.cond:
                    if stop.is_set():
                        return
                    self.batches[step] = batch
                    self.stats[step] = stats
                    self.cond.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the ranks waiting for batches
            log.exception("experience production failed")
            with self.cond:
                self.failed = error
                self.cond.notify_all()

    def _evaluate(self, step: int, stop: threading.Event) -> dict[str, float]:
        """The held-out evaluation of the policy after ``step`` optimizer steps, when it is due
        (with max_policy_lag 1 it waits for that policy first)."""
        if self.evaluator is None or not self.evaluator.due(step):
            return {}
        with self.cond:
            while self.version < step and not stop.is_set():
                self.cond.wait(timeout=1.0)
        return {} if stop.is_set() else self.evaluator(self.group, self.pool, step)

    async def evaluate(self, step: int) -> dict[str, float]:
        """The held-out evaluation of the policy the rollout workers serve now (the final one, once
        the learner has finished); call it while no step is being produced. On a thread: the
        evaluation runs its own event loop, and this actor's methods run on Ray's (it has async
        methods)."""
        if self.evaluator is None:
            return {}
        return await asyncio.to_thread(self.evaluator, self.group, self.pool, step, True)

    def _make_batch(self, step: int) -> tuple[dict[int, RankBatch], dict[str, float]]:
        tasks = tasks_for_step(self.tasks, step, self.config)
        seed = None if self.sampling.seed is None else self.sampling.seed + step * 1_000_003
        sampling = self.sampling.model_copy(update={"seed": seed})
        version = self.version  # a step without an update publishes no weights: the engines keep the old number
        started_at = time.time()
        rollouts, timing, turn_stats = asyncio.run(self._sample_and_verify(tasks, sampling, step))
        batch, stats = score_step(step, rollouts, self.algorithm, self.world_size, self.micro_batch_size, timing,
                                  max_policy_lag=self.config.max_policy_lag)
        stats.update(turn_stats)
        stats["policy_lag"] = float(step - version)
        stats["clock/sample_start"] = started_at  # a wall-clock stamp: timelines (qvr bench step)
        stats["rollout_tokens_per_s"] = stats["generated_tokens"] / max(timing["generate_s"], 1e-9)
        return batch, stats

    async def _sample_and_verify(self, tasks: list[Task], sampling: SamplingConfig, step: int
                                 ) -> tuple[list[Rollout], dict[str, float], dict[str, float]]:
        """The step's rollouts in task order, ``n`` per task (a task may repeat within a step), each
        completion with its own verdict (multi-turn: the whole trajectory, its reward shaped by its
        turns), timing, and the per-turn stats of multi-turn. Their QPU jobs draw on ``step``'s
        budget (``verifier.qpu.budget_per_step_s``)."""
        from actors.rollout.prompts import Prompt
        from actors.rollout.stream import Batch, Request, SampleAndVerify, answer_job
        from actors.rollout.turns import model_len_limit, shaped_verdict, turn_stats

        requests = [Request(task, Prompt(task_id=task.task_id, text=task.prompt), context=position)
                    for position, task in enumerate(tasks)]
        batch = Batch(requests, sampling, functools.partial(answer_job, qpu_step=step), self.feedback_tokens)
        stream = SampleAndVerify(self.group, self.pool, [batch],
                                 turns=self.turns, timeout_s=self.verifier_config.timeout_s,
                                 max_model_len=None if self.turns is None else model_len_limit(self.rollout_config))
        n = sampling.n
        rollouts: list[Any] = [None] * (len(tasks) * n)
        trajectories = []
        async for item in stream:
            verdict = item.verdict
            if item.trajectory is not None:
                verdict = shaped_verdict(item.trajectory, self.turns)
                trajectories.append(item.trajectory)
            rollouts[item.context * n + item.sample_idx] = Rollout(item.task, item.completion, verdict)
        stats = {} if self.turns is None else turn_stats(trajectories, self.turns.max_turns)
        return rollouts, stream.timing, stats


def tasks_for_step(tasks: list[Task], step: int, config: ProducerConfig) -> list[Task]:
    """The tasks of ``step``: consecutive slices of a fresh shuffle of all tasks per pass."""
    count, per_step = len(tasks), config.prompts_per_step
    chosen = []
    for index in range(step * per_step, (step + 1) * per_step):
        epoch, position = divmod(index, count)
        order = list(range(count))
        if config.shuffle:
            random.Random(config.seed * 1_000_003 + epoch).shuffle(order)
        chosen.append(tasks[order[position]])
    return chosen
