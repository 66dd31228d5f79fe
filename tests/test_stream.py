"""The sample-and-verify stream (actors/rollout/stream.py) with a scripted rollout group and a
scripted pool: no model, no Ray. Each sample comes back with its own verdict (the pool scripts a
verdict per job and hands them back shuffled), a task asked for twice in one call stays two
requests, given jobs come back with their own context, multi-turn trajectories carry each turn's
verdict and seed their later turns per trajectory."""

import asyncio
import random
import threading

import pytest

from actors.contracts import Task, Verdict
from actors.rollout.config import SamplingConfig
from actors.rollout.engine import RolloutCompletion
from actors.rollout.prompts import Prompt
from actors.rollout.stream import Batch, Request, SampleAndVerify
from actors.rollout.turns import TURN_SEED_STRIDE, FeedbackTokens, TurnsConfig

TASKS = {name: Task(task_id=name, family="test", harness="program", prompt=f"Write {name}.", tests="")
         for name in ("a", "b")}


class CharTokenizer:
    """One token per character (FeedbackTokens' plain-text path only tokenizes)."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(char) for char in text]}


class ScriptedGroup:
    """Answers sample i of a prompt with ``{prompt id}|{i}``; one shard per call, like one worker.
    Calls may come from several threads at once (later turns), as to a RolloutGroup."""

    def __init__(self, fail=False):
        self.prompts, self.lock, self.fail = [], threading.Lock(), fail

    def stream(self, prompts, sampling):
        with self.lock:
            self.prompts += prompts
        if self.fail:
            raise RuntimeError("the engine broke")
        shard = []
        for prompt in prompts:
            prompt_ids = prompt.token_ids if prompt.token_ids is not None else [ord(c) for c in prompt.text]
            for index in range(sampling.n):
                text = f"{prompt.task_id}|{index}"
                shard.append(RolloutCompletion(task_id=prompt.task_id, sample_idx=index, text=text,
                                               token_ids=[ord(c) for c in text], logprobs=[-0.5] * len(text),
                                               prompt_token_ids=list(prompt_ids)))
        yield 0, shard


class ShuffledPool:
    """Hands jobs back in a seeded random order, as soon as some are waiting: each verdict's reward
    is scripted by its job (a fresh number per job) and its stderr_tail is the job's text, so a
    verdict that reached the wrong sample shows. ``passes(job)`` sets the status."""

    def __init__(self, passes=lambda job: False, seed=0):
        self.passes, self.random = passes, random.Random(seed)
        self.reward_of: dict[str, float] = {}
        self.order: list[str] = []

    async def pairs(self, jobs):
        waiting, done = [], asyncio.Event()

        async def read():
            try:
                async for job in jobs:
                    waiting.append(job)
            finally:
                done.set()

        reader = asyncio.create_task(read())
        while not (done.is_set() and not waiting):
            await asyncio.sleep(0.002)  # let whatever is coming arrive, then answer in a random order
            if reader.done() and reader.exception() is not None:
                raise reader.exception()
            if waiting:
                job = waiting.pop(self.random.randrange(len(waiting)))
                text = job.text if job.text is not None else job.code
                reward = self.reward_of.setdefault(text, float(len(self.reward_of)))
                self.order.append(text)
                passed = self.passes(job)
                yield job, Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx,
                                   status="passed" if passed else "failed", tests_passed=int(passed), tests_total=1,
                                   reward=reward, stderr_tail=text)


def collect(stream):
    async def run():
        return [item async for item in stream]

    return asyncio.run(run())


def test_each_sample_comes_back_with_its_own_verdict_whatever_the_order():
    n = 4
    group, pool = ScriptedGroup(), ShuffledPool()
    requests = [Request(TASKS[name], Prompt(task_id="ignored", text=TASKS[name].prompt), context=("ctx", position))
                for position, name in enumerate(["a", "b", "a"])]  # task a twice in one call
    stream = SampleAndVerify(group, pool, [Batch(requests, SamplingConfig(n=n, seed=1))])
    items = collect(stream)
    assert len(items) == 3 * n
    submitted = [f"{prompt.task_id}|{index}" for prompt in group.prompts for index in range(n)]
    assert sorted(pool.order) == sorted(submitted) and pool.order != submitted  # verdicts came back out of order
    for item in items:
        assert item.verdict.stderr_tail == item.completion.text  # its own verdict ...
        assert item.verdict.reward == pool.reward_of[item.completion.text]
        assert item.trajectory is None
        # ... for its own sample of its own request, under the task's own id
        assert item.completion.task_id == item.task.task_id == item.verdict.task_id
        assert item.completion.sample_idx == item.sample_idx == item.verdict.sample_idx
        assert item.task is requests[item.context[1]].task
    by_request = {}
    for item in items:
        by_request.setdefault(item.context, []).append(item)
    assert sorted(by_request) == [("ctx", 0), ("ctx", 1), ("ctx", 2)]
    assert all(sorted(item.sample_idx for item in own) == list(range(n)) for own in by_request.values())
    # Task a's two requests reached the group as two prompts and are two groups of samples.
    ids = [prompt.task_id for prompt in group.prompts]
    assert len(ids) == len(set(ids)) == 3 and "ignored" not in ids
    first = {item.completion.text for item in by_request[("ctx", 0)]}
    assert first.isdisjoint(item.completion.text for item in by_request[("ctx", 2)])
    assert set(stream.timing) == {"generate_s", "verify_s", "verify_tail_s"}
    assert stream.timing["verify_s"] >= stream.timing["generate_s"] >= 0


def test_given_jobs_come_back_with_their_own_context_alone_or_with_samples():
    from actors.verify.executor import VerificationJob

    given = [VerificationJob(TASKS["a"], f"x = {index}", 0, context=("given", index)) for index in range(5)]
    pool = ShuffledPool(seed=3)
    alone = SampleAndVerify(None, pool, given=given)
    items = collect(alone)
    assert sorted(item.context for item in items) == [("given", index) for index in range(5)]
    for item in items:
        assert item.verdict.stderr_tail == f"x = {item.context[1]}" and item.completion is None
    assert set(alone.timing) == {"verify_s"}  # nothing was sampled
    assert all(job.context == ("given", index) for index, job in enumerate(given))  # the caller's jobs as they were

    requests = [Request(TASKS["b"], Prompt(task_id="b", text="Write b."), context="sampled")]
    mixed = collect(SampleAndVerify(ScriptedGroup(), ShuffledPool(seed=4), [Batch(requests, SamplingConfig(n=2))],
                                    given=given))
    assert sorted(str(item.context) for item in mixed) == sorted([str(job.context) for job in given] + ["sampled"] * 2)
    assert all(item.verdict.stderr_tail == (item.completion.text if item.completion else f"x = {item.context[1]}")
               for item in mixed)


def test_multi_turn_trajectories_carry_each_turns_verdict_and_seed_later_turns_per_trajectory():
    """Even samples pass on their second answer, odd ones never: 3 turns at most."""
    n, seed = 2, 11
    turns = TurnsConfig(max_turns=3)

    def passes(job):
        return job.sample_idx % 2 == 0 and "#turn2#" in job.text

    group, pool = ScriptedGroup(), ShuffledPool(passes, seed=5)
    feedback = FeedbackTokens(CharTokenizer(), chat=False)
    requests = [Request(TASKS[name], Prompt(task_id=name, text=TASKS[name].prompt), context=position)
                for position, name in enumerate(["a", "a", "b"])]
    stream = SampleAndVerify(group, pool, [Batch(requests, SamplingConfig(n=n, seed=seed), feedback_tokens=feedback)],
                             turns=turns)
    items = collect(stream)
    assert len(items) == 3 * n
    for item in items:
        trajectory = item.trajectory
        assert len(trajectory.turns) == (2 if item.sample_idx % 2 == 0 else 3)
        for number, turn in enumerate(trajectory.turns, 1):
            assert turn.verdict.stderr_tail == turn.text  # each answer its own verdict
            assert ("#turn" in turn.text) == (number > 1)
        assert item.verdict is trajectory.final.verdict
        assert item.completion.loss_mask == trajectory.loss_mask and 0.0 in trajectory.loss_mask
        assert item.completion.token_ids == trajectory.completion_ids
        assert trajectory.index == item.context * n + item.sample_idx
    later = {prompt.task_id: prompt for prompt in group.prompts if prompt.token_ids is not None}
    for item in items:
        for number, turn in enumerate(item.trajectory.turns[1:], 2):
            prompt = later[turn.text.rsplit("|", 1)[0]]  # the prompt this answer continued
            assert prompt.seed == seed + number * TURN_SEED_STRIDE + item.trajectory.index
            before = item.trajectory.turns[number - 2]
            assert prompt.token_ids[-len(before.feedback_ids):] == before.feedback_ids  # token in, token out
    assert len(later) == 3 * (1 + 2)  # per request: one later turn of the even sample, two of the odd one


def test_a_failing_engine_fails_the_stream():
    requests = [Request(TASKS["a"], Prompt(task_id="a", text="Write a."))]
    with pytest.raises(RuntimeError, match="the engine broke"):
        collect(SampleAndVerify(ScriptedGroup(fail=True), ShuffledPool(), [Batch(requests, SamplingConfig(n=2))]))
