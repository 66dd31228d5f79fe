"""Evaluation inside training: the producer runs the held-out evaluation before each due step, on
the policy after that many optimizer steps, and its metrics join that step's; the final policy is
evaluated on request. Scripted rollout group and pool: no Ray, no model."""

import asyncio
import sys
import time

import pytest

from actors.contracts import Task, Verdict
from actors.learner.algorithms.grpo import GrpoConfig
from actors.learner.producer import ExperienceProducer, ProducerConfig
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.engine import RolloutCompletion
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.evaluation.benchmarks import BenchmarkConfig
from pipelines.evaluation.hook import PolicyEvaluator, TrainingEvalConfig
from pipelines.evaluation.runner import EvalSet
from pipelines.tasks.loader import TaskSourceConfig


class Group:
    """Training prompts get 'pass'/'fail' samples; held-out prompts pass once the policy version
    reaches 2 (the policy 'learns')."""

    def __init__(self):
        self.config = RolloutConfig(model="scripted", max_model_len=512)
        self.policy_version, self.eval_versions = 0, []

    def stream(self, prompts, sampling):
        for index, prompt in enumerate(prompts):
            held_out = prompt.messages is not None  # the evaluation's prompts are chat; training's are text
            if held_out:
                self.eval_versions.append(self.policy_version)
            text = ("x = 1  # PASS" if self.policy_version >= 2 else "x = 2") if held_out else \
                None
            yield index, [RolloutCompletion(task_id=prompt.task_id, sample_idx=i,
                                            text=text if held_out else ("pass" if i % 2 else "fail"),
                                            token_ids=[7, 8], logprobs=[-0.5, -0.5], policy_version=self.policy_version,
                                            prompt_token_ids=[1, 2, 3]) for i in range(sampling.n)]

    def update_weights(self, version, weights, rewind=False):
        self.policy_version = version

    def close(self):
        pass


class Pool:
    async def pairs(self, jobs):
        async for job in jobs:
            if job.text in ("pass", "fail"):  # the producer's training samples
                passed, stderr_tail = job.text == "pass", ""
            else:  # the evaluation's
                passed = "PASS" in (job.code or "")
                stderr_tail = "" if passed else "AssertionError"
            yield job, Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx,
                               status="passed" if passed else "failed", tests_passed=int(passed), tests_total=1,
                               reward=float(passed), stderr_tail=stderr_tail)

    def close(self):
        pass


@pytest.fixture(scope="module")
def tokenizer():
    from actors.rollout.testing import build_tokenizer

    return build_tokenizer()


def evaluator(tokenizer, steps, **settings):
    config = TrainingEvalConfig(benchmarks={"heldout": BenchmarkConfig(tasks=TaskSourceConfig(source="unused"))},
                                **settings)
    tasks = [Task(task_id=f"h{i}", family="synthetic", harness="program", prompt=f"Write h{i}.", tests="",
                  difficulty="basic") for i in range(2)]
    hook = PolicyEvaluator(config, [EvalSet("heldout", tasks, config.benchmarks["heldout"])], steps)
    hook.tokenizer = tokenizer
    return hook


def producer(hook, lag=0):
    tasks = [Task(task_id=str(i), family="t", harness="program", prompt=f"p{i}", tests="") for i in range(3)]
    return ExperienceProducer(tasks, ProducerConfig(prompts_per_step=2, max_policy_lag=lag, batch_timeout_s=120),
                              GrpoConfig(group_size=4), RolloutConfig(), SamplingConfig(seed=0), VerifierConfig(),
                              PoolConfig(), world_size=1, micro_batch_size=8, group=Group(), verifier_pool=Pool(),
                              evaluator=hook)


def test_due_steps():
    config = TrainingEvalConfig(benchmarks={"h": BenchmarkConfig()}, every=2, at_start=True)
    assert [step for step in range(0, 6) if config.due(step, 5)] == [0, 2, 4, 5]
    assert [step for step in range(0, 6) if config.model_copy(update={"every": 0, "at_start": False}).due(step, 5)] == [5]
    assert not TrainingEvalConfig().due(5, 5)  # no benchmarks: off


def waiting_in(thread, function: str) -> bool:
    """Whether ``thread`` is inside ``function`` (its current frame or a caller's)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def wait_until(condition, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("lag", [0, 1])
def test_the_producer_evaluates_the_policy_of_each_due_step(tokenizer, lag):
    hook = evaluator(tokenizer, steps=3, every=2, at_start=True)
    worker = producer(hook, lag)
    try:
        worker.start(0, 3)
        for step in range(3):
            worker.get_batch(step, rank=0)
            if lag == 1 and step == 1:  # the producer ran ahead to step 2's evaluation: it waits there
                wait_until(lambda: waiting_in(worker.thread, "_evaluate"), "the producer waiting to evaluate step 2")
            worker.publish(step + 1, object())
            worker.finish_step(step, {"loss": 0.1})
        async def as_ray_calls_it():  # an actor with async methods runs every method on an event loop
            return await worker.evaluate(3)

        final = asyncio.run(as_ray_calls_it())
        metrics = dict(worker.drain_metrics())
    finally:
        worker.close()
    # Evaluated before steps 0 and 2, each time on the policy after that many optimizer steps (with
    # lag 1 the producer waits for it), then the final policy on request.
    assert worker.group.eval_versions == [0, 0, 2, 2, 3, 3]  # two held-out prompts each time
    assert metrics[0]["eval/pass@1"] == 0.0 and metrics[0]["eval/step"] == 0
    assert "eval/pass@1" not in metrics[1]
    assert metrics[2]["eval/pass@1"] == 1.0 and metrics[2]["eval/greedy_pass@1"] == 1.0
    assert metrics[2]["eval/pass@1/basic"] == 1.0 and metrics[2]["loss"] == 0.1
    assert final["eval/pass@1"] == 1.0 and final["eval/step"] == 3


def test_training_eval_config_in_grpo():
    from pipelines.config import resolve_config
    from pipelines.grpo import Config

    config = resolve_config(Config, "configs/grpo-smoke.yaml", ["eval.benchmarks.heldout.tasks.source=x.jsonl",
                                                                "eval.every=2"])
    assert config.eval.enabled and config.eval.every == 2
    assert not resolve_config(Config, "configs/grpo-smoke.yaml").eval.enabled
