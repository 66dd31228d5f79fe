"""An embedded Ray's workers keep to their own cluster when another Ray starts on the same machine."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

DRIVER = textwrap.dedent("""
    import json, subprocess, sys, time
    import ray
    from pipelines.job import RayConfig, connect_ray

    connect_ray(RayConfig(num_cpus=1, include_dashboard=False))
    ours = ray.get_runtime_context().gcs_address
    # A second Ray, started after ours: Ray's address lookup without RAY_ADDRESS finds the newest.
    other = subprocess.Popen([sys.executable, "-c",
                              "import ray, time; ray.init(num_cpus=0, include_dashboard=False); "
                              "print(ray.get_runtime_context().gcs_address, flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        theirs = other.stdout.readline().strip()

        @ray.remote(num_cpus=0)
        def address_a_worker_finds():
            from ray._private.services import get_ray_address_from_environment
            return get_ray_address_from_environment(None, None)

        print(json.dumps({"ours": ours, "theirs": theirs, "found": ray.get(address_a_worker_finds.remote())}))
    finally:
        other.kill()
""")


def test_workers_of_an_embedded_ray_find_their_own_cluster_with_another_ray_beside_it():
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", DRIVER], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    addresses = json.loads(result.stdout.strip().splitlines()[-1])
    assert addresses["theirs"] and addresses["theirs"] != addresses["ours"]
    assert addresses["found"] == addresses["ours"], addresses


@pytest.mark.parametrize("message, tries", [
    ("The current node timed out during startup. This could happen because some of the raylet failed to "
     "startup or the GCS has become overloaded.", 2),
    ("some other failure", 1)])
def test_an_embedded_ray_whose_node_registers_late_is_started_again(monkeypatch, message, tries):
    """Ray waits a fixed 30 s for its raylet; on a busy machine the start is tried again, other
    errors are not."""
    import ray

    from pipelines import job

    calls: list[dict] = []

    def init(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise Exception(message)  # what ray/_private/node.py raises

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append({"shutdown": True}))
    if tries == 1:
        with pytest.raises(Exception, match="some other failure"):
            job._start_embedded(num_cpus=1)
        assert calls == [{"num_cpus": 1}]
    else:
        job._start_embedded(num_cpus=1)
        assert calls == [{"num_cpus": 1}, {"shutdown": True}, {"num_cpus": 1}]
