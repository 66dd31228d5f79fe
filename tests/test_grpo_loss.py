"""GRPO loss: hand-computed values for every option, gradients, and TRL 1.16's own loss code on the same inputs.

The fixed batch (B=2, T=3) used by most tests, written as log-ratios d = logprobs - old_logprobs:

    row 0, advantage +1.0:  d = [0.1, 0.5, -0.5]       ratios e^0.1 (inside), e^0.5 > 1.2 (clipped, A>0),
                                                       e^-0.5 < 0.8 (A>0: the unclipped term is the min)
    row 1, advantage -0.5:  d = [-0.5, 0.5, <padding>]  e^-0.5 < 0.8 (clipped, A<0), e^0.5 (A<0: unclipped)

so with clip 0.2/0.2 the per-token losses -min(r*A, clip(r)*A) are, by hand, PG below.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from actors.learner.algorithms.advantages.grpo import group_advantages
from actors.learner.algorithms.grpo import GrpoConfig, grpo_loss

F64 = torch.float64
OLD = [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]
LP = [[-0.9, -0.5, -1.5], [-1.5, -0.5, 2.0]]  # row 1 col 2 is padding with a wild ratio e^3
REF = [[-1.0, -0.7, -1.2], [-1.4, -0.6, -5.0]]
MASK = [[1, 1, 1], [1, 1, 0]]
ADV = [1.0, -0.5]
PG = [
    [-math.exp(0.1) * 1.0, -1.2 * 1.0, -math.exp(-0.5) * 1.0],
    [-(0.8 * -0.5), -(math.exp(0.5) * -0.5)],
]
PG_TOKENS = [v for row in PG for v in row]
X = [0.1, 0.2, -0.3, -0.1, 0.1]  # logprobs - ref_logprobs on the five unmasked tokens
K1 = X
K3 = [math.exp(-x) + x - 1 for x in X]


def t(rows, dtype=F64) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def cfg(**overrides) -> GrpoConfig:
    return GrpoConfig(**{"beta": 0.0, **overrides})


def loss_of(config: GrpoConfig, lp=LP, old=OLD, adv=ADV, mask=MASK, **kwargs):
    tensors = {k: (t(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
    return grpo_loss(t(lp), t(old), t(adv), t(mask), config, **tensors)


def close(a, b, tol=1e-12) -> bool:
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


# ---- config ----

def test_config_defaults_are_the_papers():
    c = GrpoConfig()
    assert (c.group_size, c.beta, c.kl_estimator, c.clip_low, c.clip_high) == (32, 0.01, "k3", 0.2, 0.2)
    assert c.aggregation == "token-mean" and c.importance_cap == 2.0 and c.std_eps == 1e-4


def test_config_fields_are_documented_and_strict():
    assert all(field.description for field in GrpoConfig.model_fields.values())
    with pytest.raises(ValidationError):
        GrpoConfig(group_size=1)
    with pytest.raises(ValidationError):
        GrpoConfig(beta=-0.1)
    with pytest.raises(ValidationError):
        GrpoConfig(aggregation="sum")
    with pytest.raises(ValidationError):
        GrpoConfig(typo=1)


# ---- advantages ----

REWARDS = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 3.0]


def test_group_advantages_with_std():
    adv, zero = group_advantages(t(REWARDS), 4)
    # group 0: mean 0.5, unbiased var (4 * 0.25) / 3; group 2: mean 0.75, var (3 * 0.75^2 + 2.25^2) / 3 = 2.25
    s0, s2 = math.sqrt(1 / 3) + 1e-4, 1.5 + 1e-4
    expected = [0.5 / s0, -0.5 / s0, -0.5 / s0, 0.5 / s0, 0, 0, 0, 0,
                -0.75 / s2, -0.75 / s2, -0.75 / s2, 2.25 / s2]
    assert all(close(a, e) for a, e in zip(adv.tolist(), expected))
    assert zero.dtype == torch.bool
    assert zero.tolist() == [False] * 4 + [True] * 4 + [False] * 4


def test_group_advantages_without_std_is_dr_grpo():
    adv, _ = group_advantages(t(REWARDS), 4, normalize_std=False)
    expected = [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, -0.75, -0.75, -0.75, 2.25]
    assert all(close(a, e) for a, e in zip(adv.tolist(), expected))


def test_group_advantages_eps_and_groups_of_two():
    adv, _ = group_advantages(t([0.0, 2.0]), 2, eps=0.5)
    # unbiased std of {0, 2} is sqrt(2)
    assert close(adv[0], -1 / (math.sqrt(2) + 0.5)) and close(adv[1], 1 / (math.sqrt(2) + 0.5))


@pytest.mark.parametrize("rewards, group_size, message", [
    ([1.0] * 7, 4, "multiple of group_size"),
    ([[1.0, 2.0]], 2, "1-D"),
    ([1.0, 2.0], 1, "group_size"),
    ([1.0, float("nan")], 2, "finite"),
])
def test_group_advantages_errors(rewards, group_size, message):
    with pytest.raises(ValueError, match=message):
        group_advantages(t(rewards), group_size)


# ---- aggregation and clipping ----

@pytest.mark.parametrize("aggregation, expected", [
    ("token-mean", sum(PG_TOKENS) / 5),
    ("seq-mean-token-mean", (sum(PG[0]) / 3 + sum(PG[1]) / 2) / 2),
    ("seq-mean-token-sum", (sum(PG[0]) + sum(PG[1])) / 2),
])
def test_aggregations(aggregation, expected):
    loss, metrics = loss_of(cfg(aggregation=aggregation))
    assert close(loss, expected)
    assert metrics["tokens"].item() == 5 and metrics["sequences"].item() == 2


def test_clipping_on_both_sides_and_metrics():
    _, metrics = loss_of(cfg())
    assert close(metrics["clip_fraction"], 2 / 5)  # row 0 col 1 (high, A>0) and row 1 col 0 (low, A<0)
    ratios = [math.exp(0.1), math.exp(0.5), math.exp(-0.5), math.exp(-0.5), math.exp(0.5)]
    assert close(metrics["ratio_mean"], sum(ratios) / 5)
    assert metrics["kl"].item() == 0 and metrics["logprob_gap"].item() == 0
    assert metrics["importance_weight_mean"].item() == 1
    assert all(not v.requires_grad and v.dim() == 0 for v in metrics.values())


@pytest.mark.parametrize("clip_low, clip_high, pg, clip_fraction", [
    (0.2, 0.2, [-1.2, 0.8], 1.0),  # both bounds bite
    (0.2, 0.28, [-1.25, 0.8], 0.5),  # DAPO clip-higher lets ratio 1.25 through for A > 0
    (0.3, 0.28, [-1.25, 0.75], 0.0),  # neither bites
])
def test_asymmetric_clip(clip_low, clip_high, pg, clip_fraction):
    # ratio 1.25 with A = +1, ratio 0.75 with A = -1
    loss, metrics = loss_of(cfg(clip_low=clip_low, clip_high=clip_high), lp=[[math.log(1.25)], [math.log(0.75)]],
                            old=[[0.0], [0.0]], adv=[1.0, -1.0], mask=[[1], [1]])
    assert close(loss, sum(pg) / 2)
    assert close(metrics["clip_fraction"], clip_fraction)


# ---- KL ----

@pytest.mark.parametrize("estimator, kl", [("k1", K1), ("k3", K3)])
def test_kl_estimators_with_beta(estimator, kl):
    loss, metrics = loss_of(cfg(beta=0.1, kl_estimator=estimator), ref_logprobs=REF)
    assert close(loss, (sum(PG_TOKENS) + 0.1 * sum(kl)) / 5, 1e-10)
    assert close(metrics["kl"], sum(kl) / 5, 1e-10)


def test_kl_with_seq_mean_aggregation():
    loss, _ = loss_of(cfg(beta=0.1, aggregation="seq-mean-token-mean"), ref_logprobs=REF)
    row0 = sum(PG[0]) + 0.1 * sum(K3[:3])
    row1 = sum(PG[1]) + 0.1 * sum(K3[3:])
    assert close(loss, (row0 / 3 + row1 / 2) / 2, 1e-10)


def test_beta_zero_ignores_ref_in_loss_but_reports_kl():
    loss, metrics = loss_of(cfg(beta=0.0), ref_logprobs=REF)
    assert close(loss, sum(PG_TOKENS) / 5)
    assert close(metrics["kl"], sum(K3) / 5, 1e-10)
    loss_without_ref, _ = loss_of(cfg(beta=0.0))
    assert close(loss_without_ref, loss)


def test_missing_ref_with_beta_raises():
    with pytest.raises(ValueError, match="ref_logprobs"):
        loss_of(cfg(beta=0.01))


# ---- which samples count ----

def four_rows():
    """Rows 0-1 as the base batch; rows 2-3 a zero-variance group (advantage 0) with KL to the reference."""
    return dict(lp=LP + [[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]], old=OLD + [[-1.0] * 3, [-2.0] * 3],
                adv=ADV + [0.0, 0.0], mask=MASK + [[1, 1, 1], [1, 1, 1]],
                ref_logprobs=REF + [[-1.5] * 3, [-2.0] * 3])


@pytest.mark.parametrize("filter_on", [True, False])
def test_zero_variance_filtering(filter_on):
    zero_variance = torch.tensor([False, False, True, True])
    loss, metrics = loss_of(cfg(beta=0.1, kl_estimator="k1", filter_zero_variance=filter_on),
                            zero_variance=zero_variance, **four_rows())
    if filter_on:
        assert close(loss, (sum(PG_TOKENS) + 0.1 * sum(K1)) / 5, 1e-10)
        assert metrics["tokens"].item() == 5 and metrics["sequences"].item() == 2
    else:
        # the zero-advantage rows add no policy loss, but their KL (row 2: 3 * 0.5, row 3: 0) and 6 tokens count
        assert close(loss, (sum(PG_TOKENS) + 0.1 * (sum(K1) + 1.5)) / 11, 1e-10)
        assert metrics["tokens"].item() == 11 and metrics["sequences"].item() == 4


@pytest.mark.parametrize("mask_on", [True, False])
@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean"])
def test_truncated_masking(mask_on, aggregation):
    loss, metrics = loss_of(cfg(mask_truncated=mask_on, aggregation=aggregation),
                            truncated=torch.tensor([False, True]))
    if mask_on:
        assert close(loss, sum(PG[0]) / 3)  # both aggregations: one sequence of 3 tokens
        assert metrics["sequences"].item() == 1
    elif aggregation == "token-mean":
        assert close(loss, sum(PG_TOKENS) / 5)
    else:
        assert close(loss, (sum(PG[0]) / 3 + sum(PG[1]) / 2) / 2)


def test_padding_values_do_not_matter():
    config = cfg(beta=0.1)
    rollout = [[-1.0] * 3, [-1.0] * 3]
    base, _ = loss_of(config, ref_logprobs=REF, rollout_logprobs=rollout)
    wild = [row[:] for row in LP]
    wild[1][2] = -30.0
    other, _ = loss_of(config, lp=wild, ref_logprobs=[REF[0], [-1.4, -0.6, 9.0]],
                       rollout_logprobs=[[-1.0] * 3, [-1.0, -1.0, 20.0]])
    assert close(base, other)


def test_everything_masked_is_zero_with_zero_gradient():
    lp = t(LP).requires_grad_(True)
    loss, metrics = grpo_loss(lp, t(OLD), t(ADV), t(MASK), cfg(beta=0.1), ref_logprobs=t(REF),
                              zero_variance=torch.tensor([True, True]))
    loss.backward()
    assert loss.item() == 0 and torch.equal(lp.grad, torch.zeros_like(lp))
    for name in ("clip_fraction", "kl", "ratio_mean", "tokens", "sequences"):
        assert metrics[name].item() == 0, name


# ---- truncated importance sampling ----

# engine weights exp(old - rollout): row 0 [3 (capped to 2), 0.5, 1], row 1 [1.5, 1, padding]
WEIGHTS = [[3.0, 0.5, 1.0], [1.5, 1.0, 1.0]]
ROLLOUT = [[o - math.log(w) for o, w in zip(orow, wrow)] for orow, wrow in zip(OLD, WEIGHTS)]


@pytest.mark.parametrize("cap, used", [
    (2.0, [2.0, 0.5, 1.0, 1.5, 1.0]),
    (10.0, [3.0, 0.5, 1.0, 1.5, 1.0]),
    (None, [1.0] * 5),
])
def test_importance_cap(cap, used):
    loss, metrics = loss_of(cfg(importance_cap=cap, beta=0.1, kl_estimator="k1"), ref_logprobs=REF,
                            rollout_logprobs=ROLLOUT)
    # the weight multiplies the policy term only, not the KL term
    expected = (sum(p * w for p, w in zip(PG_TOKENS, used)) + 0.1 * sum(K1)) / 5
    assert close(loss, expected, 1e-10)
    assert close(metrics["importance_weight_mean"], sum(used) / 5, 1e-10)
    gap = (math.log(3) + math.log(2) + 0 + math.log(1.5) + 0) / 5  # reported whether or not the weight is used
    assert close(metrics["logprob_gap"], gap, 1e-10)


# ---- global denominators ----

@pytest.mark.parametrize("aggregation, num_items, expected", [
    ("token-mean", 10, sum(PG_TOKENS) / 10),
    ("seq-mean-token-sum", 4, (sum(PG[0]) + sum(PG[1])) / 4),
    ("seq-mean-token-mean", 4, (sum(PG[0]) / 3 + sum(PG[1]) / 2) / 4),
])
def test_num_items(aggregation, num_items, expected):
    loss, _ = loss_of(cfg(aggregation=aggregation), num_items=num_items)
    assert close(loss, expected)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_with_num_items_sum_to_full_batch(aggregation):
    config = cfg(aggregation=aggregation, beta=0.1)
    full, metrics = loss_of(config, ref_logprobs=REF)
    count = metrics["tokens" if aggregation == "token-mean" else "sequences"].item()
    parts = [loss_of(config, lp=[LP[i]], old=[OLD[i]], adv=[ADV[i]], mask=[MASK[i]], ref_logprobs=[REF[i]],
                     num_items=count)[0] for i in range(2)]
    assert close(sum(parts), full)


# ---- gradients ----

def test_gradient_matches_hand_derivation():
    lp = t(LP).requires_grad_(True)
    loss, _ = grpo_loss(lp, t(OLD), t(ADV), t(MASK), cfg(beta=0.1), ref_logprobs=t(REF))
    loss.backward()
    # d/dlp of -r*A is -r*A (r = e^(lp - old)) on unclipped tokens, 0 on clipped ones; of k3 = e^-x + x - 1
    # (x = lp - ref) it is 1 - e^-x; token-mean divides by 5 tokens; padding gets nothing.
    policy = [-math.exp(0.1) * 1.0, 0.0, -math.exp(-0.5) * 1.0, 0.0, -math.exp(0.5) * -0.5]
    expected = [(p + 0.1 * (1 - math.exp(-x))) / 5 for p, x in zip(policy, X)]
    got = lp.grad.tolist()
    assert all(close(g, e, 1e-10) for g, e in zip(got[0] + got[1][:2], expected))
    assert got[1][2] == 0


def test_gradient_of_unclipped_seq_mean_is_minus_ratio_times_advantage():
    lp = t([[-1.0, -1.1]]).requires_grad_(True)
    loss, _ = grpo_loss(lp, t([[-1.0, -1.0]]), t([2.0]), t([[1, 1]]), cfg(aggregation="seq-mean-token-mean"))
    loss.backward()
    assert close(lp.grad[0, 0], -1.0 * 2.0 / 2) and close(lp.grad[0, 1], -math.exp(-0.1) * 2.0 / 2)


# ---- validation ----

@pytest.mark.parametrize("name, value", [
    ("old_logprobs", torch.zeros(2, 4)), ("mask", torch.ones(3, 3)), ("advantages", torch.zeros(3)),
    ("ref_logprobs", torch.zeros(2, 2)), ("rollout_logprobs", torch.zeros(2)),
    ("truncated", torch.zeros(3, dtype=torch.bool)), ("zero_variance", torch.zeros(2, 1, dtype=torch.bool)),
    ("logprobs", torch.zeros(2)),
])
def test_bad_shapes_name_the_argument(name, value):
    args = dict(logprobs=t(LP), old_logprobs=t(OLD), advantages=t(ADV), mask=t(MASK))
    args[name] = value
    with pytest.raises(ValueError, match=name):
        grpo_loss(config=cfg(), **args)


# ---- against TRL 1.16 ----
# TRL's advantages and IS ratios are computed inside `_generate_and_score_completions` (which samples and scores),
# so those are rebuilt below from TRL's documented formula and its own `nanstd`; the loss itself is TRL's real
# `_compute_loss`, run on an instance built without __init__.

B, T = 8, 5


@pytest.fixture(scope="module")
def trl():
    pytest.importorskip("trl")
    from trl.trainer.grpo_trainer import GRPOTrainer
    from trl.trainer.utils import nanstd

    return SimpleNamespace(GRPOTrainer=GRPOTrainer, nanstd=nanstd)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(B, T, generator=g) * 3
    lp = old + 0.4 * torch.randn(B, T, generator=g)  # enough spread that both clip bounds bite
    mask = torch.ones(B, T)
    for row, length in enumerate([5, 3, 4, 1, 5, 2, 5, 4]):
        mask[row, length:] = 0
    return SimpleNamespace(lp=lp, old=old, mask=mask, adv=torch.randn(B, generator=g),
                           ref=old + 0.3 * torch.randn(B, T, generator=g),
                           rollout=old + 0.5 * torch.randn(B, T, generator=g))


def trl_loss(trl, batch, loss_type, *, beta=0.0, eps=(0.2, 0.2), mask=None, rows=slice(None), is_ratio=None,
             num_items_in_batch=None, accumulation=1, steps_per_generation=1):
    trainer = trl.GRPOTrainer.__new__(trl.GRPOTrainer)
    mask = (batch.mask if mask is None else mask)[rows]
    lp = batch.lp[rows].clone().requires_grad_(True)
    n = lp.shape[0]
    trainer.__dict__.update(
        loss_type=loss_type, beta=beta, epsilon_low=eps[0], epsilon_high=eps[1], max_completion_length=T,
        top_entropy_quantile=1.0, aux_loss_enabled=False, off_policy_mask_threshold=None,
        importance_sampling_level="token", use_vllm=is_ratio is not None,
        vllm_importance_sampling_correction=is_ratio is not None, _entropy_bonus_enabled=False,
        current_gradient_accumulation_steps=accumulation, model=SimpleNamespace(training=True),
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=steps_per_generation),
        accelerator=SimpleNamespace(num_processes=1, gather=lambda x: x, reduce=lambda x, reduction: x),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _get_per_token_logps_and_entropies=lambda *args, **kwargs: (lp, torch.zeros_like(lp), None),
    )
    inputs = {
        "prompt_ids": torch.zeros(n, 1, dtype=torch.long), "prompt_mask": torch.ones(n, 1, dtype=torch.long),
        "completion_ids": torch.zeros(n, T, dtype=torch.long), "completion_mask": mask,
        "advantages": batch.adv[rows], "old_per_token_logps": batch.old[rows],
        "ref_per_token_logps": batch.ref[rows],
    }
    if is_ratio is not None:
        inputs["importance_sampling_ratio"] = is_ratio[rows]
    if num_items_in_batch is not None:
        inputs["num_items_in_batch"] = torch.tensor(float(num_items_in_batch))
    loss = trainer._compute_loss(None, inputs)
    loss.backward()
    return loss.detach(), lp.grad, trainer._metrics["train"]


def our_loss(batch, config, *, mask=None, rows=slice(None), **kwargs):
    lp = batch.lp[rows].clone().requires_grad_(True)
    loss, metrics = grpo_loss(lp, batch.old[rows], batch.adv[rows], (batch.mask if mask is None else mask)[rows],
                              config, ref_logprobs=batch.ref[rows], **kwargs)
    loss.backward()
    return loss.detach(), lp.grad, metrics


def assert_same(ours, theirs, atol=1e-6):
    assert torch.allclose(ours[0], theirs[0], atol=atol), (ours[0], theirs[0])
    assert torch.allclose(ours[1], theirs[1], atol=atol)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("eps", [(0.2, 0.2), (0.2, 0.28)])
@pytest.mark.parametrize("loss_type, aggregation", [
    ("grpo", "seq-mean-token-mean"), ("bnpo", "token-mean"), ("dapo", "token-mean"),
])
def test_matches_trl(trl, batch, loss_type, aggregation, beta, eps):
    config = cfg(aggregation=aggregation, beta=beta, clip_low=eps[0], clip_high=eps[1])
    theirs = trl_loss(trl, batch, loss_type, beta=beta, eps=eps, num_items_in_batch=batch.mask.sum())
    ours = our_loss(batch, config)
    assert_same(ours, theirs)
    assert ours[2]["clip_fraction"] > 0
    assert math.isclose(ours[2]["clip_fraction"].item(), theirs[2]["clip_ratio/region_mean"][0], abs_tol=1e-6)
    if beta:  # TRL's KL is always k3
        assert math.isclose(ours[2]["kl"].item(), theirs[2]["kl"][0], abs_tol=1e-6)


@pytest.mark.parametrize("loss_type, aggregation", [("grpo", "seq-mean-token-mean"), ("dapo", "token-mean")])
def test_matches_trl_token_truncated_importance_sampling(trl, batch, loss_type, aggregation):
    # TRL's vllm_importance_sampling_mode="token_truncate" with clip_min None, exactly as its
    # _generate_and_score_completions builds it (mode default there is "sequence_mask", clip_max 3.0: a different
    # quantity, one weight per sequence and out-of-range samples zeroed, which we do not compare).
    cap = 1.3
    is_ratio = torch.clamp(torch.exp((batch.old - batch.rollout) * batch.mask), min=None, max=cap)
    assert (is_ratio == cap).any() and (is_ratio < 1).any()
    theirs = trl_loss(trl, batch, loss_type, beta=0.04, is_ratio=is_ratio, num_items_in_batch=batch.mask.sum())
    ours = our_loss(batch, cfg(aggregation=aggregation, beta=0.04, importance_cap=cap),
                    rollout_logprobs=batch.rollout)
    assert_same(ours, theirs)


def trl_importance_ratio(batch, mode: str, low: float | None, high: float | None) -> torch.Tensor:
    """The ratio TRL 1.16's _generate_and_score_completions builds for ``vllm_importance_sampling_mode``
    (its lines, restated: the method cannot be called alone)."""
    diff = torch.nan_to_num((batch.old - batch.rollout) * batch.mask, nan=0.0)
    if mode.startswith("sequence"):
        diff = diff.sum(dim=-1, keepdim=True)
    ratio = torch.exp(diff)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=low, max=high)
    invalid = (ratio < (low if low is not None else -math.inf)) | (ratio > (high if high is not None else math.inf))
    return ratio.masked_fill(invalid, value=0.0)


@pytest.mark.parametrize("mode", ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"])
@pytest.mark.parametrize("bounds", [(None, 1.3), (0.5, 2.0)])
@pytest.mark.parametrize("loss_type, aggregation", [("grpo", "seq-mean-token-mean"), ("dapo", "token-mean")])
def test_matches_trl_importance_sampling_modes(trl, batch, mode, bounds, loss_type, aggregation):
    """Truncation and masking, per token (IcePop) and per sequence, against TRL's; the metrics count
    the tokens the bound changed and the sequences it left without a weighted token."""
    low, high = bounds
    is_ratio = trl_importance_ratio(batch, mode, low, high)
    theirs = trl_loss(trl, batch, loss_type, beta=0.04, is_ratio=is_ratio, num_items_in_batch=batch.mask.sum())
    config = cfg(aggregation=aggregation, beta=0.04, importance_mode=mode, importance_min=low, importance_cap=high)
    ours = our_loss(batch, config, rollout_logprobs=batch.rollout)
    assert_same(ours, theirs)
    raw = torch.exp(torch.nan_to_num((batch.old - batch.rollout) * batch.mask))
    if mode.startswith("sequence"):
        raw = raw.prod(dim=1, keepdim=True).expand_as(batch.mask)
    lower = low if low is not None else -math.inf
    changed = ((raw < lower) | (raw > high)) & batch.mask.bool()
    assert changed.any() and not changed[batch.mask.bool()].all()  # the bound bites, not everywhere
    assert math.isclose(ours[2]["importance_bounded_tokens"].item(), (changed.sum() / batch.mask.sum()).item(),
                        abs_tol=1e-9)
    weighted = (torch.as_tensor(is_ratio).expand_as(batch.mask) > 0) & batch.mask.bool()
    emptied = (~weighted.any(dim=1)).sum() / batch.mask.bool().any(dim=1).sum()
    assert math.isclose(ours[2]["importance_masked_sequences"].item(), emptied.item(), abs_tol=1e-9)
    if mode == "sequence_mask":
        assert emptied > 0  # some sequences lose all their weight, not by chance of the draw


def test_matches_trl_dapo_across_micro_batches(trl, batch):
    # TRL's num_items_in_batch counts the generation batch; with steps_per_generation == accumulation steps its
    # normaliser is that global count, as our num_items.
    total = batch.mask.sum()
    halves = [slice(0, 4), slice(4, 8)]
    theirs = [trl_loss(trl, batch, "dapo", beta=0.04, rows=r, num_items_in_batch=total, accumulation=2,
                       steps_per_generation=2) for r in halves]
    ours = [our_loss(batch, cfg(beta=0.04), rows=r, num_items=total.item()) for r in halves]
    full = our_loss(batch, cfg(beta=0.04))
    assert torch.allclose(sum(o[0] for o in ours), sum(x[0] for x in theirs), atol=1e-6)
    assert torch.allclose(sum(o[0] for o in ours), full[0], atol=1e-6)
    assert torch.allclose(torch.cat([o[1] for o in ours]), torch.cat([x[1] for x in theirs]), atol=1e-6)


def test_trl_dr_grpo_is_seq_mean_token_sum_up_to_its_constant(trl, batch):
    # TRL's dr_grpo divides the token sum by B * max_completion_length (a constant); ours by the sequence count.
    # With every sequence non-empty the two differ exactly by the factor max_completion_length.
    theirs = trl_loss(trl, batch, "dr_grpo", beta=0.04)
    ours = our_loss(batch, cfg(aggregation="seq-mean-token-sum", beta=0.04))
    assert torch.allclose(ours[0], theirs[0] * T, atol=1e-5)
    assert torch.allclose(ours[1], theirs[1] * T, atol=1e-6)


def test_trl_grpo_counts_empty_sequences_where_we_do_not(trl, batch):
    # A sequence masked out entirely (TRL's mask_truncated_completions zeroes its completion_mask) still counts in
    # TRL's "grpo" mean over the batch; our seq-mean divides by the sequences that have tokens left.
    mask = batch.mask.clone()
    mask[[1, 5]] = 0
    theirs = trl_loss(trl, batch, "grpo", beta=0.04, mask=mask)
    ours = our_loss(batch, cfg(aggregation="seq-mean-token-mean", beta=0.04),
                    truncated=torch.tensor([False, True, False, False, False, True, False, False]))
    assert ours[2]["sequences"].item() == 6
    assert torch.allclose(ours[0] * 6 / 8, theirs[0], atol=1e-6)
    # token-level losses are unaffected: dapo with the zeroed mask equals our token-mean with truncation masking
    theirs = trl_loss(trl, batch, "dapo", beta=0.04, mask=mask, num_items_in_batch=mask.sum())
    ours = our_loss(batch, cfg(beta=0.04), truncated=torch.tensor([False, True, False, False, False, True, False,
                                                                    False]))
    assert_same(ours, theirs)


@pytest.mark.parametrize("normalize_std", [True, False])
def test_advantages_match_trl_formula(trl, normalize_std):
    # TRL (multi_objective_aggregation "sum_then_normalize", scale_rewards "group" or "none"):
    # advantages = rewards - group mean, divided by (nanstd(group) + 1e-4) unless scale_rewards is "none".
    g = torch.Generator().manual_seed(1)
    rewards = torch.cat([torch.rand(12, generator=g), torch.full((4,), 0.7)])
    grouped = rewards.view(-1, 4)
    std = trl.nanstd(grouped, dim=1).repeat_interleave(4)
    expected = rewards - grouped.mean(dim=1).repeat_interleave(4)
    if normalize_std:
        expected = expected / (std + 1e-4)
    adv, zero = group_advantages(rewards, 4, normalize_std=normalize_std)
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.equal(zero, torch.isclose(std, torch.zeros_like(std)))  # TRL's is_std_zero
