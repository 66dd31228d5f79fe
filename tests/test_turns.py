"""Multi-turn rollouts: trajectories built token by token, the loss mask, and what the loss sees.

A real (tiny, random) model samples through the transformers engine; the verifier is a stand-in
whose verdicts are chosen per turn, so which trajectories continue is known in advance.
"""

import asyncio
import threading

import pytest
import torch

from actors.contracts import Task, Verdict
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.prompts import Prompt
from actors.rollout.stream import Batch, Request, SampleAndVerify
from actors.rollout.turns import FeedbackTokens, TurnsConfig, shaped_verdict, turn_stats
from actors.verify.feedback import FeedbackConfig

N = 2


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from actors.rollout.hf_engine import TransformersEngine
    from actors.rollout.testing import save_tiny_model

    path = save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    return TransformersEngine(RolloutConfig(engine="transformers", model=str(path), prompt_format="chat"))


class LocalGroup:
    """A RolloutGroup's ``stream`` over one in-process engine (one call at a time, as an actor)."""

    def __init__(self, engine):
        self.engine, self.lock, self.requests = engine, threading.Lock(), []

    def stream(self, prompts, sampling):
        with self.lock:
            self.requests.append([prompt.task_id for prompt in prompts])
            yield 0, self.engine.generate(prompts, sampling)


class ScriptedPool:
    """Verdicts by (turn, sample): odd samples always fail; even ones pass from turn 2 on."""

    def __init__(self):
        self.keys = []

    async def pairs(self, jobs):
        async for job in jobs:
            sample = job.sample_idx
            turn = sum(key[:2] == (job.task.task_id, sample) for key in self.keys)  # answers before this one
            self.keys.append((job.task.task_id, sample, turn))
            passed = sample % 2 == 0 and turn >= 1
            yield job, Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx, status="passed" if passed else "failed",
                          tests_passed=int(passed), tests_total=1, reward=1.0 if passed else 0.0, isolation="split",
                          stderr_tail='Traceback (most recent call last):\n  File "<solution>", line 1, in <module>\n'
                                      "NameError: name 'qc' is not defined")


TASKS = [Task(task_id=f"t{index}", family="test", harness="program", prompt=f"Write a Bell state circuit {index}.",
              tests="") for index in range(2)]


def rollout(engine, turns, sampling=None):
    """The trajectories in task order, from the sample-and-verify stream."""
    sampling = sampling or SamplingConfig(n=N, max_tokens=10, temperature=1.0, seed=3)
    requests = [Request(task, Prompt(task_id=task.task_id, text=task.prompt), context=position)
                for position, task in enumerate(TASKS)]
    group, pool = LocalGroup(engine), ScriptedPool()
    feedback_tokens = FeedbackTokens(engine.tokenizer, chat=True, role=turns.feedback.role)
    stream = SampleAndVerify(group, pool, [Batch(requests, sampling, feedback_tokens=feedback_tokens)], turns=turns,
                             max_model_len=1024)

    async def collect():
        return [item async for item in stream]

    items = sorted(asyncio.run(collect()), key=lambda item: (item.context, item.sample_idx))
    return [item.trajectory for item in items], group, pool


def test_a_trajectory_is_its_answers_and_feedback_with_the_policys_tokens_masked_in(engine):
    turns = TurnsConfig(max_turns=3, feedback=FeedbackConfig(include=["errors"]))
    trajectories, group, pool = rollout(engine, turns)
    tokenizer = engine.tokenizer
    assert [len(t.turns) for t in trajectories] == [2, 3, 2, 3]  # even samples pass at turn 2 and stop
    assert len(pool.keys) == len(set(pool.keys)) == 10
    for trajectory in trajectories:
        expected_ids, expected_mask, cursor = [], [], 0
        for turn in trajectory.turns:
            expected_ids += turn.token_ids
            expected_mask += [1.0] * len(turn.token_ids)
            cursor += len(turn.token_ids)
            if turn is not trajectory.final:
                end = cursor + trajectory.loss_mask[cursor:].index(1.0) if 1.0 in trajectory.loss_mask[cursor:] else None
                feedback_ids = trajectory.completion_ids[cursor:end]
                text = tokenizer.decode(feedback_ids, skip_special_tokens=False)
                ended = turn.token_ids[-1:] == [tokenizer.eos_token_id]  # else the template's end of turn is added
                assert text.startswith("\n<|im_start|>tool\n" if ended else "<|im_end|>\n<|im_start|>tool\n")
                assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
                assert turn.feedback in text and "NameError: name 'qc' is not defined" in turn.feedback
                expected_ids += feedback_ids
                expected_mask += [0.0] * len(feedback_ids)
                cursor += len(feedback_ids)
        assert trajectory.completion_ids == expected_ids
        assert trajectory.loss_mask == expected_mask  # token by token: 1 on answers, 0 on feedback
        assert len(trajectory.logprobs) == len(trajectory.completion_ids)
        assert all(lp == 0.0 for lp, m in zip(trajectory.logprobs, trajectory.loss_mask) if m == 0.0)
    # Later turns continue each trajectory's own prefix: its prompt and everything before, unchanged.
    assert all(t.prompt_ids == trajectories[0].prompt_ids for t in trajectories[:N])
    assert any(any("#turn2#" in prompt_id for prompt_id in request) for request in group.requests[1:])


def test_the_engines_logprobs_are_the_learners_on_the_policys_tokens(engine):
    from actors.learner.policy import token_logprobs
    from actors.learner.samples import TrainSample, collate_samples

    trajectories, _, _ = rollout(engine, TurnsConfig(max_turns=2, stop_on_pass=False))
    samples = [TrainSample(t.prompt_ids, t.completion_ids, t.logprobs, 0.0, loss_mask=t.loss_mask) for t in trajectories]
    batch = collate_samples(samples, pad_id=engine.tokenizer.pad_token_id)
    with torch.no_grad():
        learner, _ = token_logprobs(engine.model, batch)
    mask = batch["completion_mask"]
    for row, trajectory in enumerate(trajectories):
        assert mask[row, : len(trajectory.loss_mask)].tolist() == trajectory.loss_mask
    policy = mask.bool()
    assert policy.sum() < sum(len(t.completion_ids) for t in trajectories)  # feedback tokens are out
    gap = (learner - batch["rollout_logprobs"]).abs()[policy]
    assert gap.max() < 1e-3, gap.max()


def test_forced_turns_and_seeded_later_turns_repeat(engine):
    turns = TurnsConfig(max_turns=2, stop_on_pass=False)
    first, _, _ = rollout(engine, turns)
    again, _, _ = rollout(engine, turns)
    assert all(len(t.turns) == 2 for t in first)  # the forced tool turn, passed or not
    assert [t.completion_ids for t in first] == [t.completion_ids for t in again]
    stats = turn_stats(first, 2)
    assert stats == {"turns_mean": 2.0, "pass_rate/turn1": 0.0, "pass_rate/turn2": 0.5}


def test_the_reward_is_the_final_answers_shaped_by_the_turns_taken(engine):
    turns = TurnsConfig(max_turns=3, turn_discount=0.5, turn_penalty=0.1)
    trajectories, _, _ = rollout(engine, turns)
    verdicts = [shaped_verdict(trajectory, turns) for trajectory in trajectories]
    assert [(v.task_id, v.sample_idx) for v in verdicts] == [(t.task_id, i) for t in TASKS for i in range(N)]
    # even samples pass at turn 2: 1.0 * 0.5 - 0.1; odd ones fail all 3 turns: 0 * 0.25 - 0.2
    assert [round(v.reward, 6) for v in verdicts] == [0.4, -0.2, 0.4, -0.2]


def test_the_loss_and_its_metrics_ignore_feedback_tokens():
    """A hand-built 2-turn trajectory: answer [1 1], feedback [0 0 0], answer [1]."""
    from actors.learner.algorithms.grpo import GrpoConfig, grpo_loss
    from actors.learner.samples import TrainSample, collate_samples

    config = GrpoConfig(group_size=2, beta=0.0, importance_cap=2.0, aggregation="token-mean")
    mask = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    rollout_logprobs = [-1.0, -2.0, 0.0, 0.0, 0.0, -1.5]
    samples = [TrainSample([7, 8], [11, 12, 20, 21, 22, 13], rollout_logprobs, advantage=1.0, loss_mask=mask),
               TrainSample([7, 8], [14, 15], [-0.5, -0.5], advantage=-1.0)]
    batch = collate_samples(samples)
    assert batch["completion_mask"].tolist() == [mask, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]]
    learner = torch.tensor([[-1.1, -1.9, -40.0, -40.0, -40.0, -1.5], [-0.5, -0.7, 0.0, 0.0, 0.0, 0.0]],
                           requires_grad=True)
    loss, metrics = grpo_loss(learner, learner.detach(), batch["advantages"], batch["completion_mask"], config,
                              rollout_logprobs=batch["rollout_logprobs"])
    loss.backward()
    weights = [min(2.0, float(torch.exp(torch.tensor(o - r)))) for o, r in
               [(-1.1, -1.0), (-1.9, -2.0), (-1.5, -1.5), (-0.5, -0.5), (-0.7, -0.5)]]
    expected = -(weights[0] + weights[1] + weights[2] - weights[3] - weights[4]) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["tokens"].item() == 5
    assert metrics["logprob_gap"].item() == pytest.approx((0.1 + 0.1 + 0.0 + 0.0 + 0.2) / 5, rel=1e-5)
    assert learner.grad[0, 2:5].abs().sum() == 0  # no gradient through the feedback's tokens
    assert learner.grad[0, [0, 1, 5]].abs().min() > 0


def test_score_step_counts_only_the_policys_tokens():
    from actors.learner.algorithms.grpo import Grpo, GrpoConfig
    from actors.learner.samples import Rollout
    from actors.learner.scoring import score_step
    from actors.rollout.engine import RolloutCompletion

    task = Task(task_id="t", family="test", harness="program", prompt="p", tests="")
    completions = [RolloutCompletion(task_id="t", sample_idx=0, text="a", token_ids=[1, 2, 3, 4], logprobs=[-1.0] * 4,
                                     prompt_token_ids=[9], loss_mask=[1.0, 0.0, 0.0, 1.0]),
                   RolloutCompletion(task_id="t", sample_idx=1, text="b", token_ids=[5, 6], logprobs=[-1.0] * 2,
                                     prompt_token_ids=[9])]
    verdicts = [Verdict(task_id="t", sample_idx=index, status=status, tests_passed=0, tests_total=1, reward=reward)
                for index, (status, reward) in enumerate([("passed", 1.0), ("failed", 0.0)])]
    rollouts = [Rollout(task, completion, verdict) for completion, verdict in zip(completions, verdicts)]
    batch, stats = score_step(0, rollouts, Grpo(GrpoConfig(group_size=2)), 1, 4)
    assert batch[0].num_items == 4.0  # 2 policy tokens + 2, the 2 feedback tokens not counted
    assert batch[0].micro_batches[0]["completion_mask"].tolist() == [[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
    assert stats["generated_tokens"] == 4.0
