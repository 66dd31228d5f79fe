"""The evaluation run without Ray: a scripted rollout group and verifier pool. Verification starts
while generation goes on, benchmarks with colliding task ids stay apart (under their own ids), chat answers to QHE-style
prompts run after the prompt, too-long prompts become empty samples, and the numbers add up."""

import asyncio
import time

import pytest

from actors.contracts import Task, Verdict
from actors.rollout.config import RolloutConfig
from actors.rollout.engine import RolloutCompletion
from pipelines.evaluation.benchmarks import BenchmarkConfig, EvalPlan, SampledConfig, resolve_prompt_mode
from pipelines.evaluation.runner import EvalSet, evaluate, evaluate_policy


@pytest.fixture(scope="module")
def tokenizer():
    from actors.rollout.testing import build_tokenizer

    return build_tokenizer()


class ScriptedGroup:
    """Answers each prompt with ``answer(prompt id, sample_idx)``, one prompt per shard, slowly. The
    sample-and-verify stream names prompts ``{request}:{task id}`` (later turns ``...#turn{t}#{sample}``)."""

    def __init__(self, answer, delay_s=0.05, max_model_len=None):
        self.config = RolloutConfig(model="scripted", max_model_len=max_model_len, prompt_format="completion")
        self.answer, self.delay_s = answer, delay_s
        self.prompts, self.samplings, self.finished_at = [], [], None

    def stream(self, prompts, sampling):
        for index, prompt in enumerate(prompts):
            time.sleep(self.delay_s)
            self.prompts.append(prompt)
            self.samplings.append(sampling)
            yield index, [RolloutCompletion(task_id=prompt.task_id, sample_idx=i, text=self.answer(prompt.task_id, i),
                                            token_ids=[1, 2, 3], policy_version=7)
                          for i in range(sampling.n)]
        self.finished_at = time.monotonic()


class ScriptedPool:
    """Passes a job when its code contains PASS; records what it was given and when."""

    def __init__(self):
        self.jobs, self.arrivals = [], []

    async def pairs(self, jobs):
        async for job in jobs:
            self.jobs.append(job)
            self.arrivals.append(time.monotonic())
            await asyncio.sleep(0)
            passed = job.code is not None and "PASS" in job.code
            status = "passed" if passed else "error" if job.code is None else "failed"
            yield job, Verdict(task_id=job.task.task_id, sample_idx=job.sample_idx, status=status,
                               tests_passed=int(passed), tests_total=1, reward=float(passed), isolation="split",
                               stderr_tail={"passed": "", "error": "reason: no code", "failed": "AssertionError"}[status])


def program_task(task_id, difficulty="basic", prompt="Write x."):
    return Task(task_id=task_id, family="synthetic", harness="program", prompt=prompt, tests="",
                reference_solution="x = 1  # PASS", difficulty=difficulty, area="circuits")


def qhe_task(task_id, harness="qhe"):
    return Task(task_id=task_id, family=harness, harness=harness, entry_point="f",
                prompt="def f():\n    \"\"\"Return 1.\"\"\"" if harness == "qhe" else "Write f.", tests="",
                reference_solution="    return 1  # PASS")


def test_verification_overlaps_generation_and_scores_per_task(tokenizer):
    tasks = [program_task(f"t{i}", difficulty="basic" if i < 2 else "difficult") for i in range(4)]

    def answer(task_id, index):  # t0 always passes, t1 on sample 1 and greedy, t2 never, t3 on sample 0
        name = task_id.split(":", 1)[1]
        ok = {"t0": True, "t1": index == 1, "t2": False, "t3": index == 0}[name]
        return f"```python\nx = 1{'  # PASS' if ok else ''}\n```"

    group, pool = ScriptedGroup(answer), ScriptedPool()
    plan = EvalPlan(greedy=True, sampled=SampledConfig(n=3, k=[1, 3], seed=5), shard_prompts=1)
    result = evaluate(pool, [EvalSet("synth", tasks)], plan, group=group, tokenizer=tokenizer)
    assert pool.arrivals[0] < group.finished_at, "the first sample was verified only after generation ended"
    assert result.timing["generate_s"] > 0 and result.timing["verify_tail_s"] >= 0
    assert [s.temperature for s in group.samplings[:4]] == [0.0] * 4 and group.samplings[-1].n == 3
    assert group.samplings[-1].seed == 5 and group.samplings[-1].top_p == 1.0
    metrics = result.metrics["synth"]
    # sampled: t0 3/3, t1 1/3, t2 0/3, t3 1/3
    assert metrics["pass_at_k"]["1"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 3) / 4)
    assert metrics["pass_at_k"]["3"] == pytest.approx(3 / 4)
    assert metrics["greedy_pass_at_1"] == pytest.approx(2 / 4)  # greedy is sample 0: t0, t3
    assert metrics["by_difficulty"]["basic"]["pass_at_k"]["1"] == pytest.approx((1 + 1 / 3) / 2)
    assert len(result.rows) == 4 * (1 + 3)
    assert {row["policy_version"] for row in result.rows} == {7}
    assert [row["mode"] for row in result.rows[:4]] == ["greedy"] * 4  # greedy first, in task order
    assert {(row["task_id"], row["sample_idx"]) for row in result.rows if row["mode"] == "sampled"} == \
        {(f"t{i}", j) for i in range(4) for j in range(3)}


def test_benchmarks_with_the_same_task_ids_stay_apart_and_chat_answers_follow_the_prompt(tokenizer):
    """QHE and QHE-hard share task ids: the pool sees each under its own id, and each verdict comes
    back to its own benchmark. A chat answer to a QHE prompt (the whole function in a code block)
    starts on a new line after it."""
    sets = [EvalSet("qhe", [qhe_task("qiskitHumanEval/0")], BenchmarkConfig(prompt_mode="chat")),
            EvalSet("qhe_hard", [qhe_task("qiskitHumanEval/0", "qhe_hard")], BenchmarkConfig(prompt_mode="chat"))]
    group = ScriptedGroup(lambda task_id, index: "```python\ndef f():\n    return 1  # PASS\n```")
    pool = ScriptedPool()
    result = evaluate(pool, sets, EvalPlan(), group=group, tokenizer=tokenizer)
    assert sorted((job.task.task_id, job.task.harness) for job in pool.jobs) == [("qiskitHumanEval/0", "qhe"),
                                                                                  ("qiskitHumanEval/0", "qhe_hard")]
    codes = {job.task.harness: job.code for job in pool.jobs}
    assert codes["qhe"].startswith("\ndef f():") and codes["qhe_hard"].startswith("def f():")
    assert all(prompt.messages for prompt in group.prompts)  # chat mode: messages through the template
    qhe_message = group.prompts[0].messages[-1]["content"]
    assert "def f():" in qhe_message and "```python" in qhe_message
    assert group.prompts[1].messages[-1]["content"] == "Write f."  # whole-program: the prompt as it is
    assert set(result.metrics) == {"qhe", "qhe_hard"} and all(m["greedy_pass_at_1"] == 1.0 for m in result.metrics.values())
    assert {row["task_id"] for row in result.rows} == {"qiskitHumanEval/0"}
    assert sorted((row["benchmark"], row["family"]) for row in result.rows) == [("qhe", "qhe"), ("qhe_hard", "qhe_hard")]


def test_completion_mode_continues_the_prompt_and_stops_at_top_level_code(tokenizer):
    group = ScriptedGroup(lambda task_id, index: "\n    return 1  # PASS\n")
    result = evaluate(ScriptedPool(), [EvalSet("qhe", [qhe_task("q/1")], BenchmarkConfig(prompt_mode="completion"))],
                      EvalPlan(), group=group, tokenizer=tokenizer)
    assert group.prompts[0].text == qhe_task("q/1").prompt
    assert "\ndef " in group.samplings[0].stop
    assert result.metrics["qhe"]["greedy_pass_at_1"] == 1.0


def test_prompts_too_long_for_the_model_become_empty_samples(tokenizer):
    long = program_task("long", prompt="qc.h(0) " * 400)
    group = ScriptedGroup(lambda task_id, index: "x = 1  # PASS", max_model_len=128)
    result = evaluate(ScriptedPool(), [EvalSet("s", [program_task("short"), long])], EvalPlan(), group=group,
                      tokenizer=tokenizer)
    assert [prompt.task_id.split(":", 1)[1] for prompt in group.prompts] == ["short"]
    rows = {row["task_id"]: row for row in result.rows}
    assert rows["long"]["finish_reason"] == "prompt_too_long" and rows["long"]["failure"] == "no_code"
    assert result.metrics["s"]["greedy_pass_at_1"] == 0.5


def test_canonical_and_completions_runs():
    from actors.contracts import Completion

    tasks = [program_task("a"), program_task("b")]
    pool = ScriptedPool()
    canonical = evaluate(pool, [EvalSet("s", tasks)], canonical=True)
    assert canonical.metrics["s"]["pass_at_k"] == {"1": 1.0} and canonical.metrics["s"]["greedy_pass_at_1"] is None
    assert "generate_s" not in canonical.timing
    completions = {"s": [Completion("a", 0, "x = 1  # PASS"), Completion("a", 1, "x = 2"),
                         Completion("b", 0, "x = 2"), Completion("b", 1, "x = 2")]}
    result = evaluate(ScriptedPool(), [EvalSet("s", tasks)], completions=completions, ks=[1, 2])
    assert result.metrics["s"]["pass_at_k"] == {"1": pytest.approx(0.25), "2": pytest.approx(0.5)}


def test_hook_returns_flat_metrics_for_the_sinks(tokenizer):
    sets = [EvalSet("heldout", [program_task("a"), program_task("b", difficulty="difficult")])]
    group = ScriptedGroup(lambda task_id, index: "x = 1  # PASS" if task_id.endswith(":a") else "x = 2")
    flat, result = evaluate_policy(group, ScriptedPool(), sets, EvalPlan(), tokenizer=tokenizer)
    assert len(result.rows) == 2
    assert flat["eval/pass@1"] == 0.5 and flat["eval/greedy_pass@1"] == 0.5
    assert flat["eval/pass@1/basic"] == 1.0 and flat["eval/pass@1/difficult"] == 0.0
    assert "eval/verify_tail_s" in flat


def test_prompt_modes():
    assert resolve_prompt_mode("auto", continues_prompt=True, has_chat_template=False) == "completion"
    assert resolve_prompt_mode("auto", continues_prompt=True, has_chat_template=True) == "chat"
    assert resolve_prompt_mode("auto", continues_prompt=False, has_chat_template=True) == "chat"
    with pytest.raises(ValueError, match="whole-program"):
        resolve_prompt_mode("completion", continues_prompt=False, has_chat_template=True)
    with pytest.raises(ValueError, match="no chat template"):
        resolve_prompt_mode("chat", continues_prompt=True, has_chat_template=False)


def test_turns_report_pass_at_1_after_each_turn(tokenizer):
    """t0 passes at once, t1 only after the verifier's feedback, t2 never (max_turns 2)."""
    from actors.rollout.turns import TurnsConfig

    tasks = [program_task(f"t{i}") for i in range(3)]

    def answer(task_id, index):
        name, later = task_id.split(":", 1)[1].split("#")[0], "#turn2#" in task_id
        ok = name == "t0" or (name == "t1" and later)
        return f"```python\nx = 1{'  # PASS' if ok else ''}\n```"

    group, pool = ScriptedGroup(answer, delay_s=0.0), ScriptedPool()
    plan = EvalPlan(greedy=True, sampled=SampledConfig(n=2, k=[1], seed=5), shard_prompts=1,
                    turns=TurnsConfig(max_turns=2))
    result = evaluate(pool, [EvalSet("synth", tasks)], plan, group=group, tokenizer=tokenizer)
    metrics = result.metrics["synth"]
    assert metrics["pass_at_1_by_turn"] == pytest.approx([1 / 3, 2 / 3])
    assert metrics["pass_at_k"]["1"] == pytest.approx(2 / 3)  # the final answers'
    later = [prompt for prompt in group.prompts if prompt.token_ids is not None]
    assert sorted(prompt.task_id.split(":", 1)[1] for prompt in later) == sorted(
        [f"t{t}#turn2#{i}" for t in (1, 2) for i in (0, 0, 1)])  # greedy's one, sampled's two; t0 stopped
    assert all("Verifier: failed" in tokenizer.decode(prompt.token_ids) for prompt in later)
    rows = {(row["mode"], row["task_id"], row["sample_idx"]): row for row in result.rows}
    assert rows[("sampled", "t1", 1)]["status_by_turn"] == ["failed", "passed"]
    assert rows[("sampled", "t0", 0)]["status_by_turn"] == ["passed"]
    assert len(result.rows) == 3 * 3
    single = evaluate(ScriptedPool(), [EvalSet("synth", tasks)], plan.model_copy(update={"turns": TurnsConfig()}),
                      group=ScriptedGroup(answer, delay_s=0.0), tokenizer=tokenizer)
    assert single.metrics["synth"]["pass_at_1_by_turn"] == pytest.approx([1 / 3])
