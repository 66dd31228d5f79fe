"""Read completions made elsewhere: JSONL rows ``{task_id, completion[, sample_idx]}`` (``text`` is
taken for ``completion``). One reader for every job that scores them (``qvr verify``, ``qvr eval``):
each problem is a :class:`CompletionsError` naming the file, the line and the task."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from actors.contracts import Completion
from pipelines.inputfiles import UnreadableInput, json_lines, type_name


class CompletionsError(ValueError):
    """A completions file a job cannot use; the message names the file, line and task."""


def read_completions_file(path: str | Path, known: Collection[str] | None = None,
                          known_as: str = "the tasks") -> list[tuple[int, Completion]]:
    """(line number, completion) for every row. A row without ``sample_idx`` takes the next index of
    its task. ``known``: the task ids a row may name (``known_as`` says whose, for the message)."""
    path = Path(path)
    if not path.is_file():
        raise CompletionsError(f"{path}: completions file not found")
    rows: list[tuple[int, Completion]] = []
    first_seen: dict[tuple[str, int], int] = {}
    next_index: dict[str, int] = {}
    try:
        for number, row in json_lines(path):
            where = f"{path}:{number}"
            text = row.get("completion", row.get("text")) if isinstance(row, dict) else None
            if not isinstance(row, dict) or "task_id" not in row or not isinstance(text, str):
                if not isinstance(row, dict):
                    found = type_name(row)
                elif "task_id" not in row:
                    found = "no task_id"
                else:
                    found = f"{type_name(text)} as the completion"
                raise CompletionsError(f"{where}: expected {{\"task_id\": ..., \"completion\": \"...\"[, "
                                       f"\"sample_idx\": N]}}, found {found}")
            if not isinstance(row["task_id"], (str, int)) or isinstance(row["task_id"], bool):
                raise CompletionsError(f"{where}: task_id must be text, found {type_name(row['task_id'])}")
            task_id = str(row["task_id"])
            if known is not None and task_id not in known:
                example = f", e.g. {sorted(known)[0]!r}" if known else ""
                raise CompletionsError(f"{where}: task {task_id!r} is not in {known_as} ({len(known)} tasks{example})")
            index = row.get("sample_idx", next_index.get(task_id, 0))
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise CompletionsError(f"{where}: task {task_id!r}: sample_idx must be a non-negative integer, "
                                       f"got {index!r}")
            if (task_id, index) in first_seen:
                raise CompletionsError(f"{where}: task {task_id!r} sample {index} appears twice "
                                       f"(first on line {first_seen[(task_id, index)]})")
            first_seen[(task_id, index)] = number
            next_index[task_id] = index + 1
            rows.append((number, Completion(task_id=task_id, sample_idx=index, text=text)))
    except UnreadableInput as error:
        raise CompletionsError(str(error)) from None
    if not rows:
        raise CompletionsError(f"{path}: no completions")
    return rows


def load_completions(path: str | Path, known: Collection[str] | None = None,
                     known_as: str = "the tasks") -> list[Completion]:
    """The completions of :func:`read_completions_file`, in file order."""
    return [completion for _, completion in read_completions_file(path, known, known_as)]
