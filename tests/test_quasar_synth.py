"""`qvr synth` with family quasar, end to end on a small spec: verified references, the JSON line."""

import json

import pytest

from actors.contracts import Task, read_parquet
from tests.conftest import run_qvr

pytestmark = pytest.mark.slow


def test_quasar_synth_writes_tasks_with_verified_references(tmp_path, ray_session):
    result = run_qvr("synth", "--config", "configs/synth-quasar-smoke.yaml",
         "quasar.problems=[vertex_cover, matching]", "quasar.qubits=[3]", "quasar.layers=[1]",
         "quasar.seeds_per_problem=1", f"run.root={tmp_path}", "--json")
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


def test_specs_cover_every_problem_and_cycle_qubits_and_layers():
    from pipelines.tasks.quasar.problems import PROBLEMS
    from pipelines.tasks.quasar.synth import QuasarSynthSpec, specs

    todo = specs(QuasarSynthSpec(qubits=[4, 10], layers=[1, 3], seeds_per_problem=4))
    assert {spec["problem"] for spec in todo} == set(PROBLEMS) and len(todo) == 4 * len(PROBLEMS)
    one = [(spec["seed"], spec["qubits"], spec["layers"]) for spec in todo if spec["problem"] == "matching"]
    assert one == [(0, 4, 1), (1, 10, 1), (2, 4, 3), (3, 10, 3)]
