"""Run directories and metric sinks.

Every job writes ``runs/<job>-<UTC timestamp>/`` holding ``config.yaml`` (the resolved config),
``metrics.jsonl``, TensorBoard event files, ``run.log`` and ``summary.json``. W&B and MLflow
receive the same metrics when their package is installed and a project/experiment (or their own
environment variable) is set.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from actors.config import Config

log = logging.getLogger("qvr")


class RunConfig(Config):
    root: str = "runs"
    """Directory that holds one folder per run. On a cluster, point it at storage the driver
    node keeps (e.g. a shared volume); relative paths are relative to the working directory."""

    tensorboard: bool = True
    """Write TensorBoard event files into the run directory."""

    wandb_project: str | None = None
    """Weights & Biases project. The sink is on when this (or WANDB_PROJECT) is set and wandb is installed."""

    mlflow_experiment: str | None = None
    """MLflow experiment. The sink is on when this (or MLFLOW_TRACKING_URI) is set and mlflow is installed."""


class MetricSink(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def close(self) -> None: ...


class JsonlSink:
    def __init__(self, path: Path) -> None:
        self._file = path.open("a", buffering=1)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._file.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    def __init__(self, path: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(path))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    def __init__(self, project: str, name: str, config: dict[str, Any], path: Path) -> None:
        import wandb

        self._run = wandb.init(project=project, name=name, config=config, dir=str(path))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def close(self) -> None:
        self._run.finish()


class MlflowSink:
    def __init__(self, experiment: str | None, name: str, config: dict[str, Any]) -> None:
        import mlflow

        if experiment:
            mlflow.set_experiment(experiment)
        self._mlflow = mlflow
        mlflow.start_run(run_name=name)
        mlflow.log_params(_flatten(config))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self._mlflow.end_run()


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _external_sinks(config: RunConfig, name: str, resolved: dict[str, Any], path: Path) -> list[MetricSink]:
    sinks: list[MetricSink] = []
    wandb_project = config.wandb_project or os.environ.get("WANDB_PROJECT")
    if wandb_project:
        if importlib.util.find_spec("wandb"):
            sinks.append(WandbSink(wandb_project, name, resolved, path))
        else:
            log.warning("W&B project %r is set but wandb is not installed: `pip install qvr[wandb]`", wandb_project)
    if config.mlflow_experiment or os.environ.get("MLFLOW_TRACKING_URI"):
        if importlib.util.find_spec("mlflow"):
            sinks.append(MlflowSink(config.mlflow_experiment, name, resolved))
        else:
            log.warning("MLflow is configured but mlflow is not installed: `pip install qvr[mlflow]`")
    return sinks


def new_run_path(root: str | Path, job: str) -> Path:
    """runs/<job>-<UTC timestamp>/, with a suffix when two runs start in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = Path(root) / f"{job}-{stamp}"
    for attempt in range(1000):
        path = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {root}")


class Run:
    """One job's run directory: config, log, metrics, summary."""

    def __init__(self, job: str, config: BaseModel, run_config: RunConfig, path: Path | None = None) -> None:
        from pipelines.config import dump_config

        self.job = job
        self.path = path or new_run_path(run_config.root, job)
        config_file = self.path / "config.yaml"
        if config_file.exists():  # a continued run keeps its original config; each continuation adds its own
            config_file = self.path / f"config.{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.yaml"
        config_file.write_text(dump_config(config))
        self._log_handler = logging.FileHandler(self.path / "run.log")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self._log_handler)
        resolved = config.model_dump(mode="json")
        self.sinks: list[MetricSink] = [JsonlSink(self.path / "metrics.jsonl")]
        if run_config.tensorboard:
            self.sinks.append(TensorBoardSink(self.path))
        self.sinks += _external_sinks(run_config, self.path.name, resolved, self.path)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Every finite number to metrics.jsonl; ``clock/*`` values (wall-clock stamps, for
        timelines) to no chart."""
        clean = {name: float(value) for name, value in metrics.items()
                 if isinstance(value, (int, float)) and math.isfinite(value)}
        charts = {name: value for name, value in clean.items() if not name.startswith("clock/")}
        for sink in self.sinks:
            sink.log(clean if isinstance(sink, JsonlSink) else charts, step)

    def write_summary(self, summary: dict[str, Any]) -> Path:
        path = self.path / "summary.json"
        path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return path

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        logging.getLogger().removeHandler(self._log_handler)
        self._log_handler.close()
