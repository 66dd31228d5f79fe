"""`qvr verify` through the verifier pool: a reference slower than the pool's health check passes."""

import json
from pathlib import Path

import pytest

from actors.contracts import Task, read_parquet
from tests.conftest import run_qvr

pytestmark = pytest.mark.slow


def test_a_reference_slower_than_the_health_check_is_reported_passed(tmp_path, ray_session):
    tasks = tmp_path / "tasks" / "slow.jsonl"
    tasks.parent.mkdir()
    tasks.write_text(json.dumps({"task_id": "slow/sleep", "family": "test", "harness": "program", "prompt": "",
                                 "tests": "", "reference_solution": "import time\ntime.sleep(6)\n"}) + "\n")
    result = run_qvr("verify", "--tasks", str(tasks), "--canonical", "pool.health_check_s=1", "pool.cpus_per_slot=0.5",
                     "ray.num_cpus=2", f"run.root={tmp_path / 'runs'}", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    summary = result.summary
    assert summary["total"] == 1 and summary["passed"] == 1, summary
    assert summary["by_status"] == {"passed": 1} and summary["by_isolation"] == {"split": 1, "shared": 0}
    [task] = read_parquet(Task, str(Path(summary["run_dir"]) / "tasks.parquet"))  # calibrated once, marked
    assert task.metadata["isolation"] == "split"
