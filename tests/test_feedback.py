"""The verifier's feedback between turns: what it says, and that it never leaks the hidden tests.

The leak test runs real candidates in the real sandbox (split and shared) against tests whose
source holds a distinctive string and distinctive expected values, checks that the sandbox's raw
output does carry them (so the test can fail), and that the feedback built from it does not.
"""

import pytest

from actors.contracts import Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.feedback import FeedbackConfig, build_feedback, render_feedback, secrets_of

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
def test_feedback_shows_the_candidates_own_failure(verdicts):
    own = build_feedback(TASK, verdicts["own"], ERRORS_ONLY, OWN_ERROR)
    assert "RuntimeError: qubit register is empty" in own.errors
    if verdicts["own"].isolation == "shared":  # split: the exception crossed from the solution child as data
        assert any(line.startswith('  File "<solution>", line 2') for line in own.errors)
    echoed = build_feedback(TASK, verdicts["echoes"], ERRORS_ONLY, ECHOES_INPUT)
    assert any(line.startswith("ValueError: (message withheld") for line in echoed.errors), echoed.errors
    syntax = build_feedback(TASK, verdicts["syntax"], ERRORS_ONLY, SYNTAX)
    assert any(line.startswith("SyntaxError") for line in syntax.errors), syntax.errors
    assert "    def answer(:" in syntax.errors


@pytest.mark.slow
def test_failing_test_names_only_where_allowed(verdicts):
    verdict = verdicts["wrong"]
    allowed = build_feedback(TASK, verdict, ALL_PARTS, WRONG)
    assert allowed.failing_tests and all("HiddenChecks" in name for name in allowed.failing_tests)
    assert build_feedback(TASK, verdict, ERRORS_ONLY, WRONG).failing_tests is None
    text = render_feedback(allowed, ALL_PARTS)
    assert MARKER not in text and EXPECTED not in text and "0.70710678" not in text


def verdict(status="failed", stderr="", measures=None, outcomes=None):
    return Verdict(task_id="leak", sample_idx=0, status=status, tests_passed=0, tests_total=3, reward=0.0,
                   measures=measures or {}, outcomes=outcomes or {}, stderr_tail=stderr)


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
