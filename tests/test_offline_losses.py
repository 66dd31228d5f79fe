"""SFT, DPO and ORPO losses: TRL 1.16's own loss code on the same tokens and the same tiny model,
to 1e-6, plus the properties the learner relies on (micro-batches add up to the batch, padding
counts for nothing).

TRL's trainers are built without ``__init__`` (no datasets, no accelerate launch) and given the
attributes their loss code reads; the models get TRL's own fused LM head (``add_fused_lm_head``), as
the trainers patch them. Our side runs the learner's path: the algorithm's ``collate`` ->
``token_logprobs`` -> ``batch_loss`` (-> ``report`` of its sums, for the metrics).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from actors.learner.algorithms import algorithm_for
from actors.learner.algorithms.dpo import Dpo, DpoConfig
from actors.learner.algorithms.orpo import Orpo, OrpoConfig
from actors.learner.algorithms.sft import Sft, SftConfig
from actors.learner.policy import token_logprobs
from actors.learner.sums import Sums
from actors.rollout.testing import save_tiny_model

TOL = 1e-6
"""Agreement to 1e-6, absolute or relative to the value (float32 models: one ulp of 2.5 is 2.4e-7)."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=5))


def load(path, fused=None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if fused is not None:
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(model, outputs=fused)
    return model


def random_rows(count, seed, pairs=False):
    g = torch.Generator().manual_seed(seed)

    def ids(n):
        return torch.randint(3, 300, (n,), generator=g).tolist()

    rows = []
    for index in range(count):
        prompt = ids(2 + (index * 3) % 5)
        if pairs:
            rows.append({"prompt_ids": prompt, "chosen_ids": ids(3 + index % 4), "rejected_ids": ids(2 + (index * 2) % 5)})
        else:
            rows.append({"prompt_ids": prompt, "completion_ids": ids(3 + (index * 5) % 6)})
    return rows


def ours(model, config, rows, ref_model=None, num_items=None):
    algorithm = algorithm_for(config)
    batch = algorithm.collate(rows, 0)
    logprobs, _ = token_logprobs(model, batch)
    ref = None
    if ref_model is not None:
        with torch.no_grad():
            ref, _ = token_logprobs(ref_model, batch)
    items = algorithm.count(rows) if num_items is None else num_items
    return algorithm.batch_loss(batch, logprobs, ref, items)


def right_padded(sequences, pad=0):
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask


def accelerator():
    return SimpleNamespace(device=torch.device("cpu"), gather=lambda x: x, gather_for_metrics=lambda x: x,
                           unwrap_model=lambda m: m, num_processes=1, parallelism_config=None)


# ---- SFT ----

def test_sft_loss_is_trls_sft_loss(tiny):
    from trl import SFTTrainer

    rows = random_rows(5, seed=1)
    model = load(tiny)
    loss, sums = ours(model, SftConfig(), rows)

    trainer = SFTTrainer.__new__(SFTTrainer)
    trl_model = load(tiny, fused=("log_probs", "entropy", "is_top1"))
    trainer.__dict__.update(
        model=trl_model, args=SimpleNamespace(loss_type="nll", average_tokens_across_devices=False, max_length=None),
        accelerator=accelerator(), compute_loss_func=None, label_smoother=None, aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1)
    ids, attention = right_padded([r["prompt_ids"] + r["completion_ids"] for r in rows])
    labels = ids.masked_fill(attention == 0, -100)
    for row, r in enumerate(rows):
        labels[row, : len(r["prompt_ids"])] = -100  # completion-only loss
    expected = trainer.compute_loss(trl_model, {"input_ids": ids, "attention_mask": attention, "labels": labels})
    assert abs(loss.item() - expected.item()) < TOL, (loss.item(), expected.item())
    assert sums["tokens"] == sum(len(r["completion_ids"]) for r in rows)
    # Gradients agree too (the same objective, not just the same number).
    loss.backward()
    expected.backward()
    ours_grad = dict(model.named_parameters())["model.layers.0.mlp.up_proj.weight"].grad
    trl_grad = dict(trl_model.named_parameters())["model.layers.0.mlp.up_proj.weight"].grad
    assert torch.allclose(ours_grad, trl_grad, atol=1e-6)


# ---- DPO ----

def trl_dpo_loss(tiny, rows, beta, policy_state=None):
    from trl import DPOTrainer

    trainer = DPOTrainer.__new__(DPOTrainer)
    model = load(tiny, fused=("log_probs", "entropy", "mean_logits", "is_top1"))
    if policy_state is not None:
        model.load_state_dict(policy_state)
    ref_model = load(tiny, fused=("log_probs",))
    trainer.__dict__.update(
        model=model, ref_model=ref_model, beta=beta, loss_types=["sigmoid"], loss_weights=[1.0],
        f_divergence_type="reverse_kl", ld_alpha=None, precompute_ref_logps=False, use_weighting=False,
        aux_loss_enabled=False, label_smoothing=0.0, args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        accelerator=accelerator(), _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0, _tp_size=1)
    sequences, answer_starts = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for r in rows:
            sequences.append(r["prompt_ids"] + r[side])
            answer_starts.append(len(r["prompt_ids"]))
    ids, attention = right_padded(sequences)
    completion_mask = attention.clone()
    for row, start in enumerate(answer_starts):
        completion_mask[row, :start] = 0
    loss = trainer._compute_loss(model, {"input_ids": ids, "attention_mask": attention,
                                         "completion_mask": completion_mask}, return_outputs=False)
    mode = "train" if model.training else "eval"
    return loss, {key: values[-1] for key, values in trainer._metrics[mode].items()}


def perturbed(model, seed):
    """The policy a few updates away from the reference (else every log-ratio is 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=g))
    return model


@pytest.mark.parametrize("beta", [0.2, 1.0])
def test_dpo_loss_and_metrics_are_trls(tiny, beta):
    rows = random_rows(4, seed=2, pairs=True)
    policy, reference = perturbed(load(tiny), seed=3), load(tiny)
    loss, sums = ours(policy, DpoConfig(beta=beta), rows, ref_model=reference)
    expected, trl_metrics = trl_dpo_loss(tiny, rows, beta, policy_state=policy.state_dict())
    assert abs(loss.item() - expected.item()) < TOL, (loss.item(), expected.item())
    report = Dpo(DpoConfig(beta=beta)).report(Sums(sums))
    assert report["margin"] == pytest.approx(trl_metrics["rewards/margins"], rel=TOL, abs=TOL)
    assert report["accuracy"] == pytest.approx(trl_metrics["rewards/accuracies"], rel=TOL, abs=TOL)
    assert report["rewards/chosen"] == pytest.approx(trl_metrics["rewards/chosen"], rel=TOL, abs=TOL)
    assert report["rewards/rejected"] == pytest.approx(trl_metrics["rewards/rejected"], rel=TOL, abs=TOL)


def test_dpo_with_the_policy_as_its_own_reference_is_log_2():
    config = DpoConfig(beta=0.2)
    logprobs = -torch.rand(4, 6)
    mask = torch.ones(4, 6)
    loss, sums = Dpo(config).batch_loss({"completion_mask": mask}, logprobs, logprobs.clone(), 2.0)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-7)
    assert sums["margin"] == 0 and sums["correct"] == 0


# ---- ORPO ----

def test_orpo_loss_is_trl_experimental_orpo(tiny, monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.orpo import ORPOTrainer

    rows = random_rows(4, seed=4, pairs=True)
    model = load(tiny)
    loss, sums = ours(model, OrpoConfig(odds_ratio_weight=0.1), rows)

    trainer = ORPOTrainer.__new__(ORPOTrainer)
    trainer.__dict__.update(beta=0.1, is_encoder_decoder=False, padding_value=0, aux_loss_enabled=False,
                            accelerator=accelerator())
    batch = {}
    for side in ("chosen", "rejected"):
        ids, attention = right_padded([r["prompt_ids"] + r[f"{side}_ids"] for r in rows])
        labels = ids.masked_fill(attention == 0, -100)
        for row, r in enumerate(rows):
            labels[row, : len(r["prompt_ids"])] = -100
        batch.update({f"{side}_input_ids": ids, f"{side}_attention_mask": attention, f"{side}_labels": labels})
    expected, trl_metrics = trainer.get_batch_loss_metrics(load(tiny), batch)
    assert abs(loss.item() - expected.item()) < TOL, (loss.item(), expected.item())
    report = Orpo(OrpoConfig(odds_ratio_weight=0.1)).report(Sums(sums))
    assert report["nll"] == pytest.approx(trl_metrics["nll_loss"], rel=TOL, abs=TOL)
    assert report["log_odds_ratio"] == pytest.approx(trl_metrics["log_odds_ratio"], rel=TOL, abs=TOL)
    assert report["margin"] == pytest.approx(trl_metrics["rewards/margins"], rel=TOL, abs=TOL)
    assert report["accuracy"] == pytest.approx(trl_metrics["rewards/accuracies"], rel=TOL, abs=TOL)


# ---- what the learner relies on ----

@pytest.mark.parametrize("config, pairs", [(SftConfig(), False), (DpoConfig(), True), (OrpoConfig(), True)])
def test_micro_batches_with_the_global_count_add_up_and_padding_adds_nothing(tiny, config, pairs):
    algorithm = algorithm_for(config)
    rows = random_rows(5, seed=6, pairs=pairs)
    policy = perturbed(load(tiny), seed=7)
    reference = load(tiny) if algorithm.needs_reference() else None
    whole, _ = ours(policy, config, rows, ref_model=reference)
    items = algorithm.count(rows)
    parts = [ours(policy, config, part, ref_model=reference, num_items=items)[0] for part in (rows[:2], rows[2:])]
    assert abs(sum(p.item() for p in parts) - whole.item()) < TOL
    padding = algorithm.collate([], 0)
    logprobs, _ = token_logprobs(policy, padding)
    ref = token_logprobs(reference, padding)[0] if reference is not None else None
    loss, sums = algorithm.batch_loss(padding, logprobs, ref, items)
    assert loss.item() == 0.0 and sums and all(value == 0 for value in sums.values())


def test_configs_are_documented_and_named_in_the_registry():
    for config, algorithm in ((SftConfig, Sft), (DpoConfig, Dpo), (OrpoConfig, Orpo)):
        assert all(field.description for field in config.model_fields.values())
        assert type(algorithm_for(config())) is algorithm and algorithm.config_type is config
    assert (DpoConfig().beta, OrpoConfig().odds_ratio_weight) == (0.2, 0.1)
