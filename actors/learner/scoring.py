"""One online step's completions and verdicts -> the ranks' batches and the step's statistics,
whatever the algorithm: join each completion with its verdict, let the algorithm score them
(:meth:`OnlineAlgorithm.train_samples`: advantages, what it leaves out), drop what is not trained,
deal the rest to the ranks in micro-batches the algorithm collates, and measure the step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.learner.samples import Rollout

if TYPE_CHECKING:
    from actors.contracts import Task, Verdict
    from actors.learner.algorithms.base import OnlineAlgorithm
    from actors.learner.experience import RankBatch
    from actors.rollout.engine import RolloutCompletion

log = logging.getLogger("qvr.scoring")


def join(step: int, tasks: list[Task], completions: list[RolloutCompletion], verdicts: list[Verdict],
         samples_per_prompt: int) -> list[Rollout]:
    """The step's rollouts in order: ``samples_per_prompt`` per task, each with its verdict."""
    by_key = {(verdict.task_id, verdict.sample_idx): verdict for verdict in verdicts}
    by_completion = {(c.task_id, c.sample_idx): c for c in completions}
    keyed = [(task, (task.task_id, index)) for task in tasks for index in range(samples_per_prompt)]
    missing = [key for _, key in keyed if key not in by_key or key not in by_completion]
    if missing:
        raise RuntimeError(f"step {step}: {len(missing)} samples have no completion or verdict, e.g. {missing[:3]}")
    return [Rollout(task=task, completion=by_completion[key], verdict=by_key[key]) for task, key in keyed]


def score_step(step: int, tasks: list[Task], completions: list[RolloutCompletion], verdicts: list[Verdict],
               algorithm: OnlineAlgorithm, world_size: int, micro_batch_size: int,
               timing: dict[str, float] | None = None) -> tuple[dict[int, RankBatch], dict[str, float]]:
    """Rank -> its share of the step, and the step's statistics. ``tasks`` are the step's tasks in
    order. The samples the algorithm leaves out and those without a token of the policy's are
    dropped here; ``num_items`` is the algorithm's count of what is left."""
    from actors.learner.experience import RankBatch, shard

    rollouts = join(step, tasks, completions, verdicts, algorithm.samples_per_prompt())
    trained = [sample for sample in algorithm.train_samples(rollouts) if sample.trained and sample.policy_tokens]
    num_items = algorithm.count(trained)
    shares = shard(trained, world_size, micro_batch_size)
    batch = {rank: RankBatch(step=step, micro_batches=[algorithm.collate(micro) for micro in share], num_items=num_items,
                             samples=sum(len(micro) for micro in share))
             for rank, share in enumerate(shares)}
    stats = {**rollout_stats(rollouts, algorithm.samples_per_prompt()), "samples_trained": float(len(trained)),
             **{f"time/{name}": value for name, value in (timing or {}).items()}}
    log.info("step %d: %d samples, reward %.3f, pass rate %.2f, %d trained", step, len(rollouts),
             stats["reward_mean"], stats["pass_rate"], len(trained))
    return batch, stats


def rollout_stats(rollouts: list[Rollout], group_size: int) -> dict[str, float]:
    """What the step sampled and what the verifier made of it (lengths in the policy's own tokens)."""
    import torch

    from actors.learner.algorithms.advantages import zero_variance

    rewards = torch.tensor([rollout.reward for rollout in rollouts], dtype=torch.float32)
    lengths = [rollout.policy_tokens for rollout in rollouts]
    count = len(rollouts)
    stats = {
        "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()) if count > 1 else 0.0,
        "pass_rate": sum(rollout.verdict.status == "passed" for rollout in rollouts) / count,
        "format_reward": sum(rollout.verdict.reward_parts.get("format", 0.0) for rollout in rollouts) / count,
        "truncated_fraction": sum(rollout.truncated for rollout in rollouts) / count,
        "response_length": sum(lengths) / count, "generated_tokens": float(sum(lengths)),
    }
    if group_size > 1:
        flat = zero_variance(rewards.view(-1, group_size))
        stats["zero_variance_groups"] = float(flat.float().mean())
    return stats
