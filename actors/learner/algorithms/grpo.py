"""GRPO's loss as pure functions of tensors: group advantages and the clipped, KL-regularised objective.

GRPO (Group Relative Policy Optimization, DeepSeekMath, arXiv 2402.03300) is PPO without a value
model: each prompt is sampled G times, and a completion's advantage is its reward minus the mean
reward of its group (divided by the group's std). Every token of the completion gets that advantage
in PPO's clipped surrogate, plus ``beta`` times an estimate of KL(policy || reference).

Variants this module exposes as options of :class:`GrpoConfig`:

- Dr. GRPO (Liu et al., "Understanding R1-Zero-Like Training", arXiv 2503.20783): no division by the
  group std, and no per-sequence length normalisation (``seq-mean-token-sum``); both bias GRPO.
- DAPO (Yu et al., arXiv 2503.14476): clip-higher (``clip_high`` 0.28 > ``clip_low`` 0.2), token-level
  averaging over the batch (``token-mean``), dropping groups whose rewards are all equal (the
  filtering half of dynamic sampling) and masking completions cut at the length limit.
- Truncated importance sampling (Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You
  Off-Policy RL Training"): the rollout engine's numerics differ from the learner's, so tokens are
  weighted by min(pi_learner_old / pi_rollout, cap).
- KL estimators k1 = log(pi/pi_ref) and k3 = pi_ref/pi - log(pi_ref/pi) - 1 (Schulman, "Approximating
  KL Divergence", 2020); k3 is unbiased, non-negative and low-variance, as GRPO uses it.

Defaults follow IBM's "Quantum Verifiable Rewards for Post-Training Qiskit Code Assistant":
G = 32 and beta = 0.01 with k3 (its sampling temperature 1.0 and learning rate 1e-6 are set
elsewhere: the rollout's and the optimizer's configs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from actors.config import Config

if TYPE_CHECKING:  # torch is imported where a loss is computed: the config alone stays light for the CLI
    import torch

    from actors.contracts import Task, Verdict
    from actors.learner.experience import RankBatch
    from actors.rollout.engine import RolloutCompletion

log = logging.getLogger("qvr.grpo")


class GrpoConfig(Config):
    """The GRPO objective: advantages, clipping, KL penalty, aggregation and which samples count."""

    name: ClassVar[str] = "grpo"

    group_size: int = Field(32, ge=2, le=4096)
    """G: completions sampled per prompt; advantages are relative to the group's mean reward."""

    normalize_std: bool = True
    """Divide advantages by the group's reward std (GRPO). False is Dr. GRPO, which drops it as a
    bias towards groups whose rewards barely differ."""

    clip_low: float = Field(0.2, ge=0.0, lt=1.0)
    """The probability ratio is clipped below at 1 - clip_low (PPO's epsilon)."""

    clip_high: float = Field(0.2, ge=0.0, le=10.0)
    """The ratio is clipped above at 1 + clip_high; DAPO's clip-higher uses 0.28 to keep exploring."""

    aggregation: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] = "token-mean"
    """How per-token losses become one number. token-mean: sum over all tokens / token count (DAPO,
    TRL's default); seq-mean-token-mean: mean over tokens within each completion, then over completions
    (the original GRPO; long completions weigh less per token); seq-mean-token-sum: sum over tokens,
    mean over completions (Dr. GRPO-style, no length normalisation)."""

    beta: float = Field(0.01, ge=0.0, le=100.0)
    """KL penalty coefficient against the reference model; 0 needs no reference model at all."""

    kl_estimator: Literal["k1", "k3"] = "k3"
    """Per-token KL estimator: k1 = log(pi/pi_ref); k3 = pi_ref/pi - log(pi_ref/pi) - 1 (GRPO's)."""

    filter_zero_variance: bool = True
    """Drop groups whose rewards are all equal from the loss and its denominators: their advantages
    are 0, so they only dilute the others (DAPO's dynamic sampling, its filtering half)."""

    mask_truncated: bool = True
    """Mask completions cut at max_tokens (finish_reason ``length``): their reward judges unfinished
    code (DAPO's overlong filtering)."""

    importance_cap: float | None = Field(2.0, gt=0.0)
    """Truncated importance sampling: each token's loss is weighted by min(exp(old_logprobs -
    rollout_logprobs), cap), without gradient, to correct for the rollout engine's numerics and its
    lag behind the learner. None turns it off."""

    old_logprobs: Literal["learner", "rollout"] = "learner"
    """The ratio's denominator. learner: the learner's own logprobs of the batch before the update
    (with one optimizer step per batch the ratio is 1 and the importance weight corrects for the
    engine); rollout: the engine's logprobs, so the ratio itself carries the correction and clipping
    bounds it (set importance_cap None then, as the weight would be 1)."""

    std_eps: float = Field(1e-4, ge=0.0, le=1.0)
    """Added to the group std before dividing (TRL's value), so near-constant groups stay finite."""

    updates_per_batch: int = Field(1, ge=1, le=64)
    """mu: optimizer steps on each batch (DeepSeekMath's GRPO iterations, arXiv 2402.03300 alg. 1;
    TRL's ``num_iterations``). The ratio's denominator stays the policy before the batch's first
    update, so PPO's clipping bounds the later ones. Where sampling and verifying cost far more than
    a learner step (small models, CPU), mu > 1 learns more from every verified sample."""


def group_advantages(
    rewards: torch.Tensor, group_size: int, normalize_std: bool = True, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of contiguous groups (samples 0..G-1 answer prompt 0, ...) and zero-variance flags.

    advantage = reward - group mean, divided by (unbiased group std + eps) when ``normalize_std``.
    Returns ``(advantages [B], zero_variance [B] bool)``; zero_variance marks every sample of a group
    whose rewards are all equal.
    """
    import torch

    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B], got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group of one has no baseline), got {group_size}")
    if rewards.numel() % group_size:
        raise ValueError(f"len(rewards) = {rewards.numel()} is not a multiple of group_size = {group_size}")
    grouped = rewards.to(torch.promote_types(rewards.dtype, torch.float32)).view(-1, group_size)
    if not torch.isfinite(grouped).all():
        raise ValueError("rewards must be finite")
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if normalize_std:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    spread = grouped.max(dim=1, keepdim=True).values - grouped.min(dim=1, keepdim=True).values
    zero_variance = (spread <= 1e-9).expand_as(grouped)
    return advantages.reshape(-1), zero_variance.reshape(-1)


def _check(name: str, tensor: torch.Tensor | None, shape: torch.Size) -> None:
    if tensor is not None and tensor.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(tensor.shape)}")


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: GrpoConfig,
    *,
    ref_logprobs: torch.Tensor | None = None,
    rollout_logprobs: torch.Tensor | None = None,
    truncated: torch.Tensor | None = None,
    zero_variance: torch.Tensor | None = None,
    num_items: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The GRPO loss of one (micro-)batch, and detached metrics.

    ``logprobs`` [B, T] carry the gradient; ``old_logprobs``, ``ref_logprobs``, ``rollout_logprobs``
    and ``mask`` (1 on completion tokens, 0 on padding) are [B, T]; ``advantages`` [B];
    ``truncated`` and ``zero_variance`` [B] bool. Padding positions must hold finite values.

    ``num_items`` replaces the local denominator (tokens for token-mean, sequences otherwise) with a
    global one: a learner that splits a batch into micro-batches, across ranks too, passes the whole
    batch's count to every call so that the summed gradients equal the full-batch loss's. Counts
    below 1 are taken as 1, as the local denominators are.
    """
    import torch

    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be 2-D [B, T], got shape {tuple(logprobs.shape)}")
    shape, batch = logprobs.shape, logprobs.shape[:1]
    for name, tensor in [("old_logprobs", old_logprobs), ("mask", mask), ("ref_logprobs", ref_logprobs),
                         ("rollout_logprobs", rollout_logprobs)]:
        _check(name, tensor, shape)
    for name, tensor in [("advantages", advantages), ("truncated", truncated), ("zero_variance", zero_variance)]:
        _check(name, tensor, batch)
    if config.beta > 0 and ref_logprobs is None:
        raise ValueError(f"ref_logprobs is required when beta > 0 (beta = {config.beta})")
    if num_items is not None and num_items < 0:
        raise ValueError(f"num_items must be >= 0, got {num_items}")

    dtype = torch.promote_types(logprobs.dtype, torch.float32)
    logprobs, old_logprobs = logprobs.to(dtype), old_logprobs.to(dtype)
    m = mask.to(dtype)
    if config.filter_zero_variance and zero_variance is not None:
        m = m * (~zero_variance.bool()).to(dtype)[:, None]
    if config.mask_truncated and truncated is not None:
        m = m * (~truncated.bool()).to(dtype)[:, None]
    tokens, per_seq_tokens = m.sum(), m.sum(dim=1)
    sequences = (per_seq_tokens > 0).sum().to(dtype)

    def masked_mean(x: torch.Tensor) -> torch.Tensor:
        return ((x * m).sum() / tokens.clamp(min=1)).detach()

    a = advantages.to(dtype)[:, None]
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - config.clip_low, 1 + config.clip_high)
    per_token = -torch.min(ratio * a, clipped * a)
    clip_active = ((ratio < 1 - config.clip_low) & (a < 0)) | ((ratio > 1 + config.clip_high) & (a > 0))

    zero = torch.zeros((), dtype=dtype, device=logprobs.device)
    weight_mean, gap = torch.ones_like(zero), zero
    if rollout_logprobs is not None:
        rollout_logprobs = rollout_logprobs.to(dtype)
        gap = masked_mean((old_logprobs - rollout_logprobs).abs())
        if config.importance_cap is not None:
            weight = torch.exp(old_logprobs - rollout_logprobs).clamp(max=config.importance_cap).detach()
            per_token = per_token * weight
            weight_mean = masked_mean(weight)

    kl_mean = zero
    if ref_logprobs is not None:
        log_ref_ratio = ref_logprobs.to(dtype) - logprobs
        kl = -log_ref_ratio if config.kl_estimator == "k1" else torch.exp(log_ref_ratio) - log_ref_ratio - 1
        kl_mean = masked_mean(kl)
        if config.beta > 0:
            per_token = per_token + config.beta * kl

    if config.aggregation == "token-mean":
        loss = (per_token * m).sum() / (tokens.clamp(min=1) if num_items is None else max(num_items, 1.0))
    else:
        per_seq = (per_token * m).sum(dim=1)
        if config.aggregation == "seq-mean-token-mean":
            per_seq = per_seq / per_seq_tokens.clamp(min=1)
        loss = per_seq.sum() / (sequences.clamp(min=1) if num_items is None else max(num_items, 1.0))

    metrics = {
        "clip_fraction": masked_mean(clip_active.to(dtype)),
        "kl": kl_mean,
        "ratio_mean": masked_mean(ratio),
        "importance_weight_mean": weight_mean,
        "logprob_gap": gap,
        "tokens": tokens.detach(),
        "sequences": sequences,
    }
    return loss, metrics


# ---------------------------------------------------------------- the learner's interface
# (actors/learner/algorithms/__init__.py): GRPO is an online algorithm; the producer calls
# ``samples_per_prompt`` and ``score_step``, the train loop ``needs_reference``, ``batch_loss``,
# ``micro_sums`` and ``report``.

Config = GrpoConfig
ONLINE = True


@dataclass
class Sample:
    """One completion as the learner trains on it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    rollout_logprobs: list[float]
    advantage: float
    truncated: bool = False
    zero_variance: bool = False
    loss_mask: list[float] | None = None
    """Per completion token: 1 = the policy's (trained on), 0 = inserted feedback (a multi-turn
    rollout's tool message: out of the loss, the logprob gap and the importance weight). None: all 1."""

    @property
    def policy_tokens(self) -> int:
        return len(self.completion_ids) if self.loss_mask is None else int(sum(self.loss_mask))


def collate(samples: list[Sample], pad_id: int = 0) -> dict[str, Any]:
    """Samples -> padded tensors (:func:`actors.learner.experience.pad_rows`) plus, per completion
    token [B, T], ``rollout_logprobs``; per sample ``advantages``, ``truncated``, ``zero_variance``.
    No samples: one fully masked padding row."""
    import torch

    from actors.learner.experience import pad_rows

    padding = not samples
    if padding:
        samples = [Sample(prompt_ids=[pad_id], completion_ids=[pad_id], rollout_logprobs=[0.0], advantage=0.0)]
    masks = None
    if padding:
        masks = [[0.0]]
    elif any(s.loss_mask is not None for s in samples):
        masks = [s.loss_mask if s.loss_mask is not None else [1.0] * len(s.completion_ids) for s in samples]
    batch = pad_rows([s.prompt_ids for s in samples], [s.completion_ids for s in samples], pad_id, masks=masks)
    batch["rollout_logprobs"] = torch.zeros_like(batch["completion_mask"])
    for row, sample in enumerate(samples):
        batch["rollout_logprobs"][row, : len(sample.rollout_logprobs)] = torch.tensor(sample.rollout_logprobs)
    batch["advantages"] = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    batch["truncated"] = torch.tensor([s.truncated for s in samples])
    batch["zero_variance"] = torch.tensor([s.zero_variance for s in samples])
    return batch


def samples_per_prompt(config: GrpoConfig) -> int:
    """Completions the rollout workers sample per prompt: the group."""
    return config.group_size


def score_step(step: int, tasks: list[Task], completions: list[RolloutCompletion], verdicts: list[Verdict],
               grpo: GrpoConfig, world_size: int, micro_batch_size: int, timing: dict[str, float] | None = None,
               ) -> tuple[dict[int, RankBatch], dict[str, float]]:
    """Verdicts -> rewards -> group advantages -> the samples the loss will use, dealt to ranks;
    and the step's statistics. ``tasks`` are the step's tasks in order, G samples each. Samples
    the loss would mask anyway (zero-variance groups, truncated completions) are dropped here, and
    ``num_items`` counts what is left (tokens for token-mean, sequences otherwise)."""
    import torch

    from actors.learner.experience import RankBatch, shard

    timing = timing or {}
    by_key = {(verdict.task_id, verdict.sample_idx): verdict for verdict in verdicts}
    by_completion = {(c.task_id, c.sample_idx): c for c in completions}
    keys = [(task.task_id, index) for task in tasks for index in range(grpo.group_size)]
    missing = [key for key in keys if key not in by_key or key not in by_completion]
    if missing:
        raise RuntimeError(f"step {step}: {len(missing)} samples have no completion or verdict, e.g. {missing[:3]}")
    rewards = torch.tensor([by_key[key].reward for key in keys], dtype=torch.float32)
    advantages, zero_variance = group_advantages(rewards, grpo.group_size, grpo.normalize_std, grpo.std_eps)
    samples, kept_tokens = [], 0
    for position, key in enumerate(keys):
        completion = by_completion[key]
        sample = Sample(prompt_ids=completion.prompt_token_ids, completion_ids=completion.token_ids,
                        rollout_logprobs=completion.logprobs, advantage=float(advantages[position]),
                        truncated=completion.finish_reason == "length", zero_variance=bool(zero_variance[position]),
                        loss_mask=list(completion.loss_mask) if getattr(completion, "loss_mask", None) else None)
        dropped = ((grpo.filter_zero_variance and sample.zero_variance)
                   or (grpo.mask_truncated and sample.truncated) or not sample.policy_tokens)
        if not dropped:
            samples.append(sample)
            kept_tokens += sample.policy_tokens
    num_items = float(kept_tokens if grpo.aggregation == "token-mean" else len(samples))
    shares = shard(samples, world_size, micro_batch_size)
    batch = {rank: RankBatch(step=step, micro_batches=[collate(micro) for micro in share], num_items=num_items,
                             samples=sum(len(micro) for micro in share))
             for rank, share in enumerate(shares)}
    verdict_list = [by_key[key] for key in keys]
    lengths = [int(sum(by_completion[key].loss_mask)) if getattr(by_completion[key], "loss_mask", None)
               else len(by_completion[key].token_ids) for key in keys]  # the policy's own tokens
    stats = {
        "reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "pass_rate": sum(v.status == "passed" for v in verdict_list) / len(verdict_list),
        "format_reward": sum(v.reward_parts.get("format", 0.0) for v in verdict_list) / len(verdict_list),
        "zero_variance_groups": float(zero_variance.float().mean()),
        "truncated_fraction": sum(by_completion[key].finish_reason == "length" for key in keys) / len(keys),
        "response_length": sum(lengths) / len(lengths), "samples_trained": float(len(samples)),
        "generated_tokens": float(sum(lengths)),
        **{f"time/{name}": value for name, value in timing.items()},
    }
    log.info("step %d: %d samples, reward %.3f, pass rate %.2f, %d trained", step, len(keys),
             stats["reward_mean"], stats["pass_rate"], len(samples))
    return batch, stats


def needs_reference(config: GrpoConfig) -> bool:
    return config.beta > 0


def updates_per_batch(config: GrpoConfig) -> int:
    return config.updates_per_batch


def batch_loss(micro: dict[str, torch.Tensor], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
               config: GrpoConfig, num_items: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one collated micro-batch as a share of the whole batch's (``num_items``)."""
    if config.old_logprobs == "rollout":
        old = micro["rollout_logprobs"]
    else:  # the policy before this batch's first update (the loop keeps it for updates 2..mu)
        old = micro.get("logprobs_before_update", logprobs.detach())
    return grpo_loss(logprobs, old, micro["advantages"], micro["completion_mask"], config,
                     ref_logprobs=ref_logprobs, rollout_logprobs=micro["rollout_logprobs"],
                     truncated=micro["truncated"], zero_variance=micro["zero_variance"], num_items=num_items)


SUMMED = ("tokens", "sequences", "kl", "clip", "gap", "weight")
"""What ``micro_sums`` returns: additive over micro-batches and ranks (token-weighted sums of the means)."""


def micro_sums(metrics: dict[str, torch.Tensor]) -> list[float]:
    """One micro-batch's metrics as sums, in :data:`SUMMED` order."""
    tokens = float(metrics["tokens"])
    return [tokens, float(metrics["sequences"]), float(metrics["kl"]) * tokens,
            float(metrics["clip_fraction"]) * tokens, float(metrics["logprob_gap"]) * tokens,
            float(metrics["importance_weight_mean"]) * tokens]


def report(sums: dict[str, float]) -> dict[str, float]:
    """The step's metrics from the all-reduced sums."""
    tokens = max(sums["tokens"], 1.0)
    return {"kl": sums["kl"] / tokens, "clip_fraction": sums["clip"] / tokens, "logprob_gap": sums["gap"] / tokens,
            "importance_weight": sums["weight"] / tokens, "trained_tokens": sums["tokens"]}
