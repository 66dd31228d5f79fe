"""GRPO (Group Relative Policy Optimization, DeepSeekMath, arXiv 2402.03300): PPO without a value
model. Each prompt is sampled G times; a completion's advantage is relative to its group's rewards,
and every token of it gets that advantage in a policy loss, plus ``beta`` times an estimate of
KL(policy || reference).

The advantage estimator and the policy loss are plug-ins chosen by name (``advantage``: grpo's
group-normalised one or RLOO's leave-one-out, :mod:`actors.learner.algorithms.advantages`;
``policy_loss``: PPO-clip, GSPO or CISPO, :mod:`actors.learner.algorithms.policy_losses`); what
surrounds the policy term is this module's :func:`grpo_loss`. Variants that are options here:

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

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from actors.learner.algorithms.advantages import ADVANTAGE_ESTIMATORS, judged_advantages
from actors.learner.algorithms.base import AlgorithmConfig, OnlineAlgorithm
from actors.learner.algorithms.off_policy import ImportanceMode, importance_weights
from actors.learner.algorithms.policy_losses import POLICY_LOSSES

if TYPE_CHECKING:  # torch is imported where a loss is computed: the config alone stays light for the CLI
    from collections.abc import Mapping

    import torch

    from actors.learner.samples import Rollout, TrainSample

AdvantageName = Literal[ADVANTAGE_ESTIMATORS.names()]
PolicyLossName = Literal[POLICY_LOSSES.names()]


class GrpoConfig(AlgorithmConfig):
    """The GRPO objective: advantages, policy loss, clipping, KL penalty, aggregation and which samples count."""

    name: Literal["grpo"] = "grpo"
    """Which online algorithm this section configures: grpo is GRPO (arXiv 2402.03300) and, by the
    options below, Dr. GRPO, DAPO, RLOO, GSPO and CISPO."""

    group_size: int = Field(32, ge=2, le=4096)
    """G: completions sampled per prompt; advantages are relative to the group's rewards."""

    advantage: AdvantageName = "grpo"
    """The advantage estimator. grpo: reward minus the group's mean, divided by its std unless
    normalize_std is off (DeepSeekMath, arXiv 2402.03300); rloo: reward minus the mean of the other
    G - 1 rewards, unscaled (RLOO, arXiv 2402.14740)."""

    normalize_std: bool = True
    """The grpo estimator: divide advantages by the group's reward std (GRPO). False is Dr. GRPO
    (arXiv 2503.20783), which drops it as a bias towards groups whose rewards barely differ."""

    policy_loss: PolicyLossName = "ppo-clip"
    """The per-token policy loss. ppo-clip: PPO's clipped surrogate on each token's ratio (GRPO,
    arXiv 2402.03300); gspo: the same on the sequence's length-normalised ratio (GSPO, arXiv
    2507.18071); cispo: REINFORCE weighted by the capped, gradient-free ratio (CISPO, MiniMax-M1,
    arXiv 2506.13585)."""

    clip_low: float = Field(0.2, ge=0.0, lt=1.0)
    """The probability ratio is clipped below at 1 - clip_low (PPO's epsilon); ppo-clip and gspo
    (GSPO's paper uses 3e-4); cispo has no lower bound."""

    clip_high: float = Field(0.2, ge=0.0, le=10.0)
    """The ratio is clipped above at 1 + clip_high; DAPO's clip-higher (arXiv 2503.14476) uses 0.28
    to keep exploring, GSPO 4e-4. cispo caps its importance weight at 1 + clip_high (MiniMax-M1's
    epsilon_high^IS; TRL's and ScaleRL's epsilon_max 5.0 is clip_high 4.0)."""

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
    """The importance weight's upper bound: each token's loss is weighted, without gradient, by
    exp(old_logprobs - rollout_logprobs) bounded as ``importance_mode`` says, to correct for the
    rollout engine's numerics and its lag behind the learner. None turns the weight off."""

    importance_mode: ImportanceMode = "token_truncate"
    """How the weight is bounded (actors/learner/algorithms/off_policy.py; TRL's
    ``vllm_importance_sampling_mode``). token_truncate: each token's weight clamped to
    [importance_min, importance_cap] (truncated IS, Yao et al. 2025); token_mask: a token whose
    weight leaves the range is masked out (weight 0; IcePop, arXiv 2510.18855); sequence_truncate /
    sequence_mask: one weight per sequence (the product of its tokens'), clamped or masked."""

    importance_min: float | None = Field(None, ge=0.0)
    """The weight's lower bound (None: none). IcePop masks below 0.5 and above 2 (token_mask with
    importance_min 0.5, importance_cap 2.0)."""

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

    term = POLICY_LOSSES[config.policy_loss](logprobs, old_logprobs, advantages.to(dtype)[:, None], m, config)
    per_token = term.per_token

    zero = torch.zeros((), dtype=dtype, device=logprobs.device)
    weight_mean, gap, bounded_tokens, masked_sequences = torch.ones_like(zero), zero, zero, zero
    if rollout_logprobs is not None:
        rollout_logprobs = rollout_logprobs.to(dtype)
        gap = masked_mean((old_logprobs - rollout_logprobs).abs())
        if config.importance_cap is not None:
            weight, bounded, masked = importance_weights(old_logprobs, rollout_logprobs, mask.to(dtype),
                                                         config.importance_mode, config.importance_min,
                                                         config.importance_cap)
            per_token = per_token * weight
            weight_mean, bounded_tokens = masked_mean(weight), masked_mean(bounded.to(dtype))
            masked_sequences = ((masked & (per_seq_tokens > 0)).sum() / sequences.clamp(min=1)).detach()

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
        "clip_fraction": masked_mean(term.clipped.to(dtype)),
        "kl": kl_mean,
        "ratio_mean": masked_mean(term.ratio),
        "importance_weight_mean": weight_mean,
        "importance_bounded_tokens": bounded_tokens,
        "importance_masked_sequences": masked_sequences,
        "logprob_gap": gap,
        "tokens": tokens.detach(),
        "sequences": sequences,
    }
    return loss, metrics


class Grpo(OnlineAlgorithm[GrpoConfig]):
    config_type = GrpoConfig

    def samples_per_prompt(self) -> int:
        """The group."""
        return self.config.group_size

    def needs_reference(self) -> bool:
        return self.config.beta > 0

    def updates_per_batch(self) -> int:
        return self.config.updates_per_batch

    def train_samples(self, rollouts: list[Rollout]) -> list[TrainSample]:
        """Rewards -> the configured estimator's advantages; zero-variance groups and truncated
        completions are left out where the config masks them (they would add nothing but denominators).
        Samples whose verdict judges nothing (over_budget) are always left out, of the loss and of
        their group's statistics (:func:`judged_advantages`): their 0.0 is no reward."""
        import torch

        from actors.learner.samples import TrainSample

        config = self.config
        rewards = torch.tensor([rollout.reward for rollout in rollouts], dtype=torch.float32)
        judged = torch.tensor([rollout.verdict.judged for rollout in rollouts], dtype=torch.bool)
        advantages, zero_variance = judged_advantages(ADVANTAGE_ESTIMATORS[config.advantage], rewards, judged, config)
        samples = []
        for position, rollout in enumerate(rollouts):
            flat = bool(zero_variance[position])
            masked = (not rollout.verdict.judged or (config.filter_zero_variance and flat)
                      or (config.mask_truncated and rollout.truncated))
            samples.append(TrainSample.of(rollout, advantage=float(advantages[position]), zero_variance=flat,
                                          trained=not masked))
        return samples

    def count(self, samples: list[TrainSample]) -> float:
        """Tokens for token-mean, sequences otherwise."""
        if self.config.aggregation == "token-mean":
            return float(sum(sample.policy_tokens for sample in samples))
        return float(len(samples))

    def batch_loss(self, micro: dict[str, Any], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
                   num_items: float) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.old_logprobs == "rollout":
            old = micro["rollout_logprobs"]
        else:  # the policy before this batch's first update (the loop keeps it for updates 2..mu)
            old = micro.get("logprobs_before_update", logprobs.detach())
        loss, metrics = grpo_loss(logprobs, old, micro["advantages"], micro["completion_mask"], self.config,
                                  ref_logprobs=ref_logprobs, rollout_logprobs=micro["rollout_logprobs"],
                                  truncated=micro["truncated"], zero_variance=micro["zero_variance"],
                                  num_items=num_items)
        tokens = float(metrics["tokens"])
        # The means are token means: weighted by the tokens, they add up over micro-batches and ranks.
        sequences = float(metrics["sequences"])
        return loss, {"tokens": tokens, "sequences": sequences,
                      "importance_masked_sequences": float(metrics["importance_masked_sequences"]) * sequences,
                      **{name: float(metrics[name]) * tokens for name in TOKEN_MEANS}}

    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        """Token means, and ``importance_masked_sequences``: the share of trained sequences that the
        importance bound left without a weighted token (masking modes)."""
        tokens = max(sums["tokens"], 1.0)
        return {"kl": sums["kl"] / tokens, "clip_fraction": sums["clip_fraction"] / tokens,
                "logprob_gap": sums["logprob_gap"] / tokens, "importance_weight": sums["importance_weight_mean"] / tokens,
                "importance_bounded_tokens": sums.get("importance_bounded_tokens", 0.0) / tokens,
                "importance_masked_sequences": sums.get("importance_masked_sequences", 0.0)
                / max(sums.get("sequences", 0.0), 1.0),
                "trained_tokens": sums["tokens"]}


TOKEN_MEANS = ("kl", "clip_fraction", "logprob_gap", "importance_weight_mean", "importance_bounded_tokens")
"""The loss's metrics that are means over its tokens."""
