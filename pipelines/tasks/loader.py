"""Load tasks from QHE JSON, JSONL or Parquet of Tasks, or a Hugging Face dataset id.

Rows that carry QHE's own fields (prompt, canonical_solution, test, entry_point) become harness
``qhe`` tasks; rows in the Task contract keep their own harness. Anything else is an error that
names the source and the row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Task, from_row

QHE_FIELDS = {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
QPU_MARKERS = ("QiskitRuntimeService",)


class TaskSourceConfig(Config):
    source: str = "pipelines/tasks/examples/qiskit-basics.jsonl"
    """A local .json (QHE's list), .jsonl or .parquet file, a dataset folder, or a Hugging Face dataset id.
    Relative paths are read from the working directory (the project root, also under
    ``ray job submit --working-dir .``)."""

    split: str = "test"
    """Split to read when ``source`` is a Hugging Face dataset id."""

    limit: int | None = Field(None, gt=0)
    """Keep only the first N tasks (after ``task_ids``); None keeps all."""

    task_ids: list[str] | None = None
    """Keep only these task ids, in the source's order; an id not in the source is an error."""


class TaskSourceError(ValueError):
    """A task source that cannot be read, with the source named."""


def qhe_row_to_task(row: dict[str, Any]) -> Task:
    """QHE's JSON row -> Task (harness qhe; its canonical solution becomes the reference).

    ``requires_qpu`` is set for tasks that open a QiskitRuntimeService: they need an IBM account
    or the QPU gateway's fake backends."""
    code = row["prompt"] + row["canonical_solution"] + row["test"]
    known = QHE_FIELDS | {"difficulty_scale"}
    return Task(
        task_id=str(row["task_id"]), family="qhe", harness="qhe", prompt=row["prompt"], tests=row["test"],
        entry_point=row["entry_point"], reference_solution=row["canonical_solution"],
        requires_qpu=any(marker in code for marker in QPU_MARKERS),
        difficulty=row.get("difficulty_scale"), area="qhe",
        metadata={key: value for key, value in row.items() if key not in known},
    )


def row_to_task(row: dict[str, Any]) -> Task:
    if QHE_FIELDS <= row.keys() and "harness" not in row:
        return qhe_row_to_task(row)
    return from_row(Task, row)


def _read_rows(source: str, split: str) -> list[dict[str, Any]]:
    path = Path(source)
    suffix = path.suffix.lower()
    if path.is_dir():
        return _read_hub(source, split)  # a dataset folder: datasets reads it like a hub id
    if path.exists():
        if suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("tasks"), list):
                data = data["tasks"]
            if not isinstance(data, list):
                raise TaskSourceError(f"{source}: expected a JSON list of tasks, got {type(data).__name__}")
            return data
        if suffix == ".jsonl":
            rows = []
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise TaskSourceError(f"{source}:{number}: not JSON: {error}") from None
            return rows
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        raise TaskSourceError(f"{source}: unsupported file type {suffix!r} (use .json, .jsonl or .parquet)")
    if suffix in (".json", ".jsonl", ".parquet") or source.startswith((".", "/")):
        raise TaskSourceError(f"{source}: no such file")
    return _read_hub(source, split)


def _read_hub(dataset_id: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        return datasets.load_dataset(dataset_id, split=split).to_list()
    except Exception as error:  # noqa: BLE001 - the hub raises many types; all mean "cannot read"
        raise TaskSourceError(
            f"{dataset_id}: not a local file, and loading it as a Hugging Face dataset failed "
            f"({type(error).__name__}: {error})") from None


def load_tasks(config: TaskSourceConfig) -> list[Task]:
    rows = _read_rows(config.source, config.split)
    tasks = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TaskSourceError(f"{config.source}: row {index} is {type(row).__name__}, not an object")
        try:
            tasks.append(row_to_task(row))
        except (KeyError, TypeError, ValueError) as error:
            raise TaskSourceError(f"{config.source}: row {index}: {error}") from None
    seen: set[str] = set()
    for task in tasks:
        if task.task_id in seen:
            raise TaskSourceError(f"{config.source}: task id {task.task_id!r} appears twice")
        seen.add(task.task_id)
    if config.task_ids is not None:
        missing = [task_id for task_id in config.task_ids if task_id not in seen]
        if missing:
            raise TaskSourceError(f"{config.source}: task_ids not in the source: {missing}")
        wanted = set(config.task_ids)
        tasks = [task for task in tasks if task.task_id in wanted]
    if config.limit is not None:
        tasks = tasks[: config.limit]
    if not tasks:
        raise TaskSourceError(f"{config.source}: no tasks")
    return tasks
