"""What an evaluation reads besides tasks: completions made elsewhere, and the model to sample.

Every problem is an :class:`EvalInputError` naming the file, the line and the task, raised before
anything runs (``qvr eval`` turns it into exit status 2).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from actors.contracts import Completion, Task


class EvalInputError(ValueError):
    """An input an evaluation cannot use; the message names the file, line and task."""


def read_completions(path: str | Path, tasks: list[Task], benchmark: str, ks: list[int]) -> list[Completion]:
    """JSONL rows ``{task_id, completion[, sample_idx]}`` (``text`` is taken for ``completion``)
    for the tasks of ``benchmark``: every task of it needs at least max(ks) samples."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: completions file not found")
    known = {task.task_id for task in tasks}
    completions: list[Completion] = []
    seen: dict[tuple[str, int], int] = {}
    next_index: Counter = Counter()
    last_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvalInputError(f"{where}: not JSON: {error.msg} (column {error.colno})") from None
            text = row.get("completion", row.get("text")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or "task_id" not in row or not isinstance(text, str):
                raise EvalInputError(f"{where}: expected {{\"task_id\": ..., \"completion\": \"...\"[, \"sample_idx\": N]}}")
            task_id = str(row["task_id"])
            if task_id not in known:
                raise EvalInputError(f"{where}: task {task_id!r} is not in benchmark {benchmark!r} "
                                     f"({len(known)} tasks, e.g. {sorted(known)[0]!r})")
            index = row.get("sample_idx", next_index[task_id])
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise EvalInputError(f"{where}: task {task_id!r}: sample_idx must be a non-negative integer, got {index!r}")
            if (task_id, index) in seen:
                raise EvalInputError(f"{where}: task {task_id!r} sample {index} appears twice "
                                     f"(first on line {seen[(task_id, index)]})")
            seen[(task_id, index)] = number
            next_index[task_id] = index + 1
            last_line[task_id] = number
            completions.append(Completion(task_id=task_id, sample_idx=index, text=text))
    if not completions:
        raise EvalInputError(f"{path}: no completions")
    counts = Counter(completion.task_id for completion in completions)
    largest = max(ks)
    for task in tasks:
        count = counts.get(task.task_id, 0)
        if 0 < count < largest:
            raise EvalInputError(f"{path}:{last_line[task.task_id]}: task {task.task_id!r} has {count} sample(s), "
                                 f"fewer than the largest k ({largest}); give at least {largest} per task or lower "
                                 f"sampled.k (e.g. sampled.k=[1] for one sample per task)")
    missing = [task.task_id for task in tasks if task.task_id not in counts]
    if missing:
        raise EvalInputError(f"{path}: no completions for {len(missing)} of the {len(tasks)} tasks of benchmark "
                             f"{benchmark!r}, e.g. {missing[:3]}; add them, or restrict the benchmark "
                             f"(benchmarks.{benchmark}.tasks.task_ids / .limit)")
    return completions


def resolve_model(source: str) -> str:
    """The model to load for ``source``: a Hugging Face id as it is; a local model folder (with
    ``config.json``) as an absolute path; a checkpoint folder's ``hf_model/``; a qvr run
    directory's last checkpoint's ``hf_model/`` (where ``qvr grpo`` writes the final policy)."""
    path = Path(source).expanduser()
    if not path.exists():
        if source.startswith(("/", "./", "../", "~")) or source.endswith("/"):
            raise EvalInputError(f"model {source!r}: no such directory")
        return source  # a hub id
    if not path.is_dir():
        raise EvalInputError(f"model {source!r}: not a directory (a model folder, a checkpoint or a qvr run)")
    if (path / "config.json").is_file():
        return str(path.resolve())
    from actors.learner.checkpoint import HF_MODEL, latest

    if (path / HF_MODEL / "config.json").is_file():
        return str((path / HF_MODEL).resolve())
    if (path / "config.yaml").is_file():
        checkpoint = latest(path)
        if checkpoint is None:
            raise EvalInputError(f"model {source!r}: a qvr run without checkpoints")
        if not (checkpoint / HF_MODEL / "config.json").is_file():
            raise EvalInputError(f"model {source!r}: its last checkpoint {checkpoint} holds no {HF_MODEL}/ (a run "
                                 "writes the final policy there when it finishes)")
        return str((checkpoint / HF_MODEL).resolve())
    raise EvalInputError(f"model {source!r}: neither a model folder (config.json), a checkpoint ({HF_MODEL}/) nor a "
                         "qvr run directory (config.yaml)")


def model_name(source: str) -> str:
    """A short display name for a model source: its last path component (a run's folder name)."""
    return Path(source.rstrip("/")).name or source


def json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
