"""Verification as the reward needs it: exact scores, and no way to pass without the tests passing.

Every behaviour here holds for both real executors: the forked sandbox and the subprocess baseline.
"""

import os
import subprocess
import time

import pytest

from actors.contracts import Completion, Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.harness import count_tests
from actors.verify.isolation import SandboxConfig
from actors.verify.verifier import Verifier, pair_jobs, reference_jobs
from pipelines.tasks.loader import TaskSourceConfig, load_tasks
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["forked", "subprocess", "bare"])
def verifier(request):
    config = VerifierConfig(executor=request.param, timeout_s=8, sandbox=SandboxConfig(max_output_bytes=2048))
    with Verifier(config, slots=2) as verifier:
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
    tests = "import unittest\nclass A(unittest.TestCase):\n    def test_a(self): pass\n    def test_b(self): pass\n    def helper(self): pass\n"
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


def test_child_sees_a_clean_environment(verifier, monkeypatch):
    code = ("import os\nassert not any('SECRET' in key for key in os.environ), 'leak'\n"
            "assert os.environ['QISKIT_IN_PARALLEL'] == 'TRUE'\nassert os.environ['OMP_NUM_THREADS'] == '1'\n"
            "assert os.getcwd() == os.environ['HOME']\n")
    verdict = check(verifier, program_task(), code)
    assert verdict.status == "passed", verdict.stderr_tail


def test_stderr_is_capped(verifier):
    verdict = check(verifier, program_task(), "import sys\nsys.stderr.write('x' * 2_000_000)\nraise SystemExit(1)")
    assert verdict.status == "failed" and len(verdict.stderr_tail) <= 2048


def test_background_processes_are_killed(verifier):
    marker = "987.654"
    assert check(verifier, program_task(), f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n").status == "passed"
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    assert left.strip() == "", "the child's processes must be killed"


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
