"""Cheaper simulators before the QPU (``verifier.tiers``): a candidate that fails a simulator tier
stops there and the QPU never sees it; one that passes is decided by the QPU; with no tiers a QPU
task goes straight to the QPU as before; the tier is the parent's choice, never the candidate's;
every verdict says which tier decided it; ``qvr bench qpu`` reports what tiers save.

Evidence that nothing reached the QPU comes from the backend's side (a RecordingBackend's own record
of what it received), never from the gateway's or the verdict's word."""

import json
import os

import pytest

from actors.contracts import Task, Verdict, read_parquet, to_rows, write_parquet
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.evidence import RecordingBackend, in_process
from actors.verify.qpu.gateway import QpuGateway, gateway_handler
from tests.conftest import run_qvr

BELL_TESTS = """import unittest

class TestBell(unittest.TestCase):
    def test_correlated(self):
        total = sum(counts.values())
        self.assertGreaterEqual((counts.get('00', 0) + counts.get('11', 0)) / total, 0.85)
"""

NOISELESS_TESTS = """import unittest

class TestNoiseless(unittest.TestCase):
    def test_never_anticorrelated(self):
        self.assertEqual(counts.get('01', 0) + counts.get('10', 0), 0)
"""
"""Passed by a Bell pair on an ideal simulator, failed (near certainly, 2000 shots) by a noisy one."""

PROGRAM = """from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
backend = QiskitRuntimeService().backend('ibm_manila')
qc = QuantumCircuit(2)
qc.h(0)
{gates}qc.measure_all()
counts = SamplerV2(mode=backend).run([transpile(qc, backend, seed_transpiler=1)], shots=2000).result()[0].data.meas.get_counts()
"""
RIGHT = PROGRAM.format(gates="qc.cx(0, 1)\n")
WRONG = PROGRAM.format(gates="")  # no entanglement: half the shots anticorrelated, on any simulator

REACHES_FOR_THE_QPU = WRONG + """
import sys
from actors.verify.sandbox.codecs.registry import encode
from actors.verify.sandbox.frames import write_frame
from actors.verify.sandbox.qpu_shim import install
request = {'op': 'run', 'backend': 'ibm_manila', 'primitive': 'sampler', 'pubs': encode([transpile(qc, backend)]),
           'options': {'shots': 100}, 'tier': 'qpu', 'qpu_tier': 'qpu'}
for fd in range(3, 256):  # any channel this process holds: none leads to the gateway in a simulator tier
    try:
        write_frame(fd, {'qpu_tier': 'qpu'})
        write_frame(fd, request)
    except Exception:
        pass
install(3, 4)  # the gateway's shim, on whatever fds there are
from qiskit_ibm_runtime import QiskitRuntimeService as Service, SamplerV2 as Sampler
try:
    Sampler(mode=Service().backend('ibm_manila')).run([transpile(qc, backend)]).result()
except Exception as error:
    print('no QPU from here:', repr(error), file=sys.stderr)
print('tier: qpu')
"""


def task(tests=BELL_TESTS, task_id="bell"):
    return Task(task_id=task_id, family="test", harness="unittest", prompt="", tests=tests, requires_qpu=True)


class Qpu:
    """A fake QPU with noise that keeps its own record (RecordingBackend), behind an in-process
    gateway, and verifiers (real zygotes and sandboxes) whose QPU requests reach it."""

    def __init__(self):
        self.config = QpuConfig(time_scale=20, limits={"jobs_per_minute": 600})
        self.backend = RecordingBackend(self.config)
        self.gateway = QpuGateway(self.config, runner=self.backend)

    def verifier(self, call, tiers):
        from actors.verify.verifier import Verifier

        return Verifier(VerifierConfig(timeout_s=60, qpu=self.config, tiers=tiers), slots=1,
                        qpu_handler=gateway_handler(self.config, call))

    def received(self, since=0):
        return len(self.backend.submissions) - since


@pytest.fixture(scope="module")
def qpu():
    """The fake QPU, a verifier with both tiers and one with none (started once for the module)."""
    fake = Qpu()
    with in_process(fake.gateway) as call, fake.verifier(call, ["ideal", "noisy"]) as tiered, \
            fake.verifier(call, []) as untiered:
        fake.tiered, fake.untiered = tiered, untiered
        yield fake


def verify(verifier, code, tests=BELL_TESTS, sample_idx=0):
    return verifier.verify_one(VerificationJob(task(tests), code, sample_idx))


# ---------------------------------------------------------------- through real sandboxes

@pytest.mark.slow
def test_a_wrong_candidate_stops_at_the_ideal_tier_and_the_backend_receives_nothing_for_it(qpu):
    before = qpu.received()
    verdict = verify(qpu.tiered, WRONG)
    assert (verdict.status, verdict.tier) == ("failed", "ideal"), verdict.stderr_tail
    assert verdict.outcomes and set(verdict.outcomes.values()) == {"failed"}  # the tests ran, on the simulator
    assert verdict.qpu_s == 0.0 and verdict.qpu_wait_s == 0.0 and verdict.reward == 0.0
    assert qpu.received(before) == 0, "a candidate that failed the ideal tier reached the QPU"


@pytest.mark.slow
def test_a_right_candidate_passes_the_tiers_and_the_qpu_decides(qpu):
    before = qpu.received()
    verdict = verify(qpu.tiered, RIGHT)
    assert (verdict.status, verdict.tier) == ("passed", "qpu"), verdict.stderr_tail
    assert qpu.received(before) == 1 and qpu.backend.submissions[-1].ok
    assert verdict.qpu_s > 0 and verdict.reward > 0


@pytest.mark.slow
def test_the_noisy_tier_stops_what_only_noise_breaks(qpu):
    before = qpu.received()
    verdict = verify(qpu.tiered, RIGHT, tests=NOISELESS_TESTS)  # passes the ideal tier, not the noisy one
    assert (verdict.status, verdict.tier) == ("failed", "noisy"), verdict.stderr_tail
    assert qpu.received(before) == 0


@pytest.mark.slow
def test_with_no_tiers_every_candidate_goes_to_the_qpu_as_before(qpu):
    before = qpu.received()
    wrong, right = verify(qpu.untiered, WRONG), verify(qpu.untiered, RIGHT, sample_idx=1)
    assert (wrong.status, wrong.tier) == ("failed", "qpu"), wrong.stderr_tail
    assert (right.status, right.tier) == ("passed", "qpu"), right.stderr_tail
    assert qpu.received(before) == 2 and wrong.qpu_s > 0  # the wrong one spent QPU time too


@pytest.mark.slow
def test_candidate_code_cannot_choose_its_tier(qpu):
    before = qpu.received()
    verdict = verify(qpu.tiered, REACHES_FOR_THE_QPU)
    assert (verdict.status, verdict.tier) == ("failed", "ideal"), verdict.stderr_tail
    assert qpu.received(before) == 0, "code in a simulator tier reached the QPU"
    assert verdict.qpu_s == 0.0


@pytest.mark.slow
def test_a_group_that_fails_the_tier_spends_no_qpu_time_and_has_no_advantages(qpu):
    from actors.learner.algorithms.grpo import Grpo, GrpoConfig
    from actors.learner.samples import Rollout
    from actors.rollout.engine import RolloutCompletion

    before = qpu.received()
    failing = qpu.tiered.run([VerificationJob(task(), WRONG, index) for index in range(4)])
    assert [verdict.tier for verdict in failing] == ["ideal"] * 4 and qpu.received(before) == 0
    mixed = qpu.tiered.run([VerificationJob(task(), code, index) for index, code in enumerate([WRONG, RIGHT] * 2)])
    assert [verdict.tier for verdict in mixed] == ["ideal", "qpu"] * 2 and qpu.received(before) == 2

    def samples(verdicts):
        rollouts = [Rollout(task(), RolloutCompletion(task_id="bell", sample_idx=verdict.sample_idx, text="x",
                                                      token_ids=[5], logprobs=[-1.0], prompt_token_ids=[1]), verdict)
                    for verdict in verdicts]
        return Grpo(GrpoConfig(group_size=4)).train_samples(rollouts)

    assert all(sample.advantage == 0.0 for sample in samples(failing))
    assert [sample.advantage > 0 for sample in samples(mixed)] == [False, True] * 2


# ---------------------------------------------------------------- the parent's side, contracts, config

def test_the_parent_sends_no_qpu_request_of_a_simulator_tier_to_the_gateway():
    """Were a zygote to relay a QPU request during a simulator tier (it opens no channel there),
    the parent answers it with an error and never asks the gateway."""
    from actors.verify.forkserver import ForkServer
    from actors.verify.sandbox.frames import read_frame, write_frame

    asked = []
    for tier, expect_asked in (("ideal", False), ("qpu", True)):
        server = ForkServer.__new__(ForkServer)
        server.slot, server.qpu_handler = 0, lambda request, caller, step: asked.append(request) or {"result": "x"}
        requests_r, server._requests = os.pipe()
        server._replies, replies_w = os.pipe()
        write_frame(replies_w, {"qpu_request": {"op": "run", "backend": "ibm_manila"}})
        write_frame(replies_w, {"status": "error", "reason": "done", "parts": []})
        job = VerificationJob(task(), WRONG).payload(30, "shared", True, qpu_tier=tier)
        outcome = server.run(job)
        frames = [read_frame(requests_r, 5) for _ in range(4)]  # the job's three frames, then the answer
        answer = frames[3]["qpu_response"]
        assert outcome["status"] == "error" and outcome["qpu_s"] == 0.0
        assert frames[0]["qpu_tier"] == tier and "tests" not in frames[0]
        assert ("error" not in answer) is expect_asked and len(asked) == int(expect_asked), (tier, answer)
        for fd in (requests_r, replies_w, server._requests, server._replies):
            os.close(fd)


def test_the_tier_is_a_verdict_field_and_old_files_still_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.verify.qpu.figures import qpu_figures

    verdict = Verdict(task_id="t", sample_idx=0, status="failed", tests_passed=0, tests_total=1, reward=0.0,
                      tier="ideal")
    write_parquet([verdict], str(tmp_path / "new.parquet"))
    assert read_parquet(Verdict, str(tmp_path / "new.parquet")) == [verdict]
    old = {key: value for key, value in to_rows([verdict])[0].items() if key != "tier"}
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "old.parquet")
    assert read_parquet(Verdict, str(tmp_path / "old.parquet"))[0].tier == ""
    assert qpu_figures([verdict, Verdict("t", 1, "passed", 1, 1, 1.0, tier="qpu"), Verdict("u", 0, "passed", 1, 1, 1.0)]
                       )["stopped_by_tier"] == 1


def test_tiers_are_off_by_default_and_run_cheapest_first_each_once():
    assert VerifierConfig().tiers == []
    assert VerifierConfig(tiers=["ideal", "noisy"]).tiers == ["ideal", "noisy"]
    for wrong in (["noisy", "ideal"], ["ideal", "ideal"], ["qpu"]):
        with pytest.raises(ValueError):
            VerifierConfig(tiers=wrong)


def test_a_verdict_cache_key_does_not_move_with_the_tiers():
    """Tiers change only QPU tasks' verdicts, which are never kept: other keys stay valid."""
    from actors.verify.cache.key import verdict_key

    job = VerificationJob(Task(task_id="s", family="test", harness="program", prompt="", tests=""), "x = 1")
    assert verdict_key(job, VerifierConfig()) == verdict_key(job, VerifierConfig(tiers=["ideal"]))


# ---------------------------------------------------------------- the figure

@pytest.mark.slow
def test_bench_qpu_json_reports_qpu_use_with_and_without_tiers_and_the_disagreement(tmp_path):
    result = run_qvr("bench", "qpu", "qpu.jobs=4", "qpu.callers=2", "qpu.time_scale=200", "qpu.tiers.steps=1",
                     "qpu.tiers.group_size=2", "qpu.tiers.tier_sets=[[ideal]]", "qpu.tiers.slots=1",
                     f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    tiers = json.loads(result.stdout.strip().splitlines()[-1])["tiers"]
    only, tiered = tiers["qpu_only"], tiers["ideal"]
    for figures in (only, tiered):
        assert {"qpu_submissions_per_step", "qpu_s_per_step", "qpu_submissions_mean", "qpu_s_mean"} <= set(figures)
        assert len(figures["qpu_submissions_per_step"]) == 1
        assert figures["qpu_s_per_step"][0] == pytest.approx(figures["qpu_submissions_per_step"][0] * tiers["run_s"])
    assert {"disagreement_rate", "stopped_but_passed_on_qpu", "qpu_rerun_disagreement", "groups_without_qpu",
            "stopped_by_tier", "qpu_s_saved"} <= set(tiered)
    assert 0.0 <= tiered["disagreement_rate"] <= 1.0
    # The third task's group is all wrong (its right share is 0): with the tier it never reaches the QPU.
    assert tiered["groups_without_qpu"] >= 1 and tiered["stopped_by_tier"]["ideal"] >= 2
    assert tiered["qpu_submissions_per_step"][0] < only["qpu_submissions_per_step"][0]
