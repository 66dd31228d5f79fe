"""One online step's rollouts -> the ranks' batches and the step's statistics, whatever the
algorithm: let the algorithm score the rollouts (each completion with its own verdict, as the
sample-and-verify stream hands them over; :meth:`OnlineAlgorithm.train_samples`: advantages, what it
leaves out), drop what is not trained, deal the rest to the ranks in micro-batches the algorithm
collates, and measure the step."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.learner.algorithms.base import OnlineAlgorithm
    from actors.learner.experience import RankBatch
    from actors.learner.samples import Rollout

log = logging.getLogger("qvr.scoring")


def score_step(step: int, rollouts: list[Rollout], algorithm: OnlineAlgorithm, world_size: int,
               micro_batch_size: int, timing: dict[str, float] | None = None, max_policy_lag: int | None = None
               ) -> tuple[dict[int, RankBatch], dict[str, float]]:
    """Rank -> its share of the step, and the step's statistics. ``rollouts`` are the step's in task
    order, ``samples_per_prompt`` per task (a group). With ``max_policy_lag``, tokens sampled by
    older weights than it allows are masked out of the loss (actors/learner/staleness.py; their
    count is ``stale_tokens``). The samples the algorithm leaves out and those without a token of
    the policy's are dropped here; ``num_items`` is the algorithm's count of what is left."""
    from actors.learner.experience import RankBatch, shard
    from actors.learner.staleness import mask_stale_tokens

    if len(rollouts) % algorithm.samples_per_prompt():
        raise ValueError(f"step {step}: {len(rollouts)} rollouts are not groups of {algorithm.samples_per_prompt()}")
    samples = algorithm.train_samples(rollouts)
    stale = 0 if max_policy_lag is None else mask_stale_tokens(samples, rollouts, step, max_policy_lag)
    trained = [sample for sample in samples if sample.trained and sample.policy_tokens]
    num_items = algorithm.count(trained)
    shares = shard(trained, world_size, micro_batch_size)
    batch = {rank: RankBatch(step=step, micro_batches=[algorithm.collate(micro) for micro in share], num_items=num_items,
                             samples=sum(len(micro) for micro in share))
             for rank, share in enumerate(shares)}
    stats = {**rollout_stats(rollouts, algorithm.samples_per_prompt()), "samples_trained": float(len(trained)),
             "stale_tokens": float(stale),
             **{f"time/{name}": value for name, value in (timing or {}).items()}}
    log.info("step %d: %d samples, reward %.3f, pass rate %.2f, %d trained, %.1f QPU s, %d over the QPU budget",
             step, len(rollouts), stats["reward_mean"], stats["pass_rate"], len(trained), stats["qpu_s"],
             stats["over_budget"])
    return batch, stats


def rollout_stats(rollouts: list[Rollout], group_size: int) -> dict[str, float]:
    """What the step sampled and what the verifier made of it (lengths in the policy's own tokens).
    Rewards, pass and format rates are over the samples whose verdict judges their code (an
    over_budget verdict's 0.0 is no reward; none judged: NaN, which the metric sinks leave out);
    ``over_budget`` counts the others, ``qpu_s`` adds the QPU seconds the step's verdicts used."""
    import torch

    from actors.verify.cache.figures import cache_figures
    from actors.verify.qpu.figures import qpu_figures

    judged = [rollout for rollout in rollouts if rollout.verdict.judged]
    rewards = torch.tensor([rollout.reward for rollout in judged], dtype=torch.float32)
    lengths = [rollout.policy_tokens for rollout in rollouts]
    count = len(rollouts)
    stats = {
        "reward_mean": float(rewards.mean()) if judged else math.nan,
        "reward_std": float(rewards.std()) if len(judged) > 1 else 0.0,
        "pass_rate": _share(sum(rollout.verdict.status == "passed" for rollout in judged), len(judged)),
        "format_reward": _share(sum(rollout.verdict.reward_parts.get("format", 0.0) for rollout in judged), len(judged)),
        "truncated_fraction": sum(rollout.truncated for rollout in rollouts) / count,
        "response_length": sum(lengths) / count, "generated_tokens": float(sum(lengths)),
        **{name: float(value) for name, value in cache_figures(rollout.verdict for rollout in rollouts).items()},
        **{name: float(value) for name, value in qpu_figures(rollout.verdict for rollout in rollouts).items()},
    }
    if group_size > 1:
        stats["zero_variance_groups"] = flat_group_share(rollouts, group_size)
    return stats


def flat_group_share(rollouts: list[Rollout], group_size: int) -> float:
    """The share of groups without a learning signal: their judged rewards all equal, or fewer than
    two judged (the estimator's rule, actors/learner/algorithms/advantages)."""
    import torch

    from actors.learner.algorithms.advantages import zero_variance

    flat = []
    for start in range(0, len(rollouts), group_size):
        rewards = [rollout.reward for rollout in rollouts[start:start + group_size] if rollout.verdict.judged]
        flat.append(len(rewards) < 2 or bool(zero_variance(torch.tensor([rewards], dtype=torch.float32)).all()))
    return sum(flat) / len(flat)


def _share(part: float, whole: int) -> float:
    return part / whole if whole else math.nan
