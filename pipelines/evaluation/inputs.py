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
    from pipelines.completions import CompletionsError, read_completions_file

    path = Path(path)
    try:
        rows = read_completions_file(path, {task.task_id for task in tasks}, f"benchmark {benchmark!r}")
    except CompletionsError as error:
        raise EvalInputError(str(error)) from None
    completions = [completion for _, completion in rows]
    last_line = {completion.task_id: number for number, completion in rows}
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
