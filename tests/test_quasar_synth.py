"""`qvr synth` with family quasar, end to end on a small spec: verified references, the JSON line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actors.contracts import Task, read_parquet
from tests.conftest import ROOT, child_env

pytestmark = pytest.mark.slow


def test_quasar_synth_writes_tasks_with_verified_references(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "qvr"), "synth", "--config", "configs/synth-quasar-smoke.yaml",
         "quasar.problems=[vertex_cover, matching]", "quasar.qubits=[3]", "quasar.layers=[1]",
         "quasar.seeds_per_problem=1", f"run.root={tmp_path}", "--json"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"tasks", "problem_types", "reference_reward_mean", "output"}
    assert summary["tasks"] == 2 and summary["problem_types"] == {"matching": 1, "vertex_cover": 1}
    assert summary["reference_reward_mean"] >= 0.9
    tasks = read_parquet(Task, summary["output"])
    assert all(task.harness == "qasm" and task.family == "quasar" and task.metadata["reference_reward"] >= 0.9
               for task in tasks)


def test_quasar_spec_is_validated():
    from pipelines.tasks.quasar.synth import QuasarSynthSpec

    for bad in ({"qubits": [2]}, {"qubits": [17]}, {"layers": [5]}, {"problems": ["max_sat"]}):
        with pytest.raises(ValueError):
            QuasarSynthSpec(**bad)
