"""The pool asks Ray's autoscaler for room when its workers cannot be placed, and withdraws the
request once they run. The evidence is what the cluster's GCS holds (what an autoscaler, e.g.
KubeRay's, reads), and a node added in answer lets the queued job finish."""

import json
import threading
import time

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.pool.config import PoolConfig
from actors.verify.pool.pool import VerifierPool

pytestmark = pytest.mark.slow


def requested_bundles() -> list[dict[str, float]]:
    """The resource request the autoscaler would act on, read back from the GCS."""
    from ray.autoscaler.v2.utils import is_autoscaler_v2

    if is_autoscaler_v2():
        from ray._raylet import GcsClient
        from ray.autoscaler.v2.sdk import get_cluster_resource_state
        from ray.experimental.internal_kv import internal_kv_get_gcs_client

        state = get_cluster_resource_state(GcsClient(address=internal_kv_get_gcs_client().address))
        return [dict(request.resources_bundle) for constraint in state.cluster_resource_constraints
                for bundle in constraint.resource_requests for request in [bundle.request]
                for _ in range(bundle.count)]
    from ray.autoscaler._private.constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
    return json.loads(raw) if raw else []


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_pool_without_room_asks_the_autoscaler_and_withdraws_once_placed(no_ray, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    # Ray's test cluster names itself the machine's current cluster (/tmp/ray/ray_current_cluster):
    # an embedded Ray started beside it (another test process) would join it instead. It is joined by address.
    monkeypatch.setattr(ray._private.utils, "write_ray_address", lambda *args, **kwargs: None)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    ray.init(address=cluster.address, namespace="qvr-test-autoscaler")
    pool = None
    try:
        pool = VerifierPool(VerifierConfig(), PoolConfig(slots_per_worker=2, cpus_per_slot=0.5,
                                                         use_verifier_resource=True))
        task = Task(task_id="room", family="test", harness="program", prompt="", tests="")
        verdicts: list = []
        runner = threading.Thread(target=lambda: verdicts.extend(pool.run([VerificationJob(task, "x = 1", 0)])))
        runner.start()
        # No node has a `verifier` resource: the worker waits, and the pool asks for its shape.
        assert wait_for(requested_bundles, 60, "a resource request") == [{"CPU": 1.0, "verifier": 2.0}]
        assert runner.is_alive() and not verdicts
        cluster.add_node(num_cpus=1, resources={"verifier": 2})  # what KubeRay would do
        runner.join(timeout=300)
        assert [verdict.status for verdict in verdicts] == ["passed"]
        assert wait_for(lambda: requested_bundles() == [], 30, "the request to be withdrawn")
    finally:
        if pool is not None:
            pool.close()
        ray.shutdown()
        cluster.shutdown()
