"""Qiskit HumanEval in the sandbox: every canonical solution that can pass offline passes, and every
task's test rejects wrong completions."""

import collections

import pytest

from actors.contracts import Completion
from actors.verify.config import VerifierConfig
from actors.verify.verifier import Verifier
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
    # Offline, as QHE's own harness sees it: tasks needing IBM's service get no QPU gateway here
    # (test_qpu.py covers them through the gateway).
    with Verifier(VerifierConfig(timeout_s=90, qpu_gateway=False), slots=2) as verifier:
        yield verifier


@pytest.fixture(scope="module")
def calibrated(qhe, verifier):
    """Each task's isolation mode, found once by running its reference (split first, shared where split fails)."""
    modes, verdicts = verifier.calibrate(qhe)
    for task in qhe:
        task.metadata["isolation"] = modes[task.task_id]
    return modes, verdicts


def test_canonical_solutions_pass(qhe, calibrated):
    modes, verdicts = calibrated
    failed = {number(v.task_id): v for v in verdicts if v.status != "passed"}
    unexpected = {n: v.stderr_tail[-400:] for n, v in failed.items() if n not in CANNOT_PASS_OFFLINE}
    assert unexpected == {}
    passed = len(verdicts) - len(failed)
    split = sum(v.status == "passed" and v.isolation == "split" for v in verdicts)
    print(f"QHE canonical: {passed}/{len(verdicts)} passed, {split} of them in split mode; "
          f"shared: {sorted(number(t) for t, mode in modes.items() if mode == 'shared')}")
    assert passed == len(qhe) - len(CANNOT_PASS_OFFLINE) == 138
    assert split >= 120
    assert all(v.isolation == modes[v.task_id] for v in verdicts)


def test_wrong_completions_fail(qhe, verifier, calibrated):
    runnable = [task for task in qhe if number(task.task_id) not in CANNOT_PASS_OFFLINE]
    completions = [Completion(task_id=task.task_id, sample_idx=0, text="    pass\n") for task in runnable]
    completions += [Completion(task_id=task.task_id, sample_idx=1,
                               text=runnable[(index + 1) % len(runnable)].reference_solution)
                    for index, task in enumerate(runnable)]
    verdicts = verifier.verify(runnable, completions)
    passing = [(v.task_id, v.sample_idx) for v in verdicts if v.status == "passed"]
    assert passing == []
    assert collections.Counter(v.isolation for v in verdicts)["split"] >= 2 * 120
