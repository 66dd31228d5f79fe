"""A job run end to end through `ray job submit` against a local head that this test starts and stops."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).parent / "ray")


@pytest.fixture
def ray_head(tmp_path):
    """`ray start --head --block` in its own session; killing that session stops every process it started."""
    dashboard_port = free_port()
    env = child_env(RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    log = open(tmp_path / "ray-head.log", "w")
    # Its own temp dir keeps this head (and its ray_current_cluster file) invisible to other Ray users here.
    temp_dir = tempfile.mkdtemp(prefix="qvr-ray-", dir="/tmp")
    head = subprocess.Popen(
        [ray_cli(), "start", "--head", "--block", "--temp-dir", temp_dir, "--num-cpus", "2", "--port", str(free_port()),
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port), "--include-dashboard", "true",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard_port}"
    client_env = child_env(RAY_AUTH_MODE="token")
    client_env.pop("RAY_ADDRESS", None)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        probe = subprocess.run([ray_cli(), "job", "list", "--address", address], env=client_env,
                               capture_output=True, text=True)
        if probe.returncode == 0:
            break
        assert head.poll() is None, (tmp_path / "ray-head.log").read_text()
        time.sleep(2)
    else:
        pytest.fail("the Ray head did not serve jobs in 120 s:\n" + (tmp_path / "ray-head.log").read_text())
    try:
        yield address, client_env
    finally:
        os.killpg(head.pid, 15)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, 9)
            head.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_verify_job_through_ray_job_submit(ray_head, tmp_path):
    address, env = ray_head
    runs = tmp_path / "runs"
    submission = f"qvr-test-{os.getpid()}"
    submit = subprocess.run(
        [ray_cli(), "job", "submit", "--address", address, "--submission-id", submission,
         "--runtime-env", "platform/runtime_env.yaml", "--working-dir", ".", "--",
         "python", "-m", "pipelines", "verify", "--config", "configs/verify-quickstart.yaml",
         f"run.root={runs}", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = submit.stdout + submit.stderr
    assert submit.returncode == 0, output

    status = subprocess.run([ray_cli(), "job", "status", "--address", address, submission],
                            env=env, capture_output=True, text=True, timeout=60)
    assert f"Job '{submission}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr

    logs = subprocess.run([ray_cli(), "job", "logs", "--address", address, submission],
                          env=env, capture_output=True, text=True, timeout=60).stdout
    summary = json.loads([line for line in logs.splitlines() if line.startswith("{")][-1])
    assert summary["job"] == "verify" and summary["passed"] == summary["total"] == 5

    printed = re.findall(r"run directory: (\S+)", logs)
    assert len(printed) == 2 and printed[0] == printed[1] == summary["run_dir"]
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == runs and run_dir.name.startswith("verify-")
    for name in ("config.yaml", "metrics.jsonl", "run.log", "summary.json", "verdicts.parquet"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 5
