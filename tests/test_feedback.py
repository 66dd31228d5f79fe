"""The verifier's feedback between turns: what it says, and that it never leaks the hidden tests.

The leak test runs real candidates in the real sandbox (split and shared) against tests whose
source holds a distinctive string and distinctive expected values, checks that the sandbox's raw
output does carry them (so the test can fail), and that the feedback built from it does not.
"""

import re
from dataclasses import replace

import pytest

from actors.contracts import Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.feedback import SHARED_NOTE, FeedbackConfig, build_feedback, render_feedback, secrets_of
from tests.conftest import run_qvr

MARKER = "QVR_HIDDEN_MARKER_7731"
EXPECTED = "424242"
TESTS = (
    "import unittest\n"
    "class HiddenChecks(unittest.TestCase):\n"
    "    def test_value_matches(self):\n"
    f"        self.assertEqual(answer(), {EXPECTED}, '{MARKER}')\n"
    "    def test_amplitude(self):\n"
    "        self.assertAlmostEqual(amplitude(), 0.70710678, places=6)\n"
    "    def test_label(self):\n"
    f"        self.assertEqual(label('{MARKER}'), 'ok')\n"
)
TASK = Task(task_id="leak", family="test", harness="unittest", prompt="", tests=TESTS)

WRONG = "def answer():\n    return 424241\n\ndef amplitude():\n    return 0.5\n\ndef label(name):\n    return 'no'\n"
ECHOES_INPUT = ("def answer():\n    return 0\n\ndef amplitude():\n    return 0.0\n\n"
                "def label(name):\n    raise ValueError('unknown label ' + name)\n")
OWN_ERROR = ("def answer():\n    raise RuntimeError('qubit register is empty')\n\ndef amplitude():\n    return 0.0\n\n"
             "def label(name):\n    return 'no'\n")
SYNTAX = "def answer(:\n    return 1\n"

ALL_PARTS = FeedbackConfig(include=["errors", "measures", "tests"])
ERRORS_ONLY = FeedbackConfig(include=["errors"])


@pytest.fixture(scope="module")
def verifier():
    from actors.verify.verifier import Verifier

    with Verifier(VerifierConfig(timeout_s=20), slots=1) as verifier:
        yield verifier


@pytest.fixture(scope="module", params=["split", "shared"])
def verdicts(request, verifier):
    if request.param == "split" and not verifier.servers[0].can_split:
        pytest.skip("split isolation needs user, mount and PID namespaces")
    jobs = [VerificationJob(TASK, code, index) for index, code in enumerate([WRONG, ECHOES_INPUT, OWN_ERROR, SYNTAX])]
    return dict(zip(["wrong", "echoes", "own", "syntax"], verifier.run(jobs, isolation=request.param)))


def leaks(text: str) -> list[str]:
    return [secret for secret in (MARKER, EXPECTED, "0.70710678", "assertEqual", "HiddenChecks", "test_value_matches")
            if secret in text]


@pytest.mark.slow
def test_feedback_under_errors_never_quotes_the_tests(verdicts):
    raw = "\n".join(verdict.stderr_tail for verdict in verdicts.values())
    assert MARKER in raw and EXPECTED in raw, "the sandbox's raw output should quote the tests (else this test is void)"
    for name, verdict in verdicts.items():
        code = {"wrong": WRONG, "echoes": ECHOES_INPUT, "own": OWN_ERROR, "syntax": SYNTAX}[name]
        text = render_feedback(build_feedback(TASK, verdict, ERRORS_ONLY, code), ERRORS_ONLY)
        assert leaks(text) == [], f"{name}: feedback leaks {leaks(text)}:\n{text}"


@pytest.mark.slow
def test_feedback_shows_the_candidates_own_failure_in_split_isolation_only(verdicts):
    own = build_feedback(TASK, verdicts["own"], ERRORS_ONLY, OWN_ERROR)
    if verdicts["own"].isolation == "shared":  # the candidate could have read the tests: status and counts only
        assert own.errors is None and own.measures is None and own.failing_tests is None
        assert (own.status, own.tests_passed, own.tests_total) == ("failed", 0, 3)
        assert render_feedback(own, ERRORS_ONLY).startswith("Verifier: failed (0 of 3 tests passed).")
        return
    assert "RuntimeError: qubit register is empty" in own.errors
    echoed = build_feedback(TASK, verdicts["echoes"], ERRORS_ONLY, ECHOES_INPUT)
    assert any(line.startswith("ValueError: (message withheld") for line in echoed.errors), echoed.errors
    syntax = build_feedback(TASK, verdicts["syntax"], ERRORS_ONLY, SYNTAX)
    assert any(line.startswith("SyntaxError") for line in syntax.errors), syntax.errors
    assert "    def answer(:" in syntax.errors


@pytest.mark.slow
def test_failing_test_names_only_where_allowed(verdicts):
    verdict = verdicts["wrong"]
    if verdict.isolation == "shared":
        assert build_feedback(TASK, verdict, ALL_PARTS, WRONG).failing_tests is None
        return
    allowed = build_feedback(TASK, verdict, ALL_PARTS, WRONG)
    assert allowed.failing_tests and all("HiddenChecks" in name for name in allowed.failing_tests)
    assert build_feedback(TASK, verdict, ERRORS_ONLY, WRONG).failing_tests is None
    text = render_feedback(allowed, ALL_PARTS)
    assert MARKER not in text and EXPECTED not in text and "0.70710678" not in text


def verdict(status="failed", stderr="", measures=None, outcomes=None, isolation="split"):
    return Verdict(task_id="leak", sample_idx=0, status=status, tests_passed=0, tests_total=3, reward=0.0,
                   measures=measures or {}, outcomes=outcomes or {}, stderr_tail=stderr, isolation=isolation)


def test_messages_raised_outside_the_candidate_are_withheld():
    stderr = ("Traceback (most recent call last):\n"
              '  File "/srv/qvr/actors/verify/sandbox/harnesses/unittests.py", line 70, in run\n'
              '    exec(compile(tests, "<tests>", "exec"), namespace)\n'
              '  File "<tests>", line 4, in test_value_matches\n'
              "AssertionError: 7 != 9 : computed\n")
    feedback = build_feedback(TASK, verdict(stderr=stderr), ERRORS_ONLY, "x = 1")
    assert feedback.errors == ["Traceback (most recent call last):", "AssertionError: " + feedback.errors[-1].split(": ", 1)[1]]
    assert "7 != 9" not in render_feedback(feedback, ERRORS_ONLY) and "/srv/qvr" not in render_feedback(feedback, ERRORS_ONLY)


def test_measures_and_status_are_rendered_from_the_verdict():
    config = FeedbackConfig(include=["measures"])
    feedback = build_feedback(TASK, verdict(status="timeout", measures={"js_distance": 0.1234567, "syntax": 1.0}),
                              config, "x = 1", timeout_s=20)
    text = render_feedback(feedback, config)
    assert "js_distance = 0.1235" in text and "syntax = 1" in text and "within 20 s" in text
    assert feedback.errors is None


def test_secrets_cover_lines_literals_and_names():
    secrets = secrets_of(TASK)
    assert MARKER in secrets.strings and EXPECTED in secrets.numbers and "0.70710678" in secrets.numbers
    assert {"HiddenChecks", "test_value_matches"} <= secrets.names
    assert secrets.quoted_in(f"got {EXPECTED}.0") and not secrets.quoted_in("qubit register is empty")


def test_a_bad_feedback_part_names_its_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="include"):
        FeedbackConfig(include=["errors", "hidden_tests"])


# ---------------------------------------------------------------- attacks on the feedback channel
#
# The tests' expected value is SECRET. Each attack finds it in its caller's frames (in shared
# isolation the test method that calls it; in split isolation only qvr's own code is there) and
# tries to smuggle it into the feedback through a channel it controls, encoded so that no quote
# filter recognises it (7351 -> "hdfb"). "Before the fix" is today's split-isolation feedback, the
# rules every verdict had before the isolation rule: applied to the shared verdicts, it must leak
# (the channel is real), while the feedback of the shared verdicts themselves must not.

SECRET = 7351
ENCODED = "hdfb"
ATTACK_TESTS = ("import unittest\n"
                "class Hidden(unittest.TestCase):\n"
                "    def test_answer(self):\n"
                f"        self.assertEqual(answer(), {SECRET})\n")
ATTACK_TASK = Task(task_id="attack", family="test", harness="unittest", prompt="", tests=ATTACK_TESTS)
FIND = '''import json
import sys

def _secret():
    frame = sys._getframe(1)
    while frame is not None:
        for const in frame.f_code.co_consts:
            if type(const) is int and 999 < const < 100000:
                return const
        frame = frame.f_back
    return 0

def _letters(number):
    return "".join("abcdefghij"[int(digit)] for digit in str(number))

'''
ATTACKS = {
    # The attack: the value letter-encoded in an exception's message.
    "message": FIND + "def answer():\n    raise ValueError('hint ' + _letters(_secret()))\n",
    # The line a frame of <solution> raises at.
    "line number": FIND + ("def answer():\n"
                           "    exec(compile('\\n' * (_secret() - 1) + 'raise RuntimeError(1)', '<solution>', 'exec'))\n"),
    # The name of an exception class it defines.
    "class name": FIND + "def answer():\n    raise type(_letters(_secret()).capitalize() + 'Error', (Exception,), {})()\n",
    # Printed text: a forged traceback of its own on stderr.
    "printed text": FIND + ("def answer():\n    hint = _letters(_secret())\n"
                            "    sys.stderr.write('Traceback (most recent call last):\\n  File \"<solution>\", line 1, in '"
                            " + hint + '\\nValueError: ' + hint + '\\n')\n    return 0\n"),
    # Measures and test ids in its own record: json.dumps patched in the process that writes it.
    "measures and test ids": FIND + ('''def answer():
    secret, original = _secret(), json.dumps
    def dumps(record, *args, **kwargs):
        if isinstance(record, dict) and "tests_passed" in record:
            record = dict(record, measures={"hint": float(secret)}, outcomes={"test_" + _letters(secret): "failed"})
        return original(record, *args, **kwargs)
    json.dumps = dumps
    return 0
'''),
}


def smuggled(text: str) -> bool:
    return ENCODED in text.lower() or str(SECRET) in text


@pytest.fixture(scope="module", params=["split", "shared"])
def attacked(request, verifier):
    if request.param == "split" and not verifier.servers[0].can_split:
        pytest.skip("split isolation needs user, mount and PID namespaces")
    jobs = [VerificationJob(ATTACK_TASK, code, index) for index, code in enumerate(ATTACKS.values())]
    return request.param, dict(zip(ATTACKS, verifier.run(jobs, isolation=request.param)))


@pytest.mark.slow
def test_no_channel_the_candidate_controls_carries_the_tests_to_the_policy(attacked):
    isolation, verdicts = attacked
    for name, verdict in verdicts.items():
        assert verdict.isolation == isolation and verdict.status != "passed", (name, verdict)
        text = render_feedback(build_feedback(ATTACK_TASK, verdict, ALL_PARTS, ATTACKS[name]), ALL_PARTS)
        assert not smuggled(text), f"{isolation}, {name}: the feedback carries the tests:\n{text}"
        if isolation == "shared":
            before = build_feedback(ATTACK_TASK, replace(verdict, isolation="split"), ALL_PARTS, ATTACKS[name])
            assert smuggled(render_feedback(before, ALL_PARTS)), f"{name}: the attack found no channel (void test)"
            assert text.startswith("Verifier: failed (0 of 1 tests passed).\n" + SHARED_NOTE), text


@pytest.mark.slow
def test_split_feedback_stays_helpful_under_attack(attacked):
    isolation, verdicts = attacked
    if isolation != "split":
        pytest.skip("split isolation only")
    message = build_feedback(ATTACK_TASK, verdicts["message"], ALL_PARTS, ATTACKS["message"])
    assert any(line.startswith("ValueError: hint ") for line in message.errors), message.errors
    named = build_feedback(ATTACK_TASK, verdicts["class name"], ALL_PARTS, ATTACKS["class name"])
    # The class it defined, named after the number it found in qvr's own frames (not the tests').
    assert any(re.search(r"\b[A-J][a-j]*Error\b", line) for line in named.errors), named.errors


def test_shared_counts_are_the_parents_not_the_candidates():
    """A shared record's counts come from the candidate's process; the total shown is counted from
    the tests' source, and the passed count is clamped to it, so neither can carry a number."""
    forged = verdict(isolation="shared")
    forged.tests_passed, forged.tests_total = SECRET, SECRET
    feedback = build_feedback(ATTACK_TASK, forged, ALL_PARTS, "x = 1")
    assert (feedback.tests_passed, feedback.tests_total) == (1, 1)
    assert not smuggled(render_feedback(feedback, ALL_PARTS))


@pytest.mark.slow
def test_qvr_verify_feedback_shows_what_the_policy_would_read(tmp_path, ray_session):
    """`qvr verify --feedback PRESET` on the attacks, in both isolations (a task marked each way):
    the feedback column holds nothing of the tests where the candidate shared their process, and
    the candidate's own errors where it did not."""
    import json

    import pyarrow.parquet as pq

    tasks, completions = tmp_path / "tasks.jsonl", tmp_path / "completions.jsonl"
    rows = [dict(task_id=f"attack/{mode}", family="test", harness="unittest", prompt="", tests=ATTACK_TESTS,
                 metadata={"isolation": mode}) for mode in ("shared", "split")]
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    completions.write_text("".join(json.dumps({"task_id": row["task_id"], "completion": code}) + "\n"
                                   for row in rows for code in ATTACKS.values()))
    result = run_qvr("verify", "--config", "configs/verify-quickstart.yaml", "--tasks", str(tasks), "--completions",
                     str(completions), "--feedback", "configs/grpo-multiturn-smoke.yaml",
                     "feedback.include=[errors,measures,tests]", f"run.root={tmp_path / 'runs'}", "--json")
    assert result.returncode == 0, result.output
    table = pq.read_table(result.summary["verdicts"]).to_pylist()
    assert len(table) == 2 * len(ATTACKS)
    for row in table:
        assert not smuggled(row["feedback"]), row
        assert len(row["feedback"]) <= 400 + 100, "the preset's turns.feedback.max_chars applies"
    split = [row for row in table if row["isolation"] == "split"]
    shared = [row for row in table if row["isolation"] == "shared"]
    assert len(shared) == len(ATTACKS) and all(SHARED_NOTE in row["feedback"] for row in shared)
    if split:  # where the kernel allows split isolation
        assert any("ValueError: hint " in row["feedback"] for row in split), [row["feedback"] for row in split]


def test_verify_feedback_needs_a_multi_turn_preset(tmp_path):
    result = run_qvr("verify", "--config", "configs/verify-quickstart.yaml", "--feedback", "configs/grpo-smoke.yaml")
    assert result.returncode == 2 and "configs/grpo-smoke.yaml" in result.stderr and "max_turns" in result.stderr
