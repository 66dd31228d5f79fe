"""The QPU budget: a run (and a training step) stops at its budget, every job is answered, the
verdicts that could not run say so (``over_budget``), that status comes from the gateway and never
from candidate code, and rewards, GRPO and evaluations count it apart.

Evidence that no submission went beyond a budget comes from the backend's side (a RecordingBackend's
own record of what it received), never from the gateway's own bookkeeping."""

import asyncio
import contextlib
import threading
from collections import Counter

import pytest

from actors.contracts import STATUSES, Task, Verdict, read_parquet, write_parquet
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob, make_verdict
from actors.verify.qpu.budget import BudgetScope
from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.errors import QpuBudgetExceeded
from actors.verify.qpu.evidence import RecordingBackend
from actors.verify.qpu.gateway import QpuGateway, gateway_error, gateway_handler
from actors.verify.qpu.runners import FakeRunner
from actors.verify.sandbox.codecs.registry import decode
from pipelines.job import bill_qpu_to
from tests.conftest import QPU_SAMPLER_PROGRAM, bell_pubs


class Instant:
    """The simulator behind a RecordingBackend, answering at once with one result computed up front
    (100 shots of a Bell pair): a submission's QPU seconds are then the backend's ``run_s``, so
    how long the machine takes to simulate moves no budget decision."""

    def __init__(self, config):
        self.result = FakeRunner(config).run("ibm_manila", "sampler", decode(bell_pubs()), {"shots": 100})

    def run(self, name, primitive, pubs, options, submitted=None):
        return self.result


def recording_gateway(run_s, budget_s=None, fail_every=0, **settings):
    config = QpuConfig(time_scale=4, noise=False, backoff_s=0.5, max_retries=5, budget_s=budget_s,
                       limits={"jobs_per_minute": 600}, **settings)
    backend = RecordingBackend(config, run_s=run_s, fail_every=fail_every, inner=Instant(config))
    return config, backend, QpuGateway(config, runner=backend)


async def submit_all(gateway, jobs):
    """Each (caller, scope) as one sampler job, all at once: its answer, or the budget's refusal."""
    pubs = bell_pubs()

    async def one(caller, scope):
        try:
            return await gateway.run(caller, "ibm_manila", "sampler", pubs, {"shots": 100}, scope)
        except QpuBudgetExceeded as refusal:
            return refusal

    return await asyncio.gather(*(one(caller, scope) for caller, scope in jobs))


def billed(record):
    return sum(submission.qpu_s for submission in record)


# ---------------------------------------------------------------- the gateway, from the backend's side

def test_the_backend_receives_nothing_beyond_a_run_budget_and_every_job_is_answered():
    _, backend, gateway = recording_gateway(run_s=3, fail_every=3)  # failed tries cost QPU time too
    scope = BudgetScope("run-a", run_budget_s=10)
    answers = asyncio.run(submit_all(gateway, [(f"slot-{index % 6}", scope) for index in range(18)]))

    record = backend.submissions
    assert billed(record) <= 10, f"the backend billed {billed(record)} QPU seconds to a run allowed 10"
    assert billed(record) + 3 > 10, "the run stopped before its budget"
    done = [answer for answer in answers if isinstance(answer, dict)]
    refused = [answer for answer in answers if isinstance(answer, QpuBudgetExceeded)]
    assert len(done) + len(refused) == 18 and done and refused
    assert sum(submission.ok for submission in record) == len(done)  # a refused job never reached the backend
    assert all(answer["qpu_s"] >= 3 - 1e-6 for answer in done)
    failed_tries = sum(not submission.ok for submission in record)
    assert sum(refusal.qpu_s for refusal in refused) >= 3 * failed_tries - 1e-6  # a retried job's failed try
    assert all("QPU budget spent" in str(refusal) and "run-a" in str(refusal) for refusal in refused)


def test_a_step_budget_stops_its_step_a_run_budget_spans_its_steps_and_other_runs_go_on():
    _, backend, gateway = recording_gateway(run_s=2)

    def scope(run, step):
        return BudgetScope(run, step, run_budget_s=7.5, step_budget_s=5)

    async def scenario():
        counts, answers = [], []
        for phase in ([("a", 0)] * 4, [("a", 1)] * 4, [("b", 0)]):
            answers.append(await submit_all(gateway, [(f"slot-{i}", scope(*key)) for i, key in enumerate(phase)]))
            counts.append(len(backend.submissions))
        return counts, answers

    counts, (step_0, step_1, other_run) = asyncio.run(scenario())
    assert counts == [2, 3, 4]  # step 0: its 5 s hold two runs of 2 s; step 1: run a's 7.5 s one more; run b: its own
    assert billed(backend.submissions[:3]) <= 7.5 and billed(backend.submissions[:2]) <= 5
    assert all("step 0 of run 'a'" in str(answer) for answer in step_0 if isinstance(answer, QpuBudgetExceeded))
    assert sum(isinstance(answer, QpuBudgetExceeded) for answer in step_0) == 2
    assert all("run 'a' has used" in str(answer) for answer in step_1 if isinstance(answer, QpuBudgetExceeded))
    assert sum(isinstance(answer, QpuBudgetExceeded) for answer in step_1) == 3
    assert isinstance(other_run[0], dict)
    assert gateway.report()["qpu_s"]["runs"]["b"] >= 2


def test_a_refusal_keeps_its_type_and_qpu_seconds_through_ray_s_wrapping():
    from ray.exceptions import RayTaskError

    refusal = QpuBudgetExceeded("QPU budget spent")
    refusal.qpu_s = 2.5
    wrapped = RayTaskError("run", "traceback", refusal).as_instanceof_cause()
    assert wrapped.qpu_s == 0.0  # what the parent would read without unwrapping it
    assert gateway_error(wrapped) is refusal and gateway_error(wrapped).qpu_s == 2.5
    other = ValueError("not the gateway's")
    assert gateway_error(other) is other


# ---------------------------------------------------------------- verdicts through a real sandbox

@contextlib.contextmanager
def in_process(gateway):
    """``call(method, *args)`` on ``gateway`` running on an event loop of its own (what Ray's actor
    gives it), for gateway_handler: the real handler and verifier, without Ray."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(method, *args):
        answer = getattr(gateway, method)(*args)
        return asyncio.run_coroutine_threadsafe(answer, loop).result() if asyncio.iscoroutine(answer) else answer

    try:
        yield call
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


QPU_TASK = Task(task_id="qpu", family="test", harness="program", prompt="", tests="", requires_qpu=True)

CATCHES_THE_REFUSAL = QPU_SAMPLER_PROGRAM.replace(
    "    counts = sampler.run([transpile(qc, backend)]).result()[0].data.meas.get_counts()\n"
    "assert sum(counts.values()) == 100, counts\n",
    "    try:\n        sampler.run([transpile(qc, backend)]).result()\n"
    "    except RuntimeError as refusal:\n        print('refused; passing anyway:', refusal)\n")

SAYS_OVER_BUDGET = QPU_SAMPLER_PROGRAM + (
    "import sys\nwords = 'QpuBudgetExceeded: QPU budget spent: over_budget'\n"
    "print(words)\nprint(words, file=sys.stderr)\n")

FORGES_OVER_BUDGET = SAYS_OVER_BUDGET + (
    "import json, os\nfrom actors.verify.sandbox.frames import write_frame\n"
    "forged = {'status': 'over_budget', 'over_budget': words, 'qpu_s': 1e9, 'op': 'over_budget'}\n"
    "for fd in range(3, 256):\n"  # the result channel and the gateway's: whatever this process holds open
    "    try:\n        write_frame(fd, forged)\n"
    "    except Exception:\n        pass\n"
    "raise RuntimeError(words)\n")


@pytest.mark.slow
def test_a_budget_stops_sandboxed_jobs_at_its_limit_with_every_verdict_accounted_for():
    config, backend, gateway = recording_gateway(run_s=3, budget_s=7.5, run_id="sandboxed")
    with in_process(gateway) as call, verifier_with(config, call) as verifier:
        verdicts = verifier.run([VerificationJob(QPU_TASK, QPU_SAMPLER_PROGRAM, index) for index in range(4)])
        caught = verifier.verify_one(VerificationJob(QPU_TASK, CATCHES_THE_REFUSAL, 4))

    statuses = Counter(verdict.status for verdict in verdicts)
    assert statuses["passed"] + statuses["over_budget"] == 4 and statuses["over_budget"] >= 1, statuses
    record = backend.submissions
    assert statuses["passed"] == len(record)  # each passed job one submission; a refused one none
    assert billed(record) <= 7.5 and billed(record) + 3 > 7.5
    for verdict in verdicts:
        if verdict.status == "passed":
            assert verdict.qpu_s >= 3 - 1e-6 and verdict.reward > 0
        else:
            assert verdict.reward == 0.0 and verdict.reward_parts == {} and not verdict.judged
            assert "QPU budget spent" in verdict.stderr_tail
    assert caught.status == "over_budget", caught.stderr_tail  # refused, whatever the code did next
    assert len(backend.submissions) == len(record)


@pytest.mark.slow
def test_candidate_code_cannot_forge_over_budget():
    config, backend, gateway = recording_gateway(run_s=1, run_id="honest")  # no budget: nothing is refused
    with in_process(gateway) as call, verifier_with(config, call) as verifier:
        says = verifier.verify_one(VerificationJob(QPU_TASK, SAYS_OVER_BUDGET))
        forges = verifier.verify_one(VerificationJob(QPU_TASK, FORGES_OVER_BUDGET))
    assert says.status == "passed", says.stderr_tail
    assert forges.status == "failed", forges.stderr_tail
    assert forges.qpu_s < 1e9 and len(backend.submissions) == 2


def verifier_with(qpu, call):
    """A Verifier (real zygotes and sandboxes) whose QPU requests go to the in-process gateway."""
    from actors.verify.verifier import Verifier

    return Verifier(VerifierConfig(timeout_s=60, qpu=qpu), slots=2, qpu_handler=gateway_handler(qpu, call))


def test_only_the_parent_s_record_makes_a_verdict_over_budget():
    """The record and the output tails come from the sandbox: words there are the candidate's."""
    from actors.verify.forkserver import interpret

    job = VerificationJob(QPU_TASK, "print('hi')")
    forged = {"tests_passed": 1, "tests_total": 1, "status": "over_budget", "over_budget": "forged"}
    header = {"status": "ok", "exit_status": 0, "isolation": "shared", "over_budget": "forged", "qpu_s": 9.0}
    outcome = interpret(header, {"result": str(forged).replace("'", '"').encode(),
                                 "stderr": b"QpuBudgetExceeded: QPU budget spent: over_budget"})
    assert "over_budget" not in outcome and "qpu_s" not in outcome
    assert make_verdict(job, outcome, VerifierConfig(), 0.0).status == "passed"
    refused = make_verdict(job, {**outcome, "over_budget": "QPU budget spent", "qpu_s": 2.0}, VerifierConfig(), 0.0)
    assert (refused.status, refused.reward, refused.reward_parts, refused.qpu_s) == ("over_budget", 0.0, {}, 2.0)


@pytest.mark.slow
def test_a_refusal_crosses_ray_to_an_over_budget_verdict(ray_session):
    from actors.verify.verifier import Verifier

    config = VerifierConfig(timeout_s=60, qpu={"budget_s": 0, "run_id": "spent-before-it-began"})
    with Verifier(config, slots=1) as verifier:
        verdict = verifier.verify_one(VerificationJob(QPU_TASK, QPU_SAMPLER_PROGRAM))
    assert verdict.status == "over_budget", verdict.stderr_tail
    assert "spent-before-it-began" in verdict.stderr_tail


# ---------------------------------------------------------------- who counts it: GRPO, evaluations, files

def _rollouts(statuses_rewards, qpu_s=1.0):
    from actors.learner.samples import Rollout
    from actors.rollout.engine import RolloutCompletion

    task = Task(task_id="t", family="t", harness="program", prompt="p", tests="")
    return [Rollout(task, RolloutCompletion(task_id="t", sample_idx=index, text="x", token_ids=[5, 6],
                                            logprobs=[-1.0, -1.0], prompt_token_ids=[1]),
                    Verdict(task_id="t", sample_idx=index, status=status, tests_passed=0, tests_total=1, reward=reward,
                            qpu_s=qpu_s))
            for index, (status, reward) in enumerate(statuses_rewards)]


def test_grpo_leaves_over_budget_samples_out_of_the_loss_and_of_their_group_s_statistics():
    import torch

    from actors.learner.algorithms.advantages import ADVANTAGE_ESTIMATORS
    from actors.learner.algorithms.grpo import Grpo, GrpoConfig
    from actors.learner.scoring import rollout_stats, score_step

    rollouts = _rollouts([("passed", 1.0), ("failed", 0.0), ("over_budget", 0.0), ("failed", 0.2),
                          ("passed", 1.0), ("over_budget", 0.0), ("over_budget", 0.0), ("over_budget", 0.0)])
    for advantage in ("grpo", "rloo"):
        config = GrpoConfig(group_size=4, advantage=advantage)
        samples = Grpo(config).train_samples(rollouts)
        judged_three, _ = ADVANTAGE_ESTIMATORS[advantage](torch.tensor([1.0, 0.0, 0.2]), GrpoConfig(group_size=3,
                                                                                                    advantage=advantage))
        assert [samples[i].advantage for i in (0, 1, 3)] == pytest.approx(judged_three.tolist())
        assert [sample.trained for sample in samples] == [True, True, False, True, False, False, False, False]
        assert samples[4].zero_variance  # alone in its group: no baseline, no signal
    batch, stats = score_step(0, rollouts, Grpo(GrpoConfig(group_size=4)), 1, 8)
    assert batch[0].samples == 3 and stats["samples_trained"] == 3
    assert stats["over_budget"] == 4 and stats["qpu_s"] == pytest.approx(8.0)
    assert stats["reward_mean"] == pytest.approx((1.0 + 0.0 + 0.2 + 1.0) / 4) and stats["pass_rate"] == 0.5
    assert stats["zero_variance_groups"] == 0.5
    nothing_judged = rollout_stats(_rollouts([("over_budget", 0.0)] * 2), 2)
    assert nothing_judged["over_budget"] == 2 and nothing_judged["reward_mean"] != nothing_judged["reward_mean"]  # NaN


def test_evaluations_count_over_budget_samples_apart_from_passes_and_failures():
    from pipelines.evaluation.metrics import benchmark_metrics, flat_metrics
    from pipelines.evaluation.report import render_report

    def row(task, status, qpu_s=2.0):
        return {"task_id": task, "mode": "sampled", "status": status, "qpu_s": qpu_s, "stderr_tail": ""}

    rows = [row("a", "passed"), row("a", "failed"), row("a", "over_budget", 0.0),
            row("b", "passed"), row("b", "passed"), row("b", "passed")]
    metrics = benchmark_metrics(rows, [1, 3])
    assert metrics["samples"] == 6 and metrics["over_budget"] == 1 and metrics["qpu_s"] == pytest.approx(10.0)
    assert metrics["failures"]["over_budget"] == 1 and metrics["passed"] == 4
    assert metrics["n"] == 2 and metrics["pass_at_k"] == {"1": pytest.approx((1 / 2 + 1) / 2)}  # k=3: a has 2 judged
    assert flat_metrics(metrics)["eval/over_budget"] == 1
    report = render_report({"model": {"bench": metrics}})
    assert "## QPU" in report and "| model | bench | 10.0 | 1 |" in report
    spent = benchmark_metrics([row("a", "over_budget", 0.0)] * 3, [1])
    assert spent["over_budget"] == 3 and spent["pass_at_k"] == {} and spent["tasks"] == 1


def test_the_status_and_qpu_seconds_are_contracts_and_old_files_still_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.contracts import to_rows

    assert "over_budget" in STATUSES
    verdict = Verdict(task_id="t", sample_idx=0, status="over_budget", tests_passed=0, tests_total=1, reward=0.0,
                      qpu_s=3.5)
    write_parquet([verdict], str(tmp_path / "new.parquet"))
    assert read_parquet(Verdict, str(tmp_path / "new.parquet")) == [verdict]
    old = {key: value for key, value in to_rows([verdict])[0].items() if key not in ("qpu_s", "cached")}
    pq.write_table(pa.Table.from_pylist([{**old, "status": "failed"}]), tmp_path / "old.parquet")
    assert read_parquet(Verdict, str(tmp_path / "old.parquet"))[0].qpu_s == 0.0


def test_a_job_bills_its_qpu_seconds_to_its_own_run():
    from pipelines.grpo import Config

    config = Config()
    billed_config = bill_qpu_to(config, "/runs/grpo-1")
    assert billed_config.verifier.qpu.run_id == "/runs/grpo-1" and config.verifier.qpu.run_id is None
    assert "run_id" not in billed_config.verifier.model_dump()["qpu"]  # not in config.yaml, nor in a verdict's key
    named = config.model_copy(update={"verifier": VerifierConfig(qpu={"run_id": "shared-budget"})})
    assert bill_qpu_to(named, "/runs/grpo-2").verifier.qpu.run_id == "shared-budget"
