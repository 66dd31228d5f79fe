"""Qiskit HumanEval in the sandbox: every canonical solution that can pass offline passes, and every
task's test rejects wrong completions."""

import collections

import pytest

from actors.contracts import Completion
from actors.verify.config import VerifierConfig
from actors.verify.verifier import Verifier, reference_jobs
from pipelines.tasks.loader import TaskSourceConfig, load_tasks
from pipelines.tasks.qhe import CANNOT_PASS_OFFLINE, task_number as number
from tests.conftest import QHE_JSON

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")]



@pytest.fixture(scope="module")
def qhe():
    return load_tasks(TaskSourceConfig(source=str(QHE_JSON)))


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifierConfig(timeout_s=90), slots=2) as verifier:
        yield verifier


def test_canonical_solutions_pass(qhe, verifier):
    verdicts = verifier.run(reference_jobs(qhe))
    failed = {number(v.task_id): v for v in verdicts if v.status != "passed"}
    unexpected = {n: v.stderr_tail[-400:] for n, v in failed.items() if n not in CANNOT_PASS_OFFLINE}
    assert unexpected == {}
    passed = len(verdicts) - len(failed)
    print(f"QHE canonical: {passed}/{len(verdicts)} passed; by status {collections.Counter(v.status for v in verdicts)}")
    assert passed == len(qhe) - len(CANNOT_PASS_OFFLINE) == 138


def test_wrong_completions_fail(qhe, verifier):
    runnable = [task for task in qhe if number(task.task_id) not in CANNOT_PASS_OFFLINE]
    completions = [Completion(task_id=task.task_id, sample_idx=0, text="    pass\n") for task in runnable]
    completions += [Completion(task_id=task.task_id, sample_idx=1,
                               text=runnable[(index + 1) % len(runnable)].reference_solution)
                    for index, task in enumerate(runnable)]
    verdicts = verifier.verify(runnable, completions)
    passing = [(v.task_id, v.sample_idx) for v in verdicts if v.status == "passed"]
    assert passing == []
