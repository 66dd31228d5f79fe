"""The bound on asynchrony, per token: a token sampled by weights more than ``max_policy_lag``
optimizer steps older than the ones that train on it is masked out of the loss (never trained
on); its sample stays, with its other tokens, and counts in its group's advantages.

The batch of step ``s`` is trained by the weights after ``s`` optimizer steps (policy version
``s``), so a token sampled by version ``v`` is ``s - v`` steps stale. The producer waits until the
engines serve version ``s - max_policy_lag`` before it samples step ``s``, which keeps whole samples
inside the bound; the per-token check is what keeps a sample whose generation spans several weight
updates (its tokens carry their own versions, ``RolloutCompletion.token_policy_versions``) inside
it too, token by token, and makes the bound a property of the loss rather than of the scheduling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.learner.samples import Rollout, TrainSample


def token_versions(rollout: Rollout) -> list[int]:
    """The policy version that sampled each completion token (the completion's own where the
    engine recorded none per token)."""
    completion = rollout.completion
    per_token = list(getattr(completion, "token_policy_versions", None) or [])
    if per_token and len(per_token) != len(completion.token_ids):
        raise ValueError(f"task {completion.task_id!r} sample {completion.sample_idx}: {len(per_token)} token "
                         f"versions for {len(completion.token_ids)} tokens")
    return per_token or [completion.policy_version] * len(completion.token_ids)


def mask_stale_tokens(samples: list[TrainSample], rollouts: list[Rollout], step: int, max_policy_lag: int) -> int:
    """Zero, in place, the loss mask of every token of ``samples`` (one per rollout, in order)
    sampled more than ``max_policy_lag`` versions before ``step``; the number of such tokens of
    the policy's own."""
    if len(samples) != len(rollouts):
        raise ValueError(f"{len(samples)} samples for {len(rollouts)} rollouts")
    stale_count = 0
    for sample, rollout in zip(samples, rollouts):
        stale = [step - version > max_policy_lag for version in token_versions(rollout)]
        if not any(stale):
            continue
        mask = sample.loss_mask if sample.loss_mask is not None else [1.0] * len(sample.completion_ids)
        stale_count += sum(1 for weight, old in zip(mask, stale) if old and weight)
        sample.loss_mask = [0.0 if old else weight for weight, old in zip(mask, stale)]
    return stale_count
