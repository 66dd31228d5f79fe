"""Run directories: config, metrics.jsonl, TensorBoard events, log, summary; optional external sinks."""

import json
import logging

import yaml

from pipelines.config import resolve_config
from pipelines.jobs import job_module
from pipelines.runs import Run, RunConfig, new_run_path


def make_run(tmp_path, **run_fields):
    overrides = [f"run.root={tmp_path}"] + [f"run.{key}={value}" for key, value in run_fields.items()]
    config = resolve_config(job_module("verify").Config, None, overrides)
    return Run("verify", config, config.run), config


def test_run_directory_holds_everything(tmp_path):
    run, config = make_run(tmp_path)
    assert run.path.parent == tmp_path and run.path.name.startswith("verify-") and run.path.name.endswith("Z")
    logging.getLogger("qvr.test").warning("hello from the job")
    run.log_metrics({"reward": 0.5, "skipped": float("nan"), "label": "x"}, step=1)
    run.log_metrics({"reward": 0.75, "clock/step_end": 1.8e9}, step=2)
    run.write_summary({"passed": 1})
    run.close()

    assert yaml.safe_load((run.path / "config.yaml").read_text()) == config.model_dump(mode="json")
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [(row["step"], row["reward"]) for row in rows] == [(1, 0.5), (2, 0.75)]
    assert "skipped" not in rows[0] and "label" not in rows[0]
    assert rows[1]["clock/step_end"] == 1.8e9  # wall-clock stamps: metrics.jsonl only, no chart
    assert "hello from the job" in (run.path / "run.log").read_text()
    assert json.loads((run.path / "summary.json").read_text()) == {"passed": 1}

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.path))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("reward")] == [(1, 0.5), (2, 0.75)]
    assert events.Tags()["scalars"] == ["reward"]


def test_tensorboard_can_be_turned_off(tmp_path):
    run, _ = make_run(tmp_path, tensorboard="false")
    run.close()
    assert not list(run.path.glob("events.out.tfevents.*"))


def test_same_second_runs_get_distinct_directories(tmp_path):
    paths = {new_run_path(tmp_path, "verify") for _ in range(3)}
    assert len(paths) == 3 and all(path.is_dir() for path in paths)


def test_wandb_requested_without_package_warns(tmp_path, monkeypatch, caplog):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("wandb", "mlflow") else real_find_spec(name, *a))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
    with caplog.at_level(logging.WARNING):
        run, _ = make_run(tmp_path, wandb_project="demo")
    run.close()
    assert "wandb is not installed" in caplog.text and "mlflow is not installed" in caplog.text
    assert len(run.sinks) == 2  # jsonl + tensorboard only


def test_run_config_documents_every_field():
    for name, field in RunConfig.model_fields.items():
        assert field.description, f"RunConfig.{name} needs a docstring"
