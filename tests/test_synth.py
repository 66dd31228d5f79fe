"""`qvr synth` end to end on a small spec: the Parquet of Tasks, the quality gates, determinism."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from actors.contracts import Task, read_parquet
from tests.conftest import run_qvr

pytestmark = pytest.mark.slow
TEMPLATES = ["bell_state", "ghz_state", "qft_basis_state"]


def synth(tmp_path: Path, *overrides: str) -> dict:
    from pipelines.tasks.templates import TEMPLATES as REGISTRY

    chosen = [name for name in TEMPLATES if name in REGISTRY]
    assert len(chosen) == 3, f"pick three registered templates: {sorted(REGISTRY)}"
    result = run_qvr("synth", "--config", "configs/synth-smoke.yaml", f"spec.templates=[{', '.join(chosen)}]",
                     f"run.root={tmp_path}", "--json", *overrides)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.summary


def test_synth_writes_verified_tasks_deterministically(tmp_path, ray_session):
    first = synth(tmp_path / "a")
    assert set(first) >= {"tasks", "areas", "templates", "reference_pass_rate", "mutant_kill_rate", "tasks_per_s", "output"}
    assert first["tasks"] == 6 and first["templates"] == 3 and first["rejected"] == 0
    assert first["reference_pass_rate"] == 1.0 and first["mutant_kill_rate"] == 1.0
    schema = pq.read_schema(first["output"])
    assert set(schema.names) == set(Task.__dataclass_fields__)
    tasks = read_parquet(Task, first["output"])
    assert all(task.harness == "unittest" and task.family == "synthetic" and task.reference_solution for task in tasks)
    assert all(task.metadata["mutants_killed"] >= 2 for task in tasks)

    second = synth(tmp_path / "b")
    assert read_parquet(Task, second["output"]) == tasks

    # A held-out split over more seeds, disjoint from the first set: seeds 0 and 1 render its prompts
    # again. Without a mutant threshold no mutant runs: only the references are verified.
    heldout = synth(tmp_path / "c", "spec.seeds_per_template=4", f"spec.disjoint_from=[{first['output']}]",
                    "spec.min_mutants_killed=0")
    assert heldout["reference_pass_rate"] == 1.0 and heldout["mutant_kill_rate"] == 0.0
    rejected = [json.loads(line) for line in (Path(heldout["run_dir"]) / "rejected.jsonl").read_text().splitlines()]
    assert {(item["seed"], item["reason"]) for item in rejected} >= {
        (seed, "prompt of a task in spec.disjoint_from") for seed in (0, 1)}
    kept = read_parquet(Task, heldout["output"])
    assert kept and not {task.prompt for task in kept} & {task.prompt for task in tasks}


def test_failing_specs_are_reported_not_dropped(tmp_path, ray_session):
    summary = synth(tmp_path, "spec.min_mutants_killed=99")
    assert summary["tasks"] == 0 and summary["rejected"] == 6
    rejected = [json.loads(line) for line in (Path(summary["run_dir"]) / "rejected.jsonl").read_text().splitlines()]
    assert {(item["template"], item["seed"]) for item in rejected} == {(t, s) for t in {r["template"] for r in rejected}
                                                                      for s in (0, 1)}
    assert all("mutants fail the tests" in item["reason"] for item in rejected)


def test_sample_buckets_from_a_local_model(tmp_path, ray_session):
    from actors.rollout.testing import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny-model")
    summary = synth(tmp_path / "runs", "spec.seeds_per_template=1", "--sample", "2", "--model", str(model),
                    "sample.rollout.engine=transformers", "sample.sampling.max_tokens=16")
    assert summary["samples"] == 2 * summary["tasks"] == 6
    assert summary["bucket_a"] + summary["bucket_b"] == 6
    for name in ("bucket_a_path", "bucket_b_path"):
        columns = set(pq.read_schema(summary[name]).names)
        assert {"prompt", "task_id", "sample_idx", "text", "token_ids", "logprobs", "status", "reward"} <= columns
    rows = pq.read_table(summary["bucket_b_path"]).to_pylist()
    assert all(row["status"] != "passed" for row in rows)
    prompts = {task.task_id: task.prompt for task in read_parquet(Task, summary["output"])}
    assert all(row["prompt"] == prompts[row["task_id"]] for row in rows)  # bucket rows are SFT rows as they are
    assert {row["task_id"] for row in rows} <= {f"synthetic/{name}/0" for name in TEMPLATES}
