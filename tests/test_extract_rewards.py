"""Code extraction from model output, and the reward registry."""

import pytest

from actors.verify.extract import extract_code
from actors.verify.rewards import REWARDS, RewardConfig, RewardInput, reward, score
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
