"""GRPO's plug-ins: the advantage estimators and policy losses registries, and the plug-ins beyond
GRPO's own, each against TRL 1.16's own code on the same inputs, to 1e-6 (loss and gradient):

- RLOO's leave-one-out advantage (arXiv 2402.14740) against the lines RLOOTrainer computes it with,
  cut from its ``_generate_and_score_completions`` and run as they are. Only the advantage is compared:
  RLOOTrainer's loss takes the ratio of whole-sequence probabilities (sums of logprobs, clipped once
  per sequence) and puts its KL penalty (k1, summed over the sequence) into the reward; ours keeps
  GRPO's per-token loss and KL term, with RLOO's baseline.
- GSPO (arXiv 2507.18071) against GRPOTrainer's ``_compute_loss`` with ``importance_sampling_level=
  "sequence"``; CISPO (arXiv 2506.13585) against it with ``loss_type="cispo"``, whose cap TRL takes as
  ``epsilon_high`` itself (ours is 1 + clip_high).
"""

from __future__ import annotations

import inspect
import textwrap
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from actors.contracts import Task, Verdict
from actors.learner.algorithms.advantages import ADVANTAGE_ESTIMATORS
from actors.learner.algorithms.grpo import Grpo, GrpoConfig, grpo_loss
from actors.learner.algorithms.policy_losses import POLICY_LOSSES
from actors.learner.algorithms.registry import Registry
from actors.learner.samples import Rollout
from actors.learner.scoring import score_step
from actors.rollout.engine import RolloutCompletion

TOL = 1e-6
B, T = 8, 5
DIFFERENCES: dict[str, float] = {}
"""The largest absolute difference to TRL seen by each comparison (printed with -s)."""


def record(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> float:
    difference = float((ours - theirs).abs().max())
    DIFFERENCES[name] = max(DIFFERENCES.get(name, 0.0), difference)
    return difference


@pytest.fixture(scope="module", autouse=True)
def report_differences():
    yield
    for name, difference in sorted(DIFFERENCES.items()):
        print(f"max |ours - TRL| {name}: {difference:.3g}")


# ---- the registries ----

def test_the_registries_name_their_plugins():
    assert ADVANTAGE_ESTIMATORS.names() == ("grpo", "rloo")
    assert POLICY_LOSSES.names() == ("ppo-clip", "gspo", "cispo")
    with pytest.raises(KeyError, match="unknown policy loss 'ppo'; known: ppo-clip, gspo, cispo"):
        POLICY_LOSSES["ppo"]


def test_a_name_registered_twice_is_an_error():
    registry = Registry("thing", __name__, modules=())

    @registry.register("a")
    def first():
        pass

    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        @registry.register("a")
        def second():
            pass

    assert registry["a"] is first and registry.names() == ("a",)


# ---- RLOO ----

def trl_rloo_advantages(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """RLOOTrainer's own lines, from the grouped rewards to the advantages, run on ``rewards``."""
    from trl.trainer.rloo_trainer import RLOOTrainer
    from trl.trainer.utils import nanstd

    source = inspect.getsource(RLOOTrainer._generate_and_score_completions)
    first = "grouped_rewards = rewards.view(-1, num_generations)"
    last = "advantages = torch.nan_to_num(advantages, nan=0.0)"
    start = source.rindex("\n", 0, source.index(first)) + 1
    block = textwrap.dedent(source[start:source.index(last) + len(last)])
    assert "baselines = (grouped_sum - grouped_rewards) / (scorable_counts - 1)" in block  # the leave-one-out
    scope = {"torch": torch, "nanstd": nanstd, "rewards": rewards, "num_generations": num_generations,
             "self": SimpleNamespace(normalize_advantages=False)}  # RLOOConfig's default
    exec(compile(block, "rloo_trainer.py", "exec"), scope)  # noqa: S102 - TRL's code, as it ships
    return scope["advantages"]


@pytest.mark.parametrize("group_size", [2, 4, 8])
def test_rloo_advantages_are_rloo_trainers(group_size):
    pytest.importorskip("trl")
    g = torch.Generator().manual_seed(group_size)
    rewards = torch.cat([torch.rand(3 * group_size, generator=g), torch.full((group_size,), 0.7)])
    ours, zero = ADVANTAGE_ESTIMATORS["rloo"](rewards, GrpoConfig(group_size=group_size))
    theirs = trl_rloo_advantages(rewards, group_size)
    assert record("rloo advantages", ours, theirs) <= TOL
    assert zero.tolist() == [False] * (3 * group_size) + [True] * group_size
    assert ours[-group_size:].abs().max() < 1e-6  # a group of equal rewards has nothing to learn (up to rounding, as TRL's)
    # Leave-one-out is the group-mean baseline scaled by G / (G - 1), whatever normalize_std says.
    grouped = rewards.view(-1, group_size)
    scaled = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1) * group_size / (group_size - 1)
    assert torch.allclose(ours, scaled, atol=1e-6)
    unscaled, _ = ADVANTAGE_ESTIMATORS["rloo"](rewards, GrpoConfig(group_size=group_size, normalize_std=False))
    assert torch.equal(unscaled, ours)


def test_the_advantage_estimator_is_chosen_by_config_when_a_step_is_scored():
    task = Task(task_id="t", family="t", harness="program", prompt="p", tests="")
    rewards = [1.0, 0.0, 0.5, 0.0]
    completions = [RolloutCompletion(task_id="t", sample_idx=i, text="x", token_ids=[5, 6], logprobs=[-1.0, -1.0],
                                     prompt_token_ids=[1]) for i in range(4)]
    verdicts = [Verdict(task_id="t", sample_idx=i, status="failed", tests_passed=0, tests_total=1, reward=reward)
                for i, reward in enumerate(rewards)]

    rollouts = [Rollout(task, completion, verdict) for completion, verdict in zip(completions, verdicts)]

    def advantages(name):
        batch, _ = score_step(0, rollouts, Grpo(GrpoConfig(group_size=4, advantage=name)), 1, 8)
        return batch[0].micro_batches[0]["advantages"].tolist()

    assert advantages("rloo") == pytest.approx([5 / 6, -1 / 2, 1 / 6, -1 / 2])  # r_i - mean of the other three
    assert advantages("grpo") != pytest.approx(advantages("rloo"))


# ---- GSPO and CISPO against GRPOTrainer._compute_loss ----

@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(B, T, generator=g) * 3
    lp = old + 0.4 * torch.randn(B, T, generator=g)
    mask = torch.ones(B, T)
    for row, length in enumerate([5, 3, 4, 1, 5, 2, 5, 4]):
        mask[row, length:] = 0
    return SimpleNamespace(lp=lp, old=old, mask=mask, adv=torch.randn(B, generator=g),
                           ref=old + 0.3 * torch.randn(B, T, generator=g),
                           rollout=old + 0.5 * torch.randn(B, T, generator=g))


def trl_loss(batch, loss_type, *, level="token", beta=0.0, eps=(0.2, 0.2), is_ratio=None):
    """GRPOTrainer's real ``_compute_loss``, on an instance built without __init__ (one process, no
    accumulation: its num_items_in_batch is the batch's token count)."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    trainer = GRPOTrainer.__new__(GRPOTrainer)
    lp = batch.lp.clone().requires_grad_(True)
    trainer.__dict__.update(
        loss_type=loss_type, beta=beta, epsilon_low=eps[0], epsilon_high=eps[1], max_completion_length=T,
        top_entropy_quantile=1.0, aux_loss_enabled=False, off_policy_mask_threshold=None,
        importance_sampling_level=level, use_vllm=is_ratio is not None,
        vllm_importance_sampling_correction=is_ratio is not None, _entropy_bonus_enabled=False,
        current_gradient_accumulation_steps=1, model=SimpleNamespace(training=True),
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        accelerator=SimpleNamespace(num_processes=1, gather=lambda x: x, reduce=lambda x, reduction: x),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _get_per_token_logps_and_entropies=lambda *args, **kwargs: (lp, torch.zeros_like(lp), None),
    )
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": batch.mask,
        "advantages": batch.adv, "old_per_token_logps": batch.old, "ref_per_token_logps": batch.ref,
        "num_items_in_batch": batch.mask.sum(),
    }
    if is_ratio is not None:
        inputs["importance_sampling_ratio"] = is_ratio
    loss = trainer._compute_loss(None, inputs)
    loss.backward()
    return loss.detach(), lp.grad


def our_loss(batch, config, **kwargs):
    lp = batch.lp.clone().requires_grad_(True)
    loss, metrics = grpo_loss(lp, batch.old, batch.adv, batch.mask, config, ref_logprobs=batch.ref, **kwargs)
    loss.backward()
    return loss.detach(), lp.grad, metrics


def assert_same(name, ours, theirs):
    assert record(f"{name} loss", ours[0], theirs[0]) <= TOL, (ours[0], theirs[0])
    assert record(f"{name} gradient", ours[1], theirs[1]) <= TOL


def truncated_is_ratio(batch, cap):
    """TRL's vllm_importance_sampling_mode="token_truncate" weights (see tests/test_grpo_loss.py)."""
    return torch.clamp(torch.exp((batch.old - batch.rollout) * batch.mask), max=cap)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("eps", [(0.05, 0.08), (3e-4, 4e-4)])  # the paper's, and one some sequences stay inside
@pytest.mark.parametrize("loss_type, aggregation", [("grpo", "seq-mean-token-mean"), ("dapo", "token-mean")])
def test_gspo_is_trls_sequence_level_importance_sampling(batch, loss_type, aggregation, beta, eps):
    pytest.importorskip("trl")
    config = GrpoConfig(policy_loss="gspo", aggregation=aggregation, beta=beta, clip_low=eps[0], clip_high=eps[1])
    ours = our_loss(batch, config)
    assert_same("gspo", ours, trl_loss(batch, loss_type, level="sequence", beta=beta, eps=eps))
    if eps[0] > 0.01:  # both sides of the bound: some sequences clipped, some not
        assert 0 < ours[2]["clip_fraction"] < 1
    # A sequence's tokens share one ratio: the gradient of its loss is spread evenly over them.
    unclipped = GrpoConfig(policy_loss="gspo", beta=0.0, clip_low=0.99, clip_high=10.0,
                           aggregation="seq-mean-token-mean")
    _, grad, _ = our_loss(batch, unclipped)
    for row in range(B):
        tokens = batch.mask[row].bool()
        assert torch.allclose(grad[row, tokens], grad[row, tokens][0].expand(int(tokens.sum())), atol=1e-7)


def test_gspo_with_truncated_importance_sampling_is_trls(batch):
    pytest.importorskip("trl")
    config = GrpoConfig(policy_loss="gspo", beta=0.04, clip_low=0.2, clip_high=0.28, importance_cap=1.3)
    ours = our_loss(batch, config, rollout_logprobs=batch.rollout)
    theirs = trl_loss(batch, "dapo", level="sequence", beta=0.04, eps=(0.2, 0.28),
                      is_ratio=truncated_is_ratio(batch, 1.3))
    assert_same("gspo+tis", ours, theirs)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("clip_high", [0.3, 4.0])  # 4.0: TRL's recommended epsilon_high 5.0
def test_cispo_is_trls(batch, clip_high, beta):
    pytest.importorskip("trl")
    config = GrpoConfig(policy_loss="cispo", beta=beta, clip_high=clip_high)
    ours = our_loss(batch, config)
    assert_same("cispo", ours, trl_loss(batch, "cispo", beta=beta, eps=(0.2, 1 + clip_high)))
    capped = ours[2]["clip_fraction"]
    assert (capped > 0) if clip_high == 0.3 else (capped == 0)


def test_cispo_keeps_a_gradient_where_ppo_clip_drops_it(batch):
    """Tokens beyond the bound: PPO-clip's gradient is 0 there, CISPO's is the capped weight times A."""
    ratio = torch.exp(batch.lp - batch.old)
    a = batch.adv[:, None].expand_as(ratio)
    beyond = batch.mask.bool() & (((ratio > 1.3) & (a > 0)) | ((ratio < 0.7) & (a < 0)))
    assert beyond.any()
    _, ppo_grad, _ = our_loss(batch, GrpoConfig(beta=0.0, clip_low=0.3, clip_high=0.3))
    _, cispo_grad, _ = our_loss(batch, GrpoConfig(policy_loss="cispo", beta=0.0, clip_high=0.3))
    assert (ppo_grad[beyond] == 0).all()
    expected = -torch.clamp(ratio, max=1.3) * a / batch.mask.sum()
    assert torch.allclose(cispo_grad[batch.mask.bool()], expected[batch.mask.bool()], atol=1e-7)


def test_cispo_with_truncated_importance_sampling_is_trls(batch):
    pytest.importorskip("trl")
    ours = our_loss(batch, GrpoConfig(policy_loss="cispo", beta=0.04, clip_high=0.3, importance_cap=1.3),
                    rollout_logprobs=batch.rollout)
    theirs = trl_loss(batch, "cispo", beta=0.04, eps=(0.2, 1.3), is_ratio=truncated_is_ratio(batch, 1.3))
    assert_same("cispo+tis", ours, theirs)
