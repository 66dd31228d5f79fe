"""Code extraction from model output, and the reward registry."""

import pytest

from actors.verify.extract import extract_code
from actors.verify.rewards.config import RewardConfig, score
from actors.verify.rewards.registry import REWARDS, RewardInput, reward
from pipelines.config import ConfigError, resolve_config
from pipelines.jobs import job_module


@pytest.mark.parametrize("text,harness,expected", [
    ("```python\nx = 1\n```", "unittest", "x = 1\n"),
    ("Here:\n```py\nx = 1\n```\nand\n```python\ny = 2\n```", "unittest", "x = 1\n"),
    ("```\nx = 1\n```", "program", "x = 1\n"),
    ("```bash\nls\n```\n```python\nx = 2\n```", "program", "x = 2\n"),
    ("<think>```python\nwrong = 1\n```</think>```python\nright = 1\n```", "unittest", "right = 1\n"),
    ("<think>unclosed reasoning ```python\nwrong = 1\n```", "unittest", None),
    ("<think>plan</think><answer>```python\nx = 3\n```</answer>", "unittest", "x = 3\n"),
    ("<answer>\nx = 4\n</answer>", "program", "\nx = 4\n"),
    ("x = 5\n", "program", "x = 5\n"),
    ("I am not sure how to do this.", "program", None),
    ("", "unittest", None),
    ("```python\n\n```", "unittest", None),
    ("    return 42\n", "qhe", "    return 42\n"),
    ("```python\ndef f():\n    return 1\n```", "qhe", "def f():\n    return 1\n"),
    ("```python\nx = 1\n", "program", "x = 1\n"),  # an unclosed fence runs to the end
])
def test_extract_code(text, harness, expected):
    assert extract_code(text, harness) == expected


def result(text="", status="passed", passed=2, total=2):
    return RewardInput(text=text, status=status, tests_passed=passed, tests_total=total)


def test_pass_fraction_and_binary():
    assert REWARDS["pass_fraction"](result(passed=1, total=4)) == 0.25
    assert REWARDS["pass_fraction"](result(passed=0, total=0)) == 0.0
    assert REWARDS["binary"](result(status="failed", passed=1, total=2)) == 0.0
    assert REWARDS["binary"](result()) == 1.0


@pytest.mark.parametrize("text,expected", [
    ("<think>a</think>\n<answer>```python\nx = 1\n```</answer>", 1.0),
    ("<think>a</think><answer>```python\nx = 1\n``` ```python\ny = 2\n```</answer>", 0.0),
    ("<answer>```python\nx = 1\n```</answer>", 0.0),
    ("<think>a</think><answer>x = 1</answer>", 0.0),
    ("```python\nx = 1\n```", 0.0),
    ("<think>a</think><answer>```python\nx = 1\n```</answer> trailing", 0.0),
])
def test_format_reward(text, expected):
    assert REWARDS["format"](result(text=text)) == expected


def test_default_is_the_papers_weighted_sum():
    total, parts = score(RewardConfig(), result(text="<think>a</think><answer>```python\nx=1\n```</answer>", passed=1, total=2))
    assert parts == {"pass_fraction": 0.5, "format": 1.0}
    assert total == pytest.approx(0.5 + 0.1)


def test_weights_from_config_and_unknown_names():
    config = resolve_config(job_module("verify").Config, None, ["verifier.rewards.weights={binary: 2.0}"])
    assert score(config.verifier.rewards, result())[0] == 2.0
    with pytest.raises(ConfigError, match="unknown rewards"):
        resolve_config(job_module("verify").Config, None, ["verifier.rewards.weights.nope=1"])


def test_registering_a_reward_is_one_decorator():
    @reward("test_length_penalty")
    def length_penalty(r):
        return -len(r.text) / 100

    try:
        config = RewardConfig(weights={"pass_fraction": 1.0, "test_length_penalty": 1.0})
        assert score(config, result(text="x" * 50))[0] == pytest.approx(0.5)
        with pytest.raises(ValueError, match="twice"):
            reward("test_length_penalty")(length_penalty)
    finally:
        REWARDS.pop("test_length_penalty")


def test_rewards_are_chosen_per_family():
    config = resolve_config(job_module("verify").Config, None,
                            ["verifier.rewards.by_family={quasar: {binary: 3.0}}"]).verifier.rewards
    half = dict(text="", status="failed", tests_passed=1, tests_total=2)
    assert score(config, RewardInput(**half, family="quasar")) == (0.0, {"binary": 0.0})
    assert score(config, RewardInput(**half, family="examples"))[1] == {"pass_fraction": 0.5, "format": 0.0}
    with pytest.raises(ConfigError, match="family 'quasar': unknown rewards"):
        resolve_config(job_module("verify").Config, None, ["verifier.rewards.by_family={quasar: {nope: 1}}"])


def test_a_reward_reads_outcomes_measures_code_and_family_from_the_checkers_record():
    """What reaches a reward is the checker's record, checked on the way: per-test outcomes and
    named finite measures; a measure that is not a finite number is dropped, a record whose counts
    are not numbers is no record at all."""
    from actors.contracts import Task
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob, make_verdict

    seen = []

    @reward("test_graded")
    def graded(r):
        seen.append(r)
        return r.measures.get("overlap", 0.0) * (r.outcomes.get("T.test_a") == "passed")

    try:
        config = VerifierConfig(rewards={"weights": {"test_graded": 1.0}})
        task = Task(task_id="t", family="graded", harness="unittest", prompt="",
                    tests=("import unittest\nclass T(unittest.TestCase):\n"
                           "    def test_a(self): pass\n    def test_b(self): pass\n"))
        job = VerificationJob(task, "x = 1\n", 3, "```python\nx = 1\n```")
        record = {"tests_passed": 1, "tests_total": 2, "outcomes": {"T.test_a": "passed", "T.test_b": "failed"},
                  "measures": {"overlap": 0.75, "bad": float("nan"), "text": "0.9", "flag": True}, "error": None}
        verdict = make_verdict(job, {"status": "ok", "record": record}, config, 0.1)
        assert (verdict.status, verdict.reward) == ("failed", 0.75)
        assert verdict.outcomes == {"T.test_a": "passed", "T.test_b": "failed"}
        assert verdict.measures == {"overlap": 0.75}
        assert (seen[-1].code, seen[-1].family, seen[-1].text) == ("x = 1\n", "graded", "```python\nx = 1\n```")
        forged = make_verdict(job, {"status": "ok", "record": {"tests_passed": "all", "tests_total": 2}}, config, 0.1)
        assert (forged.status, forged.tests_passed, forged.tests_total) == ("failed", 0, 2)
        assert "an unreadable result record" in forged.stderr_tail
        too_many = make_verdict(job, {"status": "ok", "record": {"tests_passed": 3, "tests_total": 2}}, config, 0.1)
        assert too_many.status == "failed" and too_many.tests_passed == 0
    finally:
        REWARDS.pop("test_graded")


def test_a_harness_is_one_registered_class():
    from actors.contracts import Task
    from actors.verify.sandbox.harness import count_tests
    from actors.verify.sandbox.harnesses.registry import HARNESSES, Harness, get, register

    assert {"qhe", "unittest", "program"} <= set(HARNESSES)
    with pytest.raises(ValueError, match="unknown harness 'nope'"):
        get("nope")
    with pytest.raises(ValueError, match="harness 'nope' is not one of"):
        Task(task_id="t", family="f", harness="nope", prompt="", tests="")

    @register
    class Lines(Harness):
        name = "test_lines"
        continues_prompt = True

        def count_tests(self, tests):
            return len(tests.splitlines())

    try:
        assert count_tests("test_lines", "a\nb\nc") == 3
        assert extract_code("    return 1 +\n", "test_lines") == "    return 1 +\n"  # continues the prompt: kept as is
        assert extract_code("    return 1 +\n", "program") is None  # a whole program must parse
        assert get("test_lines").solution("def f():\n", "    return 1\n") == "def f():\n    return 1\n"
        Task(task_id="t", family="f", harness="test_lines", prompt="", tests="")
        with pytest.raises(ValueError, match="twice"):
            register(Lines)
    finally:
        HARNESSES.pop("test_lines")
