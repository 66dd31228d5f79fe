"""Workers that the Ray cluster cannot hold (pipelines/cluster.py): where the cluster cannot grow the
job exits 2 at once, naming the setting and what the cluster has; where an autoscaler can add nodes
it waits for them, with one line saying so, and goes on once they come."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from actors.learner.config import LearnerConfig
from actors.rollout.config import RolloutConfig
from actors.verify.pool.config import PoolConfig
from pipelines.cluster import (
    Demand,
    describe_cluster,
    growth_from_v1_report,
    growth_from_v2_status,
    learner_demand,
    pool_demand,
    rollout_demand,
    unmet,
)
from tests.conftest import ROOT, child_env

LAPTOP = [{"CPU": 2.0, "memory": 16 * 1024 ** 3, "object_store_memory": 4 * 1024 ** 3, "node:10.0.0.1": 1.0}]


def qvr(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "qvr"
    return subprocess.run([str(script), *args], cwd=ROOT, env=env or child_env(), capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------- what fits where (no Ray)


def test_a_bundle_no_node_holds_names_its_setting():
    problems = unmet([pool_demand(PoolConfig(workers=8, slots_per_worker=16, use_verifier_resource=True))], LAPTOP)
    assert len(problems) == 1
    assert problems[0].startswith("pool.use_verifier_resource=true")
    assert "pool.workers=8" in problems[0] and "verifier 16" in problems[0] and "no node has `verifier`" in problems[0]
    assert "the largest node has 2 CPU" in problems[0]


def test_gpus_of_rollout_and_learner_on_a_cpu_machine():
    problems = unmet([rollout_demand(RolloutConfig(num_gpus=1)),
                      learner_demand(LearnerConfig(use_gpu=True, workers=1))], LAPTOP)
    assert [problem.split(":")[0] for problem in problems] == ["rollout.num_gpus=1",
                                                               "learner.use_gpu=true (one GPU per rank)"]
    assert all("no node has `GPU`" in problem for problem in problems)


def test_workers_that_run_together_must_fit_the_whole_cluster_but_phases_do_not_add_up():
    pool = pool_demand(PoolConfig(workers=2, slots_per_worker=1, cpus_per_slot=1.0))
    learner = learner_demand(LearnerConfig(workers=2, cpus_per_worker=1.0))
    problems = unmet([pool, learner], LAPTOP)
    assert len(problems) == 1 and "need 4 CPU" in problems[0] and "all nodes together have 2" in problems[0]
    assert "pool.workers=2" in problems[0] and "learner.workers=2" in problems[0]
    assert unmet([pool, learner_demand(LearnerConfig(workers=2, cpus_per_worker=1.0), phase="train")], LAPTOP) == []
    two_nodes = [{"CPU": 2.0}, {"CPU": 2.0}]
    assert unmet([pool, learner], two_nodes) == []


def test_what_fits_is_no_problem_and_fractions_count():
    assert unmet([pool_demand(PoolConfig(slots_per_worker=2, cpus_per_slot=0.25)),
                  rollout_demand(RolloutConfig(num_cpus=0.25)), learner_demand(LearnerConfig(cpus_per_worker=0.5))],
                 LAPTOP) == []
    assert unmet([Demand("things", 0, "x.count", {"GPU": 1.0})], LAPTOP) == []


def test_the_cluster_in_words():
    assert describe_cluster(LAPTOP) == "1 node: CPU 2, memory 16.0 GiB, object_store_memory 4.0 GiB"
    assert describe_cluster([{"CPU": 1.0}, {"CPU": 1.0, "verifier": 2.0}]) == "2 nodes: [CPU 1]; [CPU 1, verifier 2]"
    assert describe_cluster([{"CPU": 8.0, "GPU": 1.0}] * 3 + [{"CPU": 4.0}]) == "4 nodes: 3 x [CPU 8, GPU 1]; [CPU 4]"


# ---------------------------------------------------------------- can the cluster grow? (the autoscalers' reports)


def test_a_v1_report_of_the_read_only_provider_cannot_grow_one_of_real_node_types_can():
    node = "074691e5893635cf9227b68f7cabc54702f99d223f6aacc5ec1150fd"
    mirror = {"autoscaler_report": {"active_nodes": {f"node_{node}": 1}, "pending_nodes": [], "pending_launches": {},
                                    "node_type_mapping": {node: f"node_{node}"}}}
    assert growth_from_v1_report(mirror).can_grow is False
    real = {"autoscaler_report": {"active_nodes": {"ray.head.default": 1}, "pending_launches": {},
                                  "pending_nodes": [[node, "verifier-node", "uninitialized"]]}}
    growth = growth_from_v1_report(real)
    assert growth.can_grow and "ray.head.default" in growth.how and "verifier-node" in growth.how
    assert growth_from_v1_report(None) is None and growth_from_v1_report({"time": 1.0}) is None


def test_a_v2_status_with_node_types_can_grow():
    from ray.core.generated.autoscaler_pb2 import GetClusterStatusReply

    reply = GetClusterStatusReply()
    assert growth_from_v2_status(reply) is None  # no v2 autoscaler reported
    reply.autoscaling_state.autoscaler_state_version = 3
    reply.cluster_resource_state.node_states.add(node_id=b"\x01" * 28)
    assert growth_from_v2_status(reply).can_grow is False  # nodes without a type: the read-only provider
    reply.autoscaling_state.pending_instance_requests.add(ray_node_type_name="gpu-group", count=1)
    assert growth_from_v2_status(reply).can_grow


# ---------------------------------------------------------------- the real CLI


NO_VERIFIER_NODE = "no node has `verifier`"


@pytest.mark.slow
def test_a_job_asking_for_resources_an_embedded_ray_lacks_exits_2_at_once(tmp_path):
    """The command of the report: the paper's evaluation config on a machine without `verifier`
    nodes (it waited 300 s, declared its workers lost and went on waiting)."""
    result = qvr("eval", "--config", "configs/eval-paper.yaml", "--canonical", "--benchmark", "humaneval",
                 f"run.root={tmp_path}", "--json")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "qvr: config error:" in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert "pool.use_verifier_resource=true" in result.stderr and NO_VERIFIER_NODE in result.stderr
    assert "pool.workers=8" in result.stderr
    assert "this Ray cluster has 1 node: CPU " in result.stderr and "cannot grow" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "pool.use_verifier_resource" in summary["error"]


# ---------------------------------------------------------------- clusters the job joins


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_autoscaling_config(gcs_address: str, worker_types: dict) -> dict:
    """An autoscaling config for Ray's fake multi-node provider: the autoscaler really starts the
    nodes it launches, as local processes (ray.cluster_utils.AutoscalingCluster's provider; its
    own start runs `ray stop --force`, which would stop every Ray on the machine, so the head is
    started here instead)."""
    return {
        "cluster_name": "qvr-test", "max_workers": 2, "idle_timeout_minutes": 5, "upscaling_speed": 1.0,
        "provider": {"type": "external",
                     "module": "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider",
                     "use_node_id_as_ip": True, "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": gcs_address},
        "available_node_types": {"ray.head.default": {"resources": {}, "node_config": {}, "max_workers": 0},
                                 **worker_types},
        "head_node_type": "ray.head.default",
        "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class Head:
    """`ray start --head --block` in a session of its own (stopped by its process group), with its
    own temp dir so that no other Ray on this machine finds it."""

    def __init__(self, home: Path, worker_types: dict | None) -> None:
        from ray._private import services

        self.home = home
        self.temp_dir = tempfile.mkdtemp(prefix="qvr-ray-", dir="/tmp")
        port = free_port()
        self.address = f"{services.get_node_ip_address()}:{port}"
        command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
                   "--num-cpus=1", "--temp-dir", self.temp_dir, "--include-dashboard=false", "--disable-usage-stats",
                   "--dashboard-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                   "--ray-client-server-port", str(free_port())]
        env = child_env(RAY_USAGE_STATS_ENABLED="0")
        env.pop("RAY_ADDRESS", None)
        if worker_types is not None:
            config = home / "autoscaling.json"
            config.write_text(json.dumps(fake_autoscaling_config(self.address, worker_types)))
            command.append(f"--autoscaling-config={config}")
            env.update(AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_FAKE_CLUSTER="1")
        self.log = home / "head.log"
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                        cwd=home, start_new_session=True)
        self.started = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.started.wait(timeout=240):
            self.stop()
            pytest.fail("the Ray head did not start:\n" + self.log.read_text()[-3000:])

    def _drain(self) -> None:
        with open(self.log, "w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if "Ray runtime started." in line:
                    self.started.set()

    def env(self) -> dict[str, str]:
        """What a job that joins this cluster runs with (a `ray start` head wants the auth token)."""
        return child_env(RAY_ADDRESS=self.address, RAY_AUTH_MODE="token")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture
def head(tmp_path):
    heads = []

    def start(worker_types: dict | None = None) -> Head:
        heads.append(Head(tmp_path, worker_types))
        return heads[-1]

    yield start
    for started in heads:
        started.stop()


@pytest.mark.slow
def test_a_cluster_started_by_hand_cannot_grow_and_the_job_exits_2(head, tmp_path):
    """Joined (RAY_ADDRESS): the head's monitor runs Ray's read-only provider, which only mirrors the nodes."""
    cluster = head()
    result = qvr("verify", "pool.use_verifier_resource=true", "tasks.limit=1", f"run.root={tmp_path / 'runs'}",
                 env=cluster.env())
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "pool.use_verifier_resource=true" in result.stderr and NO_VERIFIER_NODE in result.stderr
    assert "this Ray cluster has 1 node: CPU 1" in result.stderr and "read-only" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_on_an_autoscaling_cluster_the_job_waits_for_the_node_and_goes_on(head, tmp_path):
    cluster = head({"verifier-node": {"resources": {"CPU": 1, "verifier": 1}, "node_config": {},
                                      "min_workers": 0, "max_workers": 1}})
    result = qvr("verify", "pool.use_verifier_resource=true", "tasks.limit=1", f"run.root={tmp_path / 'runs'}",
                 "--json", env=cluster.env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    waiting = [line for line in result.stderr.splitlines() if "waiting for Ray's autoscaler" in line]
    assert len(waiting) == 1, result.stderr[-3000:]
    assert "pool.use_verifier_resource=true" in waiting[0] and "ray.head.default" in waiting[0]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["total"] == 1 and summary["passed"] == 1
