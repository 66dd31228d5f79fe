"""VerifierPool on a local Ray: exactly-once verdicts through a worker's death, and resizing under load."""

import asyncio
import collections

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.pool import PoolConfig, VerifierPool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, namespace="qvr-test-pool")
    yield ray
    ray.shutdown()


def jobs(count: int, prefix: str) -> list[VerificationJob]:
    task = Task(task_id=f"{prefix}", family="test", harness="program", prompt="", tests="")
    return [VerificationJob(task, f"assert {i} == {i}", sample_idx=i) for i in range(count)]


def test_500_verifications_survive_a_killed_worker(ray_local):
    pool = VerifierPool(VerifierConfig(), PoolConfig(initial_workers=3, max_workers=3, cpus_per_slot=0.5, autoscale=False))

    async def run():
        verdicts = []
        async for verdict in pool.submit(jobs(500, "kill")):
            verdicts.append(verdict)
            if len(verdicts) == 150:
                ray_local.kill(next(iter(pool.workers.values())).actor)
        return verdicts

    try:
        verdicts = asyncio.run(run())
    finally:
        pool.close()
    keys = [(v.task_id, v.sample_idx) for v in verdicts]
    assert len(keys) == 500 and len(set(keys)) == 500
    assert collections.Counter(v.status for v in verdicts) == {"passed": 500}
    assert [event for _, event, _ in pool.events].count("lost") >= 1


def test_resize_up_and_down_under_load(ray_local):
    pool = VerifierPool(VerifierConfig(), PoolConfig(initial_workers=1, max_workers=3, cpus_per_slot=0.5, autoscale=False))
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
    keys = {(v.task_id, v.sample_idx) for v in verdicts}
    assert len(verdicts) == len(keys) == 240
    assert sizes == [3, 1]
    events = [event for _, event, _ in pool.events]
    assert events.count("start") == 3 and events.count("retire") == 2


def test_autoscaler_grows_with_the_backlog(ray_local):
    pool = VerifierPool(VerifierConfig(), PoolConfig(initial_workers=1, min_workers=1, max_workers=2, cpus_per_slot=0.5,
                                                     scale_up_backlog_per_slot=4, batch_size=2))
    try:
        verdicts = pool.verify(jobs(120, "scale"))
    finally:
        pool.close()
    assert [(v.sample_idx) for v in verdicts] == list(range(120))
    assert max(workers for _, _, workers in pool.events) == 2


def test_verifier_resource_pins_workers(ray_local):
    """Without a node that offers the `verifier` resource, a pinned pool cannot place its workers."""
    pool = VerifierPool(VerifierConfig(), PoolConfig(initial_workers=1, use_verifier_resource=True, cpus_per_slot=0.5))
    try:
        worker = next(iter(pool.workers.values())).actor
        ready, _ = ray_local.wait([worker.ping.remote()], timeout=3)
        assert ready == []
    finally:
        pool.close()
