"""Verification as the reward needs it: exact scores, and no way to pass without the tests passing.

Every behaviour here holds for both real executors: the forked sandbox and the subprocess baseline.
"""

import secrets
import subprocess
import time

import pytest

from actors.contracts import Completion, Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.sandbox.config import SandboxConfig
from actors.verify.sandbox.harness import count_tests
from actors.verify.verifier import Verifier, pair_jobs, reference_jobs
from pipelines.tasks.loader import TaskSourceConfig, load_tasks
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["forked", "subprocess", "bare"])
def verifier(request):
    config = VerifierConfig(timeout_s=8, sandbox=SandboxConfig(max_output_bytes=2048))
    with Verifier(config, slots=2, executor=request.param) as verifier:
        yield verifier


@pytest.fixture(scope="module")
def examples():
    return {task.task_id: task for task in load_tasks(TaskSourceConfig(source=str(EXAMPLES)))}


def program_task(tests: str = "", harness: str = "program") -> Task:
    return Task(task_id="t", family="test", harness=harness, prompt="", tests=tests)


def check(verifier, task: Task, code: str):
    return verifier.verify_one(VerificationJob(task, code))


def test_every_example_reference_passes(verifier, examples):
    verdicts = verifier.run(reference_jobs(examples.values()))
    assert [v.status for v in verdicts] == ["passed"] * len(examples), [v.stderr_tail for v in verdicts]
    for verdict in verdicts:
        assert verdict.tests_passed == verdict.tests_total >= 1
        assert verdict.reward_parts["pass_fraction"] == 1.0


def test_wrong_completions_fail(verifier, examples):
    tasks = list(examples.values())
    other = {task.task_id: tasks[(i + 1) % len(tasks)].reference_solution for i, task in enumerate(tasks)}
    completions = [Completion(task_id=t.task_id, sample_idx=0, text="pass\n") for t in tasks]
    completions += [Completion(task_id=t.task_id, sample_idx=1, text=f"```python\n{other[t.task_id]}```")
                    for t in tasks if t.harness != "program"]
    verdicts = verifier.verify(tasks, completions)
    for completion, verdict in zip(completions, verdicts):
        assert (verdict.task_id, verdict.sample_idx) == (completion.task_id, completion.sample_idx)
        if examples[verdict.task_id].harness == "program" and completion.sample_idx == 0:
            assert verdict.status == "passed"  # `pass` is a program that runs cleanly: that is the format
        else:
            assert verdict.status == "failed", (completion.task_id, completion.sample_idx, verdict.stderr_tail)
            assert verdict.reward_parts["pass_fraction"] < 1.0


def test_no_code_is_an_error_without_running(verifier, examples):
    task = examples["examples/bell-state"]
    [verdict] = verifier.verify([task], [Completion(task_id=task.task_id, sample_idx=0, text="I cannot help.")])
    assert (verdict.status, verdict.reward, verdict.duration_s) == ("error", 0.0, 0.0)
    assert "no code" in verdict.stderr_tail


def test_reward_is_weighted_sum_with_format(verifier, examples):
    task = examples["examples/bell-state"]
    answer = f"<think>Bell pair.</think><answer>```python\n{task.reference_solution}```</answer>"
    [verdict] = verifier.verify([task], [Completion(task_id=task.task_id, sample_idx=0, text=answer)])
    assert verdict.status == "passed"
    assert verdict.reward_parts == {"pass_fraction": 1.0, "format": 1.0}
    assert verdict.reward == pytest.approx(1.1)


def test_unittest_reward_is_the_fraction_of_methods_passed(verifier, examples):
    verdict = check(verifier, examples["examples/bell-state"], "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\n")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total) == ("failed", 1, 2)
    assert verdict.reward_parts["pass_fraction"] == 0.5 and "test_state" in verdict.stderr_tail


def test_crash_before_tests_scores_zero_of_all_methods(verifier, examples):
    verdict = check(verifier, examples["examples/bell-state"], "raise RuntimeError('boom')")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total) == ("failed", 0, 2)
    assert "RuntimeError: boom" in verdict.stderr_tail


def test_count_tests_reads_the_source():
    tests = ("import unittest\nclass A(unittest.TestCase):\n    def test_a(self): pass\n    def test_b(self): pass\n"
             "    def helper(self): pass\n")
    assert count_tests("unittest", tests) == 2
    assert count_tests("qhe", "def check(c): pass") == 1


@pytest.mark.parametrize("code", ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "raise SystemExit"])
def test_exiting_early_never_passes(verifier, examples, code):
    verdict = check(verifier, examples["examples/bell-state"], code)
    assert verdict.status == "failed" and verdict.tests_passed == 0


def test_program_harness_exit_codes(verifier):
    assert check(verifier, program_task(), "import sys\nsys.exit(0)").status == "passed"
    assert check(verifier, program_task(), "import sys\nsys.exit(3)").status == "failed"
    assert check(verifier, program_task(), "assert 1 == 2").status == "failed"
    verdict = check(verifier, program_task(), "import os\nos._exit(0)")
    why = "no result record" if verdict.isolation == "shared" else "the solution child"
    assert verdict.status == "failed" and why in verdict.stderr_tail


def test_printed_pass_markers_do_not_count(verifier, examples):
    code = "print('{\"tests_passed\": 2, \"tests_total\": 2, \"error\": null}')\nprint('OK')\nraise ValueError"
    assert check(verifier, examples["examples/bell-state"], code).status == "failed"


def test_timeout_is_enforced(verifier):
    started = time.monotonic()
    verdict = check(verifier, program_task(), "while True:\n    pass")
    assert verdict.status == "timeout" and verdict.reward == 0.0
    assert time.monotonic() - started < 20


def test_killed_by_signal(verifier):
    verdict = check(verifier, program_task(), "import ctypes\nctypes.string_at(0)")
    assert verdict.status == "killed"


def test_child_sees_a_clean_environment(verifier):
    code = ("import os\n"
            "assert os.environ['QISKIT_IN_PARALLEL'] == 'TRUE'\nassert os.environ['OMP_NUM_THREADS'] == '1'\n"
            "assert os.getcwd() == os.environ['HOME']\n")
    verdict = check(verifier, program_task(), code)
    assert verdict.status == "passed", verdict.stderr_tail


# The candidate writes out every environment it can read: its own (as exec'd, /proc/self/environ,
# and as Python sees it), and its parent's (the zygote, where the PID namespace lets it see one).
DUMP_ENVIRONMENTS = """
import os, sys
texts = {"proc_self": open("/proc/self/environ", "rb").read().decode("utf-8", "replace"),
         "os_environ": "\\0".join(f"{key}={value}" for key, value in os.environ.items())}
if os.getppid() > 1:
    try:
        texts["proc_parent"] = open(f"/proc/{os.getppid()}/environ", "rb").read().decode("utf-8", "replace")
    except OSError as error:
        texts["proc_parent"] = repr(error)
for name, text in texts.items():
    sys.stderr.write(f"{name}: {text}\\n")
"""


@pytest.mark.parametrize("executor", ["forked", "subprocess", "bare"])
def test_no_host_secret_reaches_the_child(executor, monkeypatch):
    """A secret in the verifier's own environment (the IBM token, any other) when it starts its
    zygotes is in none of the environments the candidate can read."""
    token, canary = f"ibm-token-{secrets.token_hex(8)}", f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv("QVR_IBM_TOKEN", token)
    monkeypatch.setenv("QVR_TEST_CANARY_SECRET", canary)
    config = VerifierConfig(timeout_s=30, sandbox=SandboxConfig(max_output_bytes=16384))
    with Verifier(config, slots=1, executor=executor) as planted:
        verdict = check(planted, program_task(), DUMP_ENVIRONMENTS)
    assert verdict.status == "passed", verdict.stderr_tail
    dumps = dict(line.split(": ", 1) for line in verdict.stderr_tail.splitlines() if ": " in line)
    assert "QISKIT_IN_PARALLEL=TRUE" in dumps["proc_self"] and "QISKIT_IN_PARALLEL=TRUE" in dumps["os_environ"]
    for name, text in dumps.items():
        for secret in (token, canary, "QVR_IBM_TOKEN", "QVR_TEST_CANARY_SECRET"):
            assert secret not in text, f"{secret!r} leaked into the child's {name}"


def test_stderr_is_capped(verifier):
    verdict = check(verifier, program_task(), "import sys\nsys.stderr.write('x' * 2_000_000)\nraise SystemExit(1)")
    assert verdict.status == "failed" and len(verdict.stderr_tail) <= 2048


def test_background_processes_are_killed(verifier):
    marker = "987.654"
    assert check(verifier, program_task(), f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n").status == "passed"
    # SIGKILL is delivered asynchronously: wait (bounded) for the process to be gone.
    deadline = time.monotonic() + 30
    while (left := subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.strip()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == "", "the child's processes must be killed"


def test_large_result_record_does_not_block(verifier):
    methods = "".join(f"    def test_{i}(self): pass\n" for i in range(3000))
    verdict = check(verifier, program_task("import unittest\nclass T(unittest.TestCase):\n" + methods, "unittest"), "x = 1")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total) == ("passed", 3000, 3000)


def test_completion_for_unknown_task_is_an_error(examples):
    with pytest.raises(KeyError, match="nope"):
        pair_jobs(examples.values(), [Completion(task_id="nope", sample_idx=0, text="")])


def test_qhe_missing_entry_point_fails(verifier, examples):
    verdict = check(verifier, examples["examples/ghz-function"], "    return None\n\ndel ghz_circuit\n")
    assert verdict.status == "failed"


@pytest.mark.parametrize("isolation", ["shared", "split"])
def test_each_tests_outcome_comes_back_by_name(isolation):
    tests = ("import unittest\nclass T(unittest.TestCase):\n    def test_good(self):\n        self.assertEqual(x, 1)\n"
             "    def test_bad(self):\n        self.assertEqual(x, 2)\n    def test_broken(self):\n        y\n")
    with Verifier(VerifierConfig(isolation=isolation, timeout_s=30), slots=1) as verifier:
        verdict = check(verifier, program_task(tests, "unittest"), "x = 1")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total, verdict.isolation) == ("failed", 1, 3, isolation)
    assert verdict.outcomes == {"__main__.T.test_good": "passed", "__main__.T.test_bad": "failed",
                                "__main__.T.test_broken": "error"}


@pytest.mark.parametrize("split_status, tried_shared, mode", [
    ("passed", False, "split"), ("failed", True, "shared"), ("error", True, "shared"),
    ("timeout", False, "split"), ("killed", False, "split")])
def test_a_slow_reference_never_moves_its_task_to_the_shared_mode(split_status, tried_shared, mode):
    """Load (a split run that timed out) is no evidence that a task needs the weaker shared mode:
    only a split failure is, and only when shared then passes."""
    from actors.contracts import Verdict
    from actors.verify.verifier import calibrate_isolation

    task = Task(task_id="t", family="test", harness="program", prompt="", tests="", reference_solution="x = 1\n")
    runs = []

    def run(jobs):
        modes = [job.task.metadata["isolation"] for job in jobs]
        runs.extend(modes)
        return [Verdict(task_id="t", sample_idx=0, status=split_status if isolation == "split" else "passed",
                        tests_passed=0, tests_total=1, reward=0.0) for isolation in modes]

    modes, [verdict] = calibrate_isolation(run, [task])
    assert modes == {"t": mode}
    assert ("shared" in runs) == tried_shared
    assert verdict.status == ("passed" if mode == "shared" else split_status)
