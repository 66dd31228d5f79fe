"""VerifierPool on a local Ray: every input comes out exactly once, as a verdict, through slow
batches, killed workers and a job that kills its worker every time; resizing under load;
isolation calibration inside the pool."""

import asyncio
import collections
import os
import time

import pytest

from actors.contracts import Completion, Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.pool.config import PoolConfig
from actors.verify.pool.pool import VerifierPool, calibration_key
from tests.conftest import QPU_SAMPLER_PROGRAM

pytestmark = pytest.mark.slow


def jobs(count: int, prefix: str, code: str = "assert {i} == {i}") -> list[VerificationJob]:
    task = Task(task_id=f"{prefix}", family="test", harness="program", prompt="", tests="")
    return [VerificationJob(task, code.format(i=i), sample_idx=i) for i in range(count)]


def keys(items) -> collections.Counter:
    """(task_id, sample_idx) of jobs or verdicts, with multiplicity."""
    return collections.Counter((item.task.task_id, item.sample_idx) if isinstance(item, VerificationJob)
                               else (item.task_id, item.sample_idx) for item in items)


def test_500_verifications_survive_a_killed_worker(ray_session):
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=3, cpus_per_slot=0.5))

    async def run():
        verdicts = []
        async for verdict in pool.submit(jobs(500, "kill")):
            verdicts.append(verdict)
            if len(verdicts) == 150:
                ray_session.kill(next(iter(pool.workers.values())).actor)
        return verdicts

    try:
        verdicts = asyncio.run(run())
    finally:
        pool.close()
    assert keys(verdicts) == keys(jobs(500, "kill"))
    assert collections.Counter(v.status for v in verdicts) == {"passed": 500}
    assert [event for _, event, _ in pool.events].count("lost") >= 1


def test_a_batch_slower_than_the_health_check_passes(ray_session):
    """A busy worker answers its pings (they run on their own thread): a legitimate 6 s program
    with pings every second is neither killed nor re-run."""
    pool = VerifierPool(VerifierConfig(timeout_s=30), PoolConfig(workers=1, cpus_per_slot=0.5, health_check_s=1,
                                                                 health_grace_s=60, max_attempts=2))
    slow = jobs(2, "slow", "import time\ntime.sleep(6)\nassert {i} == {i}")
    try:
        verdicts = pool.run(slow)
    finally:
        pool.close()
    assert keys(verdicts) == keys(slow)
    assert [v.status for v in verdicts] == ["passed", "passed"], [v.stderr_tail for v in verdicts]
    assert all(v.duration_s >= 6 for v in verdicts)
    assert "lost" not in [event for _, event, _ in pool.events]


def test_a_worker_killed_mid_batch_has_its_jobs_rerun(ray_session):
    """ray.kill on a worker while it verifies real, slow, legitimate work: every input still
    yields exactly one verdict, and the re-run ones pass."""
    pool = VerifierPool(VerifierConfig(timeout_s=30), PoolConfig(workers=2, cpus_per_slot=0.5, batch_size=1,
                                                                 health_check_s=1))
    slow = jobs(4, "midbatch", "import time\ntime.sleep(3)\nassert {i} == {i}")
    killed: list[int] = []

    async def kill_one_busy_worker():
        while not killed:
            for worker in list(pool.workers.values()):
                batch = worker.in_flight[0] if worker.in_flight else None
                if batch is not None and batch.started is not None and time.monotonic() - batch.started > 1:
                    killed.extend(item.key for item in batch.items)
                    ray_session.kill(worker.actor)
                    break
            await asyncio.sleep(0.1)

    async def run():
        killer = asyncio.create_task(kill_one_busy_worker())
        verdicts = [verdict async for verdict in pool.submit(slow)]
        killer.cancel()
        return verdicts

    try:
        verdicts = asyncio.run(run())
    finally:
        pool.close()
    assert killed, "no worker was killed mid-batch"
    assert keys(verdicts) == keys(slow)
    assert collections.Counter(v.status for v in verdicts) == {"passed": 4}, [v.stderr_tail for v in verdicts]
    assert [event for _, event, _ in pool.events].count("lost") == 1


def poison_worker():
    """A worker that dies (its process exits, as on a segfault or the OOM killer) whenever it is
    handed the poisoned job. The sandboxed child cannot kill its worker, so the test does."""
    from actors.verify.pool.worker import VerifierWorker

    class PoisonWorker(VerifierWorker):
        def verify_batch(self, keys, jobs):
            if any("POISON" in (job.code or "") for job in jobs):
                os._exit(1)
            return super().verify_batch(keys, jobs)

    return PoisonWorker


def test_a_job_that_kills_its_worker_every_time_comes_out_as_an_error(ray_session):
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=2, cpus_per_slot=0.5, batch_size=3, max_attempts=3,
                                                     health_check_s=2), worker_class=poison_worker())
    inputs = jobs(8, "poison")
    inputs[2] = VerificationJob(inputs[2].task, "# POISON\nassert True", sample_idx=2)
    try:
        verdicts = pool.run(inputs)
    finally:
        pool.close()
    assert keys(verdicts) == keys(inputs)
    poisoned = verdicts[2]
    assert poisoned.status == "error" and "3 attempts" in poisoned.stderr_tail, poisoned.stderr_tail
    assert [v.status for i, v in enumerate(verdicts) if i != 2] == ["passed"] * 7
    assert [event for _, event, _ in pool.events].count("lost") == 3


def test_workers_that_cannot_start_end_the_call_with_their_error(ray_session):
    """No verdict can come from a pool none of whose workers starts (a sandbox the kernel refuses,
    a broken image): the call fails naming why, rather than waiting forever or inventing verdicts."""
    from actors.verify.pool.worker import VerifierWorker

    def broken_worker():
        class BrokenWorker(VerifierWorker):
            def __init__(self, config, slots):
                raise RuntimeError("no sandbox on this node")

        return BrokenWorker

    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, cpus_per_slot=0.5), worker_class=broken_worker())
    try:
        with pytest.raises(RuntimeError, match="(?s)fail to start.*no sandbox on this node"):
            pool.run(jobs(2, "broken"))
    finally:
        pool.close()


def test_calibration_marks_the_task_and_answers_its_reference(ray_session):
    """A task whose reference mutates its argument passes only shared: the pool finds that once,
    marks the task, answers the reference job with the calibration's verdict and runs the other
    completions in the chosen mode."""
    task = Task(task_id="calibrate/in-place", family="test", harness="qhe", prompt="def fill(box: list) -> None:\n",
                tests="def check(candidate):\n    box = []\n    candidate(box)\n    assert box == [1]\n",
                entry_point="fill", reference_solution="    box.append(1)\n")
    plain = Task(task_id="calibrate/plain", family="test", harness="program", prompt="", tests="",
                 reference_solution="assert True\n")
    completions = [Completion(task.task_id, 0, task.reference_solution), Completion(task.task_id, 1, "    box += [1]\n"),
                   Completion(task.task_id, 2, "    pass\n"), Completion(plain.task_id, 0, "assert 1 + 1 == 2\n")]
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, slots_per_worker=2, cpus_per_slot=0.5))
    try:
        verdicts = pool.verify([task, plain], completions)
    finally:
        pool.close()
    assert keys(verdicts) == collections.Counter((c.task_id, c.sample_idx) for c in completions)
    assert task.metadata["isolation"] == "shared" and plain.metadata["isolation"] == "split"
    assert pool.modes == {calibration_key(task): "shared", calibration_key(plain): "split"}
    assert [(v.status, v.isolation) for v in verdicts] == [("passed", "shared"), ("passed", "shared"),
                                                           ("failed", "shared"), ("passed", "split")]


def test_pairs_hands_each_job_back_with_its_verdict_and_calibrates_namesakes_apart(ray_session):
    """pairs(): every job comes back itself, with the context its caller set (here one no worker
    could take: it stays in the driver), though (task_id, sample_idx) repeats. Two tasks that share
    an id but not their tests (as QHE and QHE-hard do) are calibrated apart: one needs the shared
    mode, the other runs split, and each reference is answered by its own calibration."""
    import threading

    lock = threading.Lock()  # cannot be pickled: a context sent to a worker would fail the batch
    in_place = Task(task_id="namesake/0", family="test", harness="qhe", prompt="def fill(box: list) -> None:\n",
                    tests="def check(candidate):\n    box = []\n    candidate(box)\n    assert box == [1]\n",
                    entry_point="fill", reference_solution="    box.append(1)\n")
    plain = Task(task_id="namesake/0", family="test", harness="program", prompt="", tests="",
                 reference_solution="assert True\n")
    expected = {"in-place reference": ("passed", "shared"), "in-place wrong": ("failed", "shared"),
                "plain reference": ("passed", "split"), "plain wrong": ("failed", "split")}
    inputs = [VerificationJob(in_place, in_place.reference_solution, 0, context=("in-place reference", lock)),
              VerificationJob(in_place, "    pass\n", 0, context=("in-place wrong", lock)),
              VerificationJob(plain, plain.reference_solution, 0, context=("plain reference", lock)),
              VerificationJob(plain, "assert False\n", 0, context=("plain wrong", lock))]
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, slots_per_worker=2, cpus_per_slot=0.5))

    async def run():
        return [pair async for pair in pool.pairs(inputs)]

    try:
        pairs = asyncio.run(run())
    finally:
        pool.close()
    assert sorted(id(job) for job, _ in pairs) == sorted(id(job) for job in inputs)  # each job itself, once
    assert {job.context[0]: (verdict.status, verdict.isolation) for job, verdict in pairs} == expected
    assert all(job.context[1] is lock for job, _ in pairs)
    assert in_place.metadata["isolation"] == "shared" and plain.metadata["isolation"] == "split"


def test_qpu_tasks_reach_the_gateway_through_the_pool(ray_session):
    """verifier.qpu_gateway through the pool: the sandbox's runtime primitives reach the gateway;
    such a task runs shared and is never calibrated."""
    task = Task(task_id="pool/qpu", family="test", harness="program", prompt="", tests="", requires_qpu=True,
                reference_solution=QPU_SAMPLER_PROGRAM)
    pool = VerifierPool(VerifierConfig(timeout_s=60), PoolConfig(workers=1, cpus_per_slot=0.5, health_check_s=1))
    try:
        [verdict] = pool.run([VerificationJob(task, QPU_SAMPLER_PROGRAM, 0)])
    finally:
        pool.close()
    assert verdict.status == "passed", verdict.stderr_tail
    assert verdict.qpu_wait_s > 0 and verdict.isolation == "shared"
    assert "isolation" not in task.metadata and pool.modes == {}


def test_resize_up_and_down_under_load(ray_session):
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, cpus_per_slot=0.5))
    sizes = []

    async def run():
        verdicts = []
        async for verdict in pool.submit(jobs(240, "resize")):
            verdicts.append(verdict)
            if len(verdicts) == 40:
                pool.resize(3)
            if len(verdicts) == 160:
                sizes.append(pool.live_workers())
                pool.resize(1)
        return verdicts

    try:
        verdicts = asyncio.run(run())
        sizes.append(pool.live_workers())
    finally:
        pool.close()
    assert keys(verdicts) == keys(jobs(240, "resize"))
    assert sizes == [3, 1]
    events = [event for _, event, _ in pool.events]
    assert events.count("start") == 3 and events.count("retire") == 2


def test_autoscaler_grows_with_the_backlog(ray_session):
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, min_workers=1, max_workers=2, cpus_per_slot=0.5,
                                                     scale_up_backlog_per_slot=4, batch_size=2, autoscale=True))
    try:
        verdicts = pool.run(jobs(120, "scale"))
    finally:
        pool.close()
    assert [(v.sample_idx) for v in verdicts] == list(range(120))
    assert max(workers for _, _, workers in pool.events) == 2


def test_verifier_resource_pins_workers(ray_session):
    """Without a node that offers the `verifier` resource, a pinned pool cannot place its workers."""
    pool = VerifierPool(VerifierConfig(), PoolConfig(workers=1, use_verifier_resource=True, cpus_per_slot=0.5))
    try:
        worker = next(iter(pool.workers.values())).actor
        ready, _ = ray_session.wait([worker.ping.remote()], timeout=3)
        assert ready == []
    finally:
        pool.close()
