"""One online step's rollouts -> the ranks' batches and the step's statistics, whatever the
algorithm: let the algorithm score the rollouts (each completion with its own verdict, as the
sample-and-verify stream hands them over; :meth:`OnlineAlgorithm.train_samples`: advantages, what it
leaves out), drop what is not trained, deal the rest to the ranks in micro-batches the algorithm
collates, and measure the step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.learner.algorithms.base import OnlineAlgorithm
    from actors.learner.experience import RankBatch
    from actors.learner.samples import Rollout

log = logging.getLogger("qvr.scoring")


def score_step(step: int, rollouts: list[Rollout], algorithm: OnlineAlgorithm, world_size: int,
               micro_batch_size: int, timing: dict[str, float] | None = None
               ) -> tuple[dict[int, RankBatch], dict[str, float]]:
    """Rank -> its share of the step, and the step's statistics. ``rollouts`` are the step's in task
    order, ``samples_per_prompt`` per task (a group). The samples the algorithm leaves out and those
    without a token of the policy's are dropped here; ``num_items`` is the algorithm's count of what
    is left."""
    from actors.learner.experience import RankBatch, shard

    if len(rollouts) % algorithm.samples_per_prompt():
        raise ValueError(f"step {step}: {len(rollouts)} rollouts are not groups of {algorithm.samples_per_prompt()}")
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
