"""The learner's parts without Ray: token scoring, batching, scoring a step, one DeepSpeed step."""

import copy
import socket

import pytest
import torch

from actors.contracts import Task, Verdict
from actors.learner import checkpoint
from actors.learner.algorithms.grpo import Grpo, GrpoConfig
from actors.learner.config import LearnerConfig, LoraConfig
from actors.learner.experience import RankBatch, shard
from actors.learner.policy import hf_state_dict, load_policy, reference_context, token_logprobs
from actors.learner.producer import ProducerConfig, tasks_for_step
from actors.learner.samples import Rollout, TrainSample, collate_samples
from actors.learner.scoring import score_step
from actors.learner.train_loop import skip_inference_comm_build
from actors.rollout.engine import RolloutCompletion
from actors.rollout.testing import save_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=3))


@pytest.fixture(scope="module")
def process_group():
    """A one-process gloo group, as Ray Train gives each rank (DeepSpeed reuses it)."""
    import torch.distributed as dist

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:  # no RANK, WORLD_SIZE or MASTER_* left for later tests
        for name, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1",
                                LOCAL_RANK="0").items():
            patch.setenv(name, value)
        dist.init_process_group("gloo", rank=0, world_size=1)
        yield
        dist.destroy_process_group()


def samples_for(model, count=4, seed=0):
    """Random prompts and completions of different lengths, with the model's own logprobs."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(count):
        prompt = torch.randint(3, 200, (3 + index,), generator=generator).tolist()
        completion = torch.randint(3, 200, (5 + 2 * index,), generator=generator).tolist()
        samples.append(TrainSample(prompt_ids=prompt, completion_ids=completion, rollout_logprobs=[0.0] * len(completion),
                              advantage=1.0 if index % 2 == 0 else -1.0))
    with torch.no_grad():
        logprobs, _ = token_logprobs(model, collate_samples(samples))
    for row, sample in enumerate(samples):
        sample.rollout_logprobs = logprobs[row, : len(sample.completion_ids)].tolist()
    return samples


def test_token_logprobs_pick_each_completion_token(tiny):
    model, _ = load_policy(LearnerConfig(), tiny, with_reference=False)
    samples = samples_for(model, count=3)
    batch = collate_samples(samples)
    logprobs, entropy = token_logprobs(model, batch, with_entropy=True)
    assert logprobs.shape == batch["completion_mask"].shape == entropy.shape
    for row, sample in enumerate(samples):
        ids = torch.tensor([sample.prompt_ids + sample.completion_ids])
        with torch.no_grad():
            full = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        start = len(sample.prompt_ids)
        expected = [full[start - 1 + j, token].item() for j, token in enumerate(sample.completion_ids)]
        assert logprobs[row, : len(expected)].tolist() == pytest.approx(expected, abs=1e-5)
        assert batch["completion_mask"][row].sum() == len(expected)
    assert (entropy[batch["completion_mask"].bool()] > 0).all()


def test_shard_gives_every_rank_the_same_number_of_micro_batches():
    samples = [TrainSample([1], [2] * (i + 1), [0.0] * (i + 1), 1.0) for i in range(5)]
    shares = shard(samples, world_size=2, micro_batch_size=2)
    assert [len(share) for share in shares] == [2, 2]
    assert sorted(len(s.completion_ids) for share in shares for micro in share for s in micro) == [1, 2, 3, 4, 5]
    assert [len(micro) for micro in shares[1]] == [2, 0]  # rank 1 holds 2 samples: one padding micro-batch
    padding = collate_samples(shares[1][1])
    assert padding["completion_mask"].sum() == 0 and padding["input_ids"].shape[0] == 1


def test_named_sums_add_up_by_name_and_reduce_over_ranks_by_name(process_group):
    from actors.learner.sums import Sums, all_reduce

    totals, sums = Sums(loss=0.5), Sums()
    sums.add({"tokens": 3.0, "kl": 0.5})
    sums.add({"kl": 0.25, "tokens": 2.0})
    all_reduce(totals, sums)  # one rank: the same values, each back under its own name
    assert sums == {"kl": 0.75, "tokens": 5.0} and totals == {"loss": 0.5}
    assert sums["pairs"] == 0.0 and "pairs" not in sums  # a name never added reads 0


def test_tasks_for_step_cover_every_task_each_pass_and_repeat_exactly():
    tasks = [Task(task_id=str(i), family="t", harness="program", prompt=f"p{i}", tests="") for i in range(5)]
    config = ProducerConfig(prompts_per_step=2, seed=7)
    steps = [[task.task_id for task in tasks_for_step(tasks, step, config)] for step in range(5)]
    flat = [task_id for step in steps for task_id in step]
    assert sorted(flat[:5]) == sorted(flat[5:10]) == [str(i) for i in range(5)]
    assert steps == [[task.task_id for task in tasks_for_step(tasks, step, config)] for step in range(5)]
    other = ProducerConfig(prompts_per_step=2, seed=8)
    assert steps != [[task.task_id for task in tasks_for_step(tasks, step, other)] for step in range(5)]
    ordered = ProducerConfig(prompts_per_step=2, shuffle=False)
    assert [t.task_id for t in tasks_for_step(tasks, 2, ordered)] == ["4", "0"]


def test_score_step_turns_verdicts_into_advantages_and_drops_what_the_loss_would_mask():
    tasks = [Task(task_id=name, family="t", harness="program", prompt=name, tests="") for name in ("a", "b", "c")]
    rewards = {"a": [1.0, 0.0, 1.0, 0.0], "b": [1.0, 1.0, 1.0, 1.0], "c": [0.5, 0.0, 1.0, 0.0]}
    completions, verdicts = [], []
    for name, values in rewards.items():
        for index, reward in enumerate(values):
            truncated = name == "c" and index == 3
            completions.append(RolloutCompletion(task_id=name, sample_idx=index, text="x", token_ids=[5] * (index + 2),
                                                 logprobs=[-1.0] * (index + 2), finish_reason="length" if truncated else "stop",
                                                 prompt_token_ids=[1, 2]))
            verdicts.append(Verdict(task_id=name, sample_idx=index, status="passed" if reward == 1.0 else "failed",
                                    tests_passed=int(reward * 2), tests_total=2, reward=reward))
    rollouts = [Rollout(task, completion, verdict) for task, completion, verdict in
                zip([task for task in tasks for _ in range(4)], completions, verdicts)]
    grpo = GrpoConfig(group_size=4)
    batch, stats = score_step(0, rollouts, Grpo(grpo), world_size=2, micro_batch_size=8)
    kept = [(micro["advantages"][row].item(), int(micro["completion_mask"][row].sum()))
            for rank in (0, 1) for micro in batch[rank].micro_batches for row in range(micro["advantages"].shape[0])]
    assert len(kept) == 7  # group b (all equal) and c's truncated sample are gone
    std_a = (4 * 0.25 / 3) ** 0.5  # unbiased std of [1, 0, 1, 0]
    assert sorted(round(a, 4) for a, _ in kept)[:2] == [round(-0.5 / (std_a + 1e-4), 4)] * 2
    assert batch[0].num_items == batch[1].num_items == sum(tokens for _, tokens in kept)
    assert stats["zero_variance_groups"] == pytest.approx(1 / 3)
    assert stats["pass_rate"] == pytest.approx(7 / 12) and stats["samples_trained"] == 7
    assert stats["truncated_fraction"] == pytest.approx(1 / 12)
    seq_mean, _ = score_step(0, rollouts, Grpo(grpo.model_copy(update={"aggregation": "seq-mean-token-sum"})),
                             world_size=1, micro_batch_size=8)
    assert seq_mean[0].num_items == 7
    with pytest.raises(ValueError, match="not groups of 4"):
        score_step(0, rollouts[:-1], Grpo(grpo), world_size=1, micro_batch_size=8)


def test_tokens_older_than_the_lag_are_masked_out_of_the_loss_and_their_samples_kept():
    """Step 3 with max_policy_lag 2: a token sampled by version 0 is 3 steps stale, one by version 1
    is 2 (inside the bound). Per token, whatever the sample's own version says."""
    task = Task(task_id="a", family="t", harness="program", prompt="a", tests="")
    versions = {0: [0, 0, 1, 3], 1: [], 2: [0, 0], 3: [2, 3, 3]}  # sample 1: all its completion's version (3)
    rollouts = []
    for index, per_token in versions.items():
        tokens = len(per_token) or 3
        completion = RolloutCompletion(task_id="a", sample_idx=index, text="x", token_ids=[5] * tokens,
                                       logprobs=[-1.0] * tokens, prompt_token_ids=[1, 2], policy_version=3,
                                       token_policy_versions=per_token)
        reward = float(index % 2)
        rollouts.append(Rollout(task, completion, Verdict(task_id="a", sample_idx=index, status="failed",
                                                          tests_passed=0, tests_total=1, reward=reward)))
    grpo = Grpo(GrpoConfig(group_size=4, filter_zero_variance=False))
    batch, stats = score_step(3, rollouts, grpo, world_size=1, micro_batch_size=8, max_policy_lag=2)
    [micro] = batch[0].micro_batches
    rows = [micro["completion_mask"][row].tolist() for row in range(micro["completion_mask"].shape[0])]
    assert stats["stale_tokens"] == 4  # sample 0's first two, all of sample 2's
    assert stats["samples_trained"] == 3  # sample 2 has no token left to train; the others stay whole or in part
    assert [0.0, 0.0, 1.0, 1.0] in rows  # sample 0: its fresh tokens only
    assert batch[0].num_items == 2 + 3 + 3  # tokens trained: 2 of sample 0, samples 1 and 3 whole
    # Advantages are the whole group's: sample 2 (reward 0) still counts in its group's statistics,
    # so the three trained samples keep the advantages they have without the bound.
    whole, unbounded = score_step(3, rollouts, grpo, world_size=1, micro_batch_size=8)
    assert unbounded["stale_tokens"] == 0 and unbounded["samples_trained"] == 4
    assert sorted(micro["advantages"].tolist()) == sorted(whole[0].micro_batches[0]["advantages"].tolist())[1:]


def test_lora_weights_are_published_merged_and_the_reference_is_the_base(tiny):
    config = LearnerConfig(lora=LoraConfig(enabled=True, r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    model, reference = load_policy(config, tiny, with_reference=True)
    assert reference is None  # the base with adapters off is the reference
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    published = hf_state_dict(model, lora=True)
    assert set(published) == set(merged)
    for name, tensor in merged.items():
        assert torch.allclose(published[name], tensor, atol=1e-6), name
    base, _ = load_policy(LearnerConfig(), tiny, with_reference=False)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), reference_context(model, None, lora=True) as ref:
        assert torch.allclose(ref(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-5)
    assert not torch.allclose(model(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-3)


def deepspeed_engine(tiny, micro_batch_size):
    import deepspeed

    from actors.learner.train_loop import deepspeed_config

    config = LearnerConfig(lr=1e-3, micro_batch_size=micro_batch_size, zero_stage=2)
    torch.manual_seed(0)
    model, reference = load_policy(config, tiny, with_reference=True)
    skip_inference_comm_build()
    engine, *_ = deepspeed.initialize(model=model, model_parameters=list(model.parameters()),
                                      config=deepspeed_config(config, bf16=False), dist_init_required=False)
    return engine, reference


@pytest.mark.slow
def test_one_deepspeed_step_lowers_the_loss_and_micro_batches_add_up(tiny, process_group, tmp_path):
    from actors.learner.train_loop import learn

    grpo = Grpo(GrpoConfig(group_size=2, old_logprobs="rollout", importance_cap=None, beta=0.01))
    engine, reference = deepspeed_engine(tiny, micro_batch_size=2)
    samples = samples_for(engine.module)
    num_items = float(sum(len(s.completion_ids) for s in samples))

    def fixed_batch_loss(module):
        batch = collate_samples(samples)
        with torch.no_grad():
            logprobs, _ = token_logprobs(module, batch)
            ref_logprobs, _ = token_logprobs(reference, batch)
        return grpo.batch_loss(batch, logprobs, ref_logprobs, num_items)[0].item()

    before = fixed_batch_loss(engine.module)
    split = RankBatch(step=0, micro_batches=[collate_samples(m) for m in shard(samples, 1, 2)[0]], num_items=num_items, samples=4)
    assert len(split.micro_batches) == 2
    totals, _ = learn(engine, split, grpo, reference, lora=False, world=1)
    after = fixed_batch_loss(engine.module)
    assert after < before - 1e-4, (before, after)
    assert totals["loss"] == pytest.approx(before, abs=1e-5)  # the micro-batch losses sum to the batch's

    # Accumulating two micro-batches must give the gradient of the whole batch in one pass
    # (compared by its norm: Adam's first step is nearly sign(g), so weights would hide a 2x error).
    whole, whole_reference = deepspeed_engine(tiny, micro_batch_size=4)
    learn(whole, RankBatch(step=0, micro_batches=[collate_samples(samples)], num_items=num_items, samples=4), grpo,
          whole_reference, lora=False, world=1)
    split_norm, whole_norm = float(engine.get_global_grad_norm()), float(whole.get_global_grad_norm())
    assert split_norm > 0 and split_norm == pytest.approx(whole_norm, rel=1e-4)

    nothing = RankBatch(step=0, micro_batches=[collate_samples([])], num_items=0.0, samples=0)
    frozen = {name: p.detach().clone() for name, p in engine.module.named_parameters()}
    learn(engine, nothing, grpo, reference, lora=False, world=1)
    assert all(torch.equal(frozen[name], p) for name, p in engine.module.named_parameters())

    checkpoint.save(engine, tmp_path, {"step": 1, "policy_version": 1}, rank=0)
    restored, _ = deepspeed_engine(tiny, micro_batch_size=2)
    assert checkpoint.load(restored, tmp_path, rank=0)["step"] == 1
    for (name, saved), loaded in zip(engine.module.named_parameters(), restored.module.parameters()):
        assert torch.equal(saved, loaded), name
    assert checkpoint.latest(tmp_path) == tmp_path


@pytest.mark.slow
def test_updates_per_batch_take_mu_steps_against_the_policy_before_the_first(tiny, process_group):
    """GRPO's mu: mu optimizer steps on one batch, each ratio taken against the logprobs the policy
    had before the batch's first step, so a batch teaches more than one step does."""
    from actors.learner.train_loop import learn

    def run(updates):
        grpo = Grpo(GrpoConfig(group_size=2, beta=0.0, importance_cap=None, updates_per_batch=updates))
        engine, _ = deepspeed_engine(tiny, micro_batch_size=2)
        samples = samples_for(engine.module)
        batch = RankBatch(step=0, micro_batches=[collate_samples(m) for m in shard(samples, 1, 2)[0]],
                          num_items=float(sum(len(s.completion_ids) for s in samples)), samples=4)
        with torch.no_grad():
            before = [token_logprobs(engine.module, micro)[0] for micro in batch.micro_batches]
        totals, _ = learn(engine, batch, grpo, None, lora=False, world=1)
        with torch.no_grad():
            after = [token_logprobs(engine.module, micro)[0] for micro in batch.micro_batches]
        gain = sum(float(((a - b) * m["completion_mask"] * m["advantages"][:, None]).sum())
                   for a, b, m in zip(after, before, batch.micro_batches))
        return engine, batch, before, totals, gain

    engine, batch, before, totals, gain_three = run(3)
    assert engine.global_steps == 3
    for micro, logprobs in zip(batch.micro_batches, before):
        assert torch.allclose(micro["logprobs_before_update"], logprobs, atol=1e-6)
    assert totals["loss"] != 0.0  # the first step's loss is what the step reports
    one, one_batch, _, _, gain_one = run(1)
    assert one.global_steps == 1 and "logprobs_before_update" not in one_batch.micro_batches[0]
    # Advantage-weighted logprob change: positive samples up, negative down, more after 3 steps.
    assert gain_one > 0 and gain_three > gain_one * 1.2, (gain_one, gain_three)


def test_the_final_lora_policy_saves_as_a_plain_merged_model_and_as_the_adapter_alone(tiny, tmp_path):
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM

    from actors.learner.train_loop import _save_hf

    config = LearnerConfig(lora=LoraConfig(enabled=True, r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    model, _ = load_policy(config, tiny, with_reference=True)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    _save_hf(SimpleNamespace(module=model), config, str(tmp_path), rank=0)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / checkpoint.HF_MODEL)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(saved(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
    from peft import PeftModel

    adapter_files = sorted(path.name for path in (tmp_path / checkpoint.HF_ADAPTER).iterdir())
    assert "adapter_config.json" in adapter_files and "config.json" not in adapter_files  # the adapter alone
    over_base = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), tmp_path / checkpoint.HF_ADAPTER)
    with torch.no_grad():
        assert torch.allclose(over_base(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["zero3", "lora"])
def test_zero3_and_lora_learners_step_and_publish_full_weights(tiny, process_group, variant):
    """ZeRO-3 (sharded parameters, a sharded reference, gathered publishing) and LoRA (adapters
    only train; the base is the reference; weights publish merged) through the same loop."""
    import deepspeed

    from actors.learner.train_loop import _published_weights, deepspeed_config, learn, prepare_reference

    grpo = Grpo(GrpoConfig(group_size=2, old_logprobs="rollout", importance_cap=None, beta=0.01))
    lora = LoraConfig(enabled=variant == "lora", r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    config = LearnerConfig(lr=1e-2, micro_batch_size=2, zero_stage=3 if variant == "zero3" else 2, lora=lora)
    model, reference = load_policy(config, tiny, with_reference=True)
    before = {name: tensor.clone() for name, tensor in hf_state_dict(model, lora.enabled).items()}
    samples = samples_for(model)
    ds_config = deepspeed_config(config, bf16=False)
    skip_inference_comm_build()
    engine, *_ = deepspeed.initialize(model=model, model_parameters=[p for p in model.parameters() if p.requires_grad],
                                      config=ds_config, dist_init_required=False)
    reference = prepare_reference(reference, config, ds_config, engine.device)
    batch = RankBatch(step=0, micro_batches=[collate_samples(m) for m in shard(samples, 1, 2)[0]],
                      num_items=float(sum(len(s.completion_ids) for s in samples)), samples=4)
    _, sums = learn(engine, batch, grpo, reference, lora=lora.enabled, world=1)
    assert sums["tokens"] == batch.num_items
    after = _published_weights(engine, config, rank=0)
    assert set(after) == set(before)
    assert all(after[name].shape == before[name].shape for name in before)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    if lora.enabled:  # only the adapted projections move, merged into their base weights
        assert changed and all(name.endswith(("q_proj.weight", "v_proj.weight")) for name in changed)
    else:
        assert len(changed) > len(before) // 2


class FakeGroup:
    """A rollout group that answers every prompt with G one-token samples: 'pass' or 'fail'."""

    def __init__(self):
        self.policy_version, self.calls, self.versions = 0, [], []

    def stream(self, prompts, sampling):
        self.calls.append(self.policy_version)
        for index, prompt in enumerate(prompts):
            yield index, [RolloutCompletion(task_id=prompt.task_id, sample_idx=i, text="pass" if i % 2 else "fail",
                                            token_ids=[7, 8], logprobs=[-0.5, -0.5], policy_version=self.policy_version,
                                            prompt_token_ids=[1, 2, 3]) for i in range(sampling.n)]

    def update_weights(self, version, weights, rewind=False):
        assert rewind or version >= self.policy_version
        self.policy_version = version
        self.versions.append(version)

    def close(self):
        pass


class FakePool:
    async def pairs(self, jobs):
        async for job in jobs:
            passed = job.text == "pass"
            yield job, Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx,
                               status="passed" if passed else "failed", tests_passed=int(passed), tests_total=1,
                               reward=float(passed))

    def close(self):
        pass


def fake_producer(lag):
    from actors.learner.producer import ExperienceProducer
    from actors.rollout.config import RolloutConfig, SamplingConfig
    from actors.verify.config import VerifierConfig
    from actors.verify.pool.config import PoolConfig

    tasks = [Task(task_id=str(i), family="t", harness="program", prompt=f"p{i}", tests="") for i in range(3)]
    return ExperienceProducer(tasks, ProducerConfig(prompts_per_step=2, max_policy_lag=lag, batch_timeout_s=120),
                              GrpoConfig(group_size=4), RolloutConfig(), SamplingConfig(seed=0), VerifierConfig(),
                              PoolConfig(), world_size=2, micro_batch_size=4, group=FakeGroup(), verifier_pool=FakePool())


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_the_producer_runs_at_most_max_policy_lag_steps_ahead(lag):
    producer = fake_producer(lag)
    try:
        producer.start(0, 4)
        first = producer.get_batch(0, rank=0), producer.get_batch(0, rank=1)
        assert all(batch.step == 0 and batch.num_items == 16 for batch in first)  # 2 tasks x 4 samples x 2 tokens
        if lag:  # steps 1 .. lag are sampled before step 0's weights exist
            with producer.cond:
                assert producer.cond.wait_for(lambda: set(range(1, lag + 1)) <= set(producer.batches), timeout=120)
            assert producer.group.calls[:lag + 1] == [0] * (lag + 1)
        # lag 0: step 1 waits for them; the weights that sampled it (group.calls, below) say so.
        producer.publish(1, object())
        producer.finish_step(0, {"loss": 0.5})
        batch = producer.get_batch(1, rank=1)
        assert batch.step == 1
        assert producer.group.calls[:2] == [0, 0 if lag else 1]  # which weights sampled steps 0 and 1
        [(step, metrics)] = producer.drain_metrics()
        assert step == 0 and metrics["loss"] == 0.5 and metrics["pass_rate"] == 0.5
        assert metrics["policy_lag"] == 0
        # A restarted learner restores step 1 with its weights: production starts again from there.
        producer.publish(1, object())
        producer.start(1, 6)
        assert producer.get_batch(1, rank=0).step == 1
        assert producer.get_batch(1 + lag, rank=1).step == 1 + lag  # needs weights 1: there
        producer.config = producer.config.model_copy(update={"batch_timeout_s": 1.0})  # what never comes
        with pytest.raises(TimeoutError):
            producer.get_batch(2 + lag, rank=0)  # needs weights 2: never published
    finally:
        producer.close()
