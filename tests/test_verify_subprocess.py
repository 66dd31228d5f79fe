"""The subprocess executor and harnesses: exact scores, and no way to pass without the tests passing."""

import os
import subprocess
import time

import pytest

from actors.contracts import Completion, Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob, run_subprocess
from actors.verify.harness import count_tests
from actors.verify.verifier import Verifier, pair_jobs, reference_jobs
from pipelines.tasks.loader import TaskSourceConfig, load_tasks
from tests.conftest import EXAMPLES

FAST = VerifierConfig(timeout_s=30)


@pytest.fixture(scope="module")
def examples():
    return {task.task_id: task for task in load_tasks(TaskSourceConfig(source=str(EXAMPLES)))}


def program_task(tests: str = "", harness: str = "program") -> Task:
    return Task(task_id="t", family="test", harness=harness, prompt="", tests=tests)


def verify(task: Task, code: str, config: VerifierConfig = FAST):
    return run_subprocess(VerificationJob(task, code), config)


def test_every_example_reference_passes(examples):
    verdicts = Verifier(FAST, slots=2).run(reference_jobs(examples.values()))
    assert [v.status for v in verdicts] == ["passed"] * len(examples), [v.stderr_tail for v in verdicts]
    for verdict in verdicts:
        assert verdict.tests_passed == verdict.tests_total >= 1
        assert verdict.reward == 1.0 and verdict.isolation == "shared"


def test_wrong_completions_fail(examples):
    tasks = list(examples.values())
    other = {task.task_id: tasks[(i + 1) % len(tasks)].reference_solution for i, task in enumerate(tasks)}
    completions = [Completion(task_id=t.task_id, sample_idx=0, text="") for t in tasks]
    completions += [Completion(task_id=t.task_id, sample_idx=1, text=other[t.task_id]) for t in tasks
                    if t.harness != "program"]
    verdicts = Verifier(FAST, slots=2).verify(tasks, completions)
    for completion, verdict in zip(completions, verdicts):
        assert (verdict.task_id, verdict.sample_idx) == (completion.task_id, completion.sample_idx)
        if examples[verdict.task_id].harness == "program" and completion.text == "":
            assert verdict.status == "passed"  # an empty program does run cleanly: that is the format
        else:
            assert verdict.status == "failed", (completion.task_id, completion.sample_idx, verdict.stderr_tail)
            assert verdict.reward < 1.0


def test_unittest_reward_is_the_fraction_of_methods_passed(examples):
    task = examples["examples/bell-state"]
    verdict = verify(task, "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\n")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total, verdict.reward) == ("failed", 1, 2, 0.5)
    assert "test_state" in verdict.stderr_tail


def test_crash_before_tests_scores_zero_of_all_methods(examples):
    verdict = verify(examples["examples/bell-state"], "raise RuntimeError('boom')")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total) == ("failed", 0, 2)
    assert "RuntimeError: boom" in verdict.stderr_tail


def test_count_tests_reads_the_source():
    tests = "import unittest\nclass A(unittest.TestCase):\n    def test_a(self): pass\n    def test_b(self): pass\n    def helper(self): pass\n"
    assert count_tests("unittest", tests) == 2
    assert count_tests("qhe", "def check(c): pass") == 1


@pytest.mark.parametrize("code", [
    "import os\nos._exit(0)",
    "import sys\nsys.exit(0)",
    "raise SystemExit",
])
def test_exiting_early_never_passes(examples, code):
    verdict = verify(examples["examples/bell-state"], code)
    assert verdict.status == "failed" and verdict.tests_passed == 0


def test_os_exit_reports_missing_record():
    verdict = verify(program_task(), "import os\nos._exit(0)")
    assert verdict.status == "failed" and "no result record" in verdict.stderr_tail


def test_program_harness_exit_codes():
    assert verify(program_task(), "import sys\nsys.exit(0)").status == "passed"
    assert verify(program_task(), "import sys\nsys.exit(3)").status == "failed"
    assert verify(program_task(), "assert 1 == 2").status == "failed"


def test_printed_pass_markers_do_not_count(examples):
    code = "print('{\"tests_passed\": 2, \"tests_total\": 2, \"error\": null}')\nprint('OK')\nraise ValueError"
    assert verify(examples["examples/bell-state"], code).status == "failed"


def test_timeout_is_enforced():
    started = time.monotonic()
    verdict = verify(program_task(), "while True:\n    pass", VerifierConfig(timeout_s=2))
    assert verdict.status == "timeout" and verdict.reward == 0.0
    assert time.monotonic() - started < 15


def test_killed_by_signal():
    verdict = verify(program_task(), "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert verdict.status == "killed"


def test_child_sees_a_clean_environment(monkeypatch):
    monkeypatch.setenv("QVR_TEST_SECRET", "hunter2")
    code = ("import os\nassert 'QVR_TEST_SECRET' not in os.environ, 'leak'\n"
            "assert os.environ['QISKIT_IN_PARALLEL'] == 'TRUE'\nassert os.environ['OMP_NUM_THREADS'] == '1'\n"
            "assert os.getcwd() == os.environ['HOME']\n")
    verdict = verify(program_task(), code)
    assert verdict.status == "passed", verdict.stderr_tail


def test_working_directory_is_private_and_removed():
    code = "import os, sys\nopen('scratch.txt', 'w').write('x')\nprint('CWD=' + os.getcwd(), file=sys.stderr)\nraise SystemExit(1)"
    verdict = verify(program_task(), code)
    workdir = verdict.stderr_tail.split("CWD=")[1].split()[0]
    assert workdir != os.getcwd() and not os.path.exists(workdir)


def test_stderr_is_capped():
    config = VerifierConfig(timeout_s=30, max_output_bytes=1024)
    verdict = verify(program_task(), "import sys\nsys.stderr.write('x' * 2_000_000)\nraise SystemExit(1)", config)
    assert verdict.status == "failed" and len(verdict.stderr_tail) <= 1024


def test_background_processes_are_killed():
    marker = "987.654"
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n"
    assert verify(program_task(), code).status == "passed"
    time.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    assert left.strip() == "", "the child's process group must be killed"


def test_large_result_record_does_not_block():
    methods = "".join(f"    def test_{i}(self): pass\n" for i in range(3000))
    task = program_task("import unittest\nclass T(unittest.TestCase):\n" + methods, harness="unittest")
    verdict = verify(task, "x = 1")
    assert (verdict.status, verdict.tests_passed, verdict.tests_total) == ("passed", 3000, 3000)


def test_completion_for_unknown_task_is_an_error(examples):
    with pytest.raises(KeyError, match="nope"):
        pair_jobs(examples.values(), [Completion(task_id="nope", sample_idx=0, text="")])


def test_qhe_missing_entry_point_fails(examples):
    verdict = verify(examples["examples/ghz-function"], "    return None\n\ndel ghz_circuit\n")
    assert verdict.status == "failed"
