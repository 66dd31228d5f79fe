"""The task loader: QHE JSON, JSONL and Parquet of Tasks, hub ids, and clear errors."""

import json

import pytest

from actors.contracts import Completion, Task, Verdict, read_parquet, write_parquet
from pipelines.completions import load_completions
from pipelines.tasks.loader import TaskSourceConfig, TaskSourceError, load_tasks
from tests.conftest import EXAMPLES, QHE_JSON

needs_qhe = pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")


@needs_qhe
def test_qhe_json_loads_as_qhe_tasks():
    tasks = load_tasks(TaskSourceConfig(source=str(QHE_JSON)))
    assert len(tasks) == 151
    assert {task.harness for task in tasks} == {"qhe"}
    first = tasks[0]
    assert first.task_id == "qiskitHumanEval/0" and first.entry_point and first.reference_solution
    assert first.difficulty in {"basic", "intermediate", "difficult"}
    assert any(task.requires_qpu for task in tasks) and not all(task.requires_qpu for task in tasks)


@needs_qhe
def test_limit_and_task_ids():
    assert len(load_tasks(TaskSourceConfig(source=str(QHE_JSON), limit=3))) == 3
    chosen = load_tasks(TaskSourceConfig(source=str(QHE_JSON), task_ids=["qiskitHumanEval/5", "qiskitHumanEval/2"]))
    assert [task.task_id for task in chosen] == ["qiskitHumanEval/2", "qiskitHumanEval/5"]
    with pytest.raises(TaskSourceError, match="not in the source"):
        load_tasks(TaskSourceConfig(source=str(QHE_JSON), task_ids=["nope"]))


def test_examples_carry_their_own_harness():
    tasks = load_tasks(TaskSourceConfig(source=str(EXAMPLES)))
    assert {task.harness for task in tasks} == {"qhe", "unittest", "program"}
    assert all(task.reference_solution for task in tasks)


def test_parquet_round_trip(tmp_path):
    tasks = load_tasks(TaskSourceConfig(source=str(EXAMPLES)))
    tasks[0].metadata = {"seed": 3, "template": "bell"}
    path = tmp_path / "tasks.parquet"
    write_parquet(tasks, str(path))
    assert load_tasks(TaskSourceConfig(source=str(path))) == tasks
    assert read_parquet(Task, str(path)) == tasks


def test_verdicts_and_completions_round_trip(tmp_path):
    verdict = Verdict(task_id="a", sample_idx=2, status="failed", tests_passed=1, tests_total=2, reward=0.5,
                      reward_parts={"verification": 0.5}, duration_s=0.1, stderr_tail="x")
    write_parquet([verdict], str(tmp_path / "v.parquet"))
    assert read_parquet(Verdict, str(tmp_path / "v.parquet")) == [verdict]
    completion = Completion(task_id="a", sample_idx=0, text="x", token_ids=[1, 2], logprobs=[-0.1, -0.2])
    write_parquet([completion], str(tmp_path / "c.parquet"))
    assert read_parquet(Completion, str(tmp_path / "c.parquet")) == [completion]


@pytest.mark.parametrize("content,message", [
    ('{"task_id": "a"}\n', "row 0"),
    ('{"task_id": "a", "family": "f", "harness": "nope", "prompt": "", "tests": ""}\n', "harness 'nope'"),
    ('{"task_id": "a", "family": "f", "harness": "qhe", "prompt": "", "tests": ""}\n', "needs an entry_point"),
    ("not json\n", ":1: not JSON"),
    ("", "no tasks"),
    ('{"task_id": "a", "family": "f", "harness": "program", "prompt": "", "tests": ""}\n' * 2, "appears twice"),
    ('{"task_id": "a", "family": "f", "harness": "program", "prompt": "", "tests": "", "colour": 1}\n', "unknown columns"),
])
def test_bad_jsonl_names_the_source(tmp_path, content, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(content)
    with pytest.raises(TaskSourceError, match=message) as error:
        load_tasks(TaskSourceConfig(source=str(path)))
    assert str(path) in str(error.value)


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(TaskSourceError, match="no such file"):
        load_tasks(TaskSourceConfig(source=str(tmp_path / "missing.jsonl")))
    (tmp_path / "tasks.csv").write_text("a,b\n")
    with pytest.raises(TaskSourceError, match="unsupported file type"):
        load_tasks(TaskSourceConfig(source=str(tmp_path / "tasks.csv")))


def test_hub_id_is_tried_and_its_failure_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskSourceError, match="Hugging Face dataset") as error:
        load_tasks(TaskSourceConfig(source="no-such-org/no-such-dataset"))
    assert "no-such-org/no-such-dataset" in str(error.value)


def test_hub_loader_reads_a_local_dataset_folder(tmp_path):
    """`datasets.load_dataset` is the same code path for a hub id and a dataset folder."""
    folder = tmp_path / "qhe-like"
    folder.mkdir()
    row = {"task_id": "x/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
           "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f", "difficulty_scale": "basic"}
    (folder / "test.jsonl").write_text(json.dumps(row) + "\n")
    tasks = load_tasks(TaskSourceConfig(source=str(folder)))
    assert [task.task_id for task in tasks] == ["x/0"] and tasks[0].harness == "qhe"


def test_completions_file(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"task_id": "a", "completion": "x"}\n{"task_id": "a", "completion": "y"}\n'
                    '{"task_id": "b", "text": "z", "sample_idx": 7}\n')
    completions = load_completions(path)
    assert [(c.task_id, c.sample_idx, c.text) for c in completions] == [("a", 0, "x"), ("a", 1, "y"), ("b", 7, "z")]
    path.write_text('{"task": "a"}\n')
    with pytest.raises(ValueError, match=":1: expected"):
        load_completions(path)
