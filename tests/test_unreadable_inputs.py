"""Unreadable input (not UTF-8, a truncated Parquet or gzip file, a value of the wrong type) is the
user's to fix: exit status 2 naming the file and the line (or row), and no traceback on the console,
for completions (pipelines/completions.py), task files (pipelines/tasks/loader.py) and the offline
jobs' rows (pipelines/offline/data.py)."""

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.completions import CompletionsError, load_completions
from pipelines.offline.data import OfflineDataConfig, check_sources, read_rows
from pipelines.tasks.loader import TaskSourceConfig, TaskSourceError, load_tasks
from tests.conftest import EXAMPLES, ROOT, child_env

NOT_UTF8 = "café".encode("latin-1")  # b"caf\xe9": a byte that no UTF-8 text holds there
BELL = "examples/bell-state"
SFT_ROWS = (b'{"prompt": "a", "completion": "b"}', b'{"prompt": "' + NOT_UTF8 + b'", "completion": "b"}')
"""Two SFT rows, the second not UTF-8."""


def qvr(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "qvr"), *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=timeout)


def refused(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit 2, each expected text on the console, and no traceback."""
    console = result.stdout + result.stderr
    assert result.returncode == 2, console[-3000:]
    assert "Traceback" not in console, console[-3000:]
    for text in expected:
        assert text in result.stderr, (text, result.stderr[-3000:])


def jsonl_bytes(*rows: bytes | dict) -> bytes:
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def truncated_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


# ---------------------------------------------------------------- completions


def test_completions_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "completions.jsonl"
    path.write_bytes(jsonl_bytes({"task_id": BELL, "completion": "x"},
                                 b'{"task_id": "' + BELL.encode() + b'", "completion": "' + NOT_UTF8 + b'"}'))
    with pytest.raises(CompletionsError, match=re.escape(f"{path}:2: not UTF-8 text (byte 0xe9")):
        load_completions(path)


@pytest.mark.parametrize("row,message", [
    ({"task_id": ["a"], "completion": "x"}, ":1: task_id must be text, found a list"),
    ({"task_id": BELL, "completion": 3}, ":1: expected"),
    ({"task_id": BELL, "completion": 3}, "found a number as the completion"),
    (["not", "an", "object"], "found a list"),
])
def test_completions_of_the_wrong_type_name_the_line(tmp_path, row, message):
    path = tmp_path / "completions.jsonl"
    path.write_bytes(jsonl_bytes(row))
    with pytest.raises(CompletionsError, match=re.escape(message)):
        load_completions(path)


def test_qvr_verify_with_completions_that_are_not_utf8_exits_2(tmp_path):
    path = tmp_path / "completions.jsonl"
    path.write_bytes(jsonl_bytes({"task_id": BELL, "completion": "x"}, b'{"task_id": "x", "completion": "'
                                 + NOT_UTF8 + b'"}'))
    refused(qvr("verify", "--completions", str(path), f"run.root={tmp_path / 'runs'}"), f"{path}:2: not UTF-8")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- task files


TASK = {"task_id": "t/0", "family": "f", "harness": "program", "prompt": "p", "tests": "", "reference_solution": "x=1"}
QHE_ROW = {"task_id": "q/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
           "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f", "difficulty_scale": "basic"}


@pytest.mark.parametrize("name,content,message", [
    ("tasks.jsonl", jsonl_bytes(TASK, b'{"task_id": "t/1", "prompt": "' + NOT_UTF8 + b'"}'), ":2: not UTF-8 text"),
    ("qhe.json", b"[\n" + json.dumps(QHE_ROW).encode() + b",\n" + json.dumps(QHE_ROW).replace('"p', '"\xe9p').encode(
        "latin-1") + b"\n]", ":3: not UTF-8 text"),
    ("tasks.jsonl.gz", gzip.compress(jsonl_bytes(*[{**TASK, "task_id": f"t/{i}"} for i in range(200)]))[:300],
     "broken gzip file"),
    ("tasks.jsonl", jsonl_bytes(TASK, {**TASK, "task_id": "t/1", "prompt": 5}),
     ":2: row 1 (task 't/1'): field 'prompt' must be text, found a number"),
    ("tasks.jsonl", jsonl_bytes({**TASK, "requires_qpu": "yes"}),
     ":1: row 0 (task 't/0'): field 'requires_qpu' must be true or false"),
    ("qhe.jsonl", jsonl_bytes(QHE_ROW, {**QHE_ROW, "task_id": "q/1", "test": ["assert True"]}),
     ":2: row 1 (task 'q/1'): field 'test' must be text, found a list"),
])
def test_unreadable_task_files_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TaskSourceError, match=re.escape(message)) as error:
        load_tasks(TaskSourceConfig(source=str(path)))
    assert str(error.value).startswith(str(path))


def test_a_truncated_parquet_task_file_is_named(tmp_path):
    path = truncated_parquet(tmp_path / "tasks.parquet", [{**TASK, "task_id": f"t/{i}"} for i in range(50)])
    with pytest.raises(TaskSourceError, match=re.escape(f"{path}: not a readable Parquet file")):
        load_tasks(TaskSourceConfig(source=str(path)))


def test_qvr_verify_and_eval_with_unreadable_task_files_exit_2(tmp_path):
    parquet = truncated_parquet(tmp_path / "tasks.parquet", [{**TASK, "task_id": f"t/{i}"} for i in range(50)])
    refused(qvr("verify", "--tasks", str(parquet), "--canonical", f"run.root={tmp_path / 'runs'}"),
            f"{parquet}: not a readable Parquet file")
    not_utf8 = tmp_path / "tasks.jsonl"
    not_utf8.write_bytes(EXAMPLES.read_bytes() + jsonl_bytes(b'{"task_id": "' + NOT_UTF8 + b'"}'))
    lines = len(EXAMPLES.read_bytes().splitlines())
    refused(qvr("eval", "--tasks", str(not_utf8), "--canonical", f"run.root={tmp_path / 'runs'}"),
            f"{not_utf8}:{lines + 1}: not UTF-8")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the offline jobs' rows


def sft_data(path: Path) -> OfflineDataConfig:
    return OfflineDataConfig(train=str(path))


def test_offline_rows_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl_bytes(*SFT_ROWS))
    problems = check_sources(sft_data(path), "sft")
    assert len(problems) == 1 and problems[0].startswith(f"data.train: {path}:2: not UTF-8 text"), problems
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not UTF-8")):
        read_rows(str(path))


def test_offline_rows_of_the_wrong_type_name_the_line_or_the_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(jsonl_bytes({"prompt": "a", "completion": "b"}, {"prompt": 7, "completion": "b"}))
    assert check_sources(sft_data(mixed), "sft") == [
        f"data.train: {mixed}:2: field 'prompt' is a number ('7'), not text"]
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "completion": 1}]), numbers)
    assert check_sources(sft_data(numbers), "sft") == [
        f"data.train: {numbers}: column 'completion' holds int64, not text"]
    broken = truncated_parquet(tmp_path / "broken.parquet", [{"prompt": "a" * 50, "completion": "b"}] * 100)
    problems = check_sources(sft_data(broken), "sft")
    assert len(problems) == 1 and problems[0].startswith(f"data.train: {broken}: not a readable Parquet file")


@pytest.mark.slow
def test_qvr_sft_with_rows_that_are_not_utf8_exits_2(tmp_path):
    """Both paths: the inputs checked before anything starts, and the smoke preset's, which checks
    them once it has built what is missing (here the model, whose tokenizer reads the rows)."""
    train = tmp_path / "train.jsonl"
    train.write_bytes(jsonl_bytes(*SFT_ROWS))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_bytes(jsonl_bytes({"prompt": "a", "completion": "b"}))
    refused(qvr("sft", f"data.train={train}", f"run.root={tmp_path / 'runs'}"), f"data.train: {train}:2: not UTF-8")
    assert not (tmp_path / "runs").exists()
    refused(qvr("sft", "--config", "configs/sft-smoke.yaml", f"data.train={train}", f"data.heldout={heldout}",
                f"model={tmp_path / 'model'}", f"run.root={tmp_path / 'runs'}"), f"data.train: {train}:2: not UTF-8")
    assert not (tmp_path / "model").exists()
