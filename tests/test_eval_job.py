"""`qvr eval` as a user runs it: bad inputs are exit 2 before anything starts (naming the file, line and
task), completions made elsewhere score to exact numbers, a tiny model (and a qvr run directory) is
evaluated end to end on CPU with its report, plot and samples, and HumanEval's references all pass."""

import json
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.conftest import EXAMPLES, ROOT, run_qvr

EXAMPLE_IDS = ["examples/bell-state", "examples/ghz-function", "examples/transpile-fake-backend",
               "examples/sampler-counts", "examples/qasm3-roundtrip"]
BENCHMARK = ["benchmarks={\"examples\": {\"tasks\": {\"source\": \"" + str(EXAMPLES) + "\"}, \"max_tokens\": 48}}"]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def run_eval(tmp_path, capsys, *args: str) -> tuple[int, str]:
    code = main(["eval", *args, f"run.root={tmp_path / 'runs'}"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("rows,k,message", [
    ([{"task_id": "examples/bell-state", "completion": "x"}, {"task_id": "examples/nope", "completion": "x"}], "[1]",
     r"completions.jsonl:2: task 'examples/nope' is not in benchmark 'examples'"),
    ([{"task_id": task, "completion": "x", "sample_idx": i} for task in EXAMPLE_IDS for i in range(2)][:-1], "[1,2]",
     r"completions.jsonl:9: task 'examples/qasm3-roundtrip' has 1 sample\(s\), fewer than the largest k \(2\)"),
    ([{"task_id": "examples/bell-state", "completion": "x"}, '{"task_id": "examples/ghz-function", "completion": '],
     "[1]", r"completions.jsonl:2: not JSON"),
    ([{"task_id": "examples/bell-state", "completion": "x"}] * 2, "[1]",
     r"completions.jsonl:2: task 'examples/bell-state' sample 1 appears twice|no completions for 4 of the 5 tasks"),
    ([{"task_id": "examples/bell-state", "completion": 3}], "[1]", r"completions.jsonl:1: expected"),
])
def test_bad_completions_exit_2_naming_file_line_and_task(tmp_path, capsys, rows, k, message):
    import re

    path = write_jsonl(tmp_path / "completions.jsonl", rows)
    code, err = run_eval(tmp_path, capsys, "--completions", str(path), f"sampled.k={k}", *BENCHMARK)
    assert code == 2 and "qvr: config error" in err, err
    assert re.search(message, err), err
    assert not (tmp_path / "runs").exists(), "a run directory was created for a bad input"


def test_bad_task_files_models_and_flags_exit_2(tmp_path, capsys):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [
        {"task_id": "ok", "family": "f", "harness": "program", "prompt": "p", "tests": ""},
        {"task_id": "bad", "family": "f", "harness": "qhe", "prompt": "p", "tests": ""}])
    code, err = run_eval(tmp_path, capsys, "--canonical", "--benchmark", "qhe", "--tasks", str(tasks))
    assert code == 2 and f"{tasks}:2: row 1 (task 'bad')" in err and "needs an entry_point" in err, err
    qhe_hard = write_jsonl(tmp_path / "qhe_hard.jsonl", [{"task_id": "a", "prompt": "p", "test": "t"}])
    code, err = run_eval(tmp_path, capsys, "--canonical", "--benchmark", "h", "--tasks", str(qhe_hard),
                         "benchmarks.h.tasks.format=qhe_hard")
    assert code == 2 and f"{qhe_hard}:1: row 0 (task 'a')" in err and "canonical_solution" in err, err
    code, err = run_eval(tmp_path, capsys, "--model", str(tmp_path / "no-such-model"), *BENCHMARK)
    assert code == 2 and "no-such-model" in err and "no such directory" in err, err
    code, err = run_eval(tmp_path, capsys, "--canonical", "--benchmark", "nope", *BENCHMARK)
    assert code == 2 and "only: ['nope'] are not benchmarks" in err, err
    code, err = run_eval(tmp_path, capsys, *BENCHMARK)
    assert code == 2 and "nothing to evaluate" in err, err
    code, err = run_eval(tmp_path, capsys, "--canonical", "sampled.n=2", "sampled.k=[1,5]", *BENCHMARK)
    assert code == 2 and "n (2) must be at least the largest k (5)" in err, err
    assert not (tmp_path / "runs").exists()


def test_tasks_alone_is_one_benchmark_named_after_the_file(tmp_path, capsys):
    from pipelines.eval import benchmark_name

    assert main(["config", "show", "eval", "--tasks", str(EXAMPLES), "--canonical", "--json"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["benchmarks"]["qiskit-basics"]["tasks"]["source"] == str(EXAMPLES)
    assert config["only"] == ["qiskit-basics"]
    assert benchmark_name("data/held.out.jsonl.gz") == "held-out" and benchmark_name("Qiskit/qiskit_humaneval") == \
        "qiskit_humaneval"
    # With one --benchmark it sets that benchmark's source, as before; with two it is refused.
    assert main(["config", "show", "eval", "--tasks", str(EXAMPLES), "--benchmark", "qhe", "--canonical",
                 "--json"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["benchmarks"]["qhe"]["tasks"]["source"] == str(EXAMPLES) and config["only"] == ["qhe"]
    code, err = run_eval(tmp_path, capsys, "--canonical", "--tasks", str(EXAMPLES), "--benchmark", "a",
                         "--benchmark", "b")
    assert code == 2 and "give one --benchmark NAME, or none" in err, err


@pytest.mark.slow
def test_a_task_file_alone_evaluates_as_its_own_benchmark(tmp_path, ray_session):
    """The acceptance command: `qvr eval --tasks pipelines/tasks/examples/qiskit-basics.jsonl --canonical --json`."""
    code, summary, output = qvr("--tasks", str(EXAMPLES.relative_to(ROOT)), "--canonical",
                                f"run.root={tmp_path / 'runs'}")
    assert code == 0, output
    assert list(summary["benchmarks"]) == ["qiskit-basics"]
    metrics = summary["benchmarks"]["qiskit-basics"]
    assert metrics["tasks"] == 5 and metrics["passed"] == 5


def test_a_qvr_run_directory_resolves_to_its_final_policy(tmp_path):
    from pipelines.evaluation.inputs import EvalInputError, resolve_model

    run = tmp_path / "grpo-20261202T000000Z"
    for step in (1, 2):
        checkpoint = run / "checkpoints" / "learner" / f"checkpoint_{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text(json.dumps({"step": step}))
    (run / "config.yaml").write_text("steps: 2\n")
    with pytest.raises(EvalInputError, match="holds no hf_model"):
        resolve_model(str(run))
    final = run / "checkpoints" / "learner" / "checkpoint_2" / "hf_model"
    final.mkdir()
    (final / "config.json").write_text("{}")
    assert resolve_model(str(run)) == str(final.resolve())
    assert resolve_model(str(final.parent)) == str(final.resolve())
    assert resolve_model(str(final)) == str(final.resolve())
    assert resolve_model("Qwen/Qwen2.5-Coder-14B-Instruct") == "Qwen/Qwen2.5-Coder-14B-Instruct"


def qvr(*args: str) -> tuple[int, dict, str]:
    """`qvr eval ARGS --json` in this process (on the session's Ray: the tests ask for ray_session)."""
    result = run_qvr("eval", *args, "--json")
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "{}"
    return result.returncode, json.loads(last) if last.startswith("{") else {}, result.stdout + result.stderr[-5000:]


POOL = ["pool.workers=1", "pool.slots_per_worker=2", "pool.cpus_per_slot=0.25", "ray.num_cpus=2",
        "verifier.timeout_s=60"]


def check_outputs(summary: dict) -> list[dict]:
    """The run's files agree with the JSON line: summary.json, report numbers, plot, samples."""
    import pyarrow.parquet as pq

    from tests.test_eval_metrics import table

    run = Path(summary["run_dir"])
    assert json.loads((run / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert (run / "passk.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    passk = table(report, "pass@k (%)")
    for row in passk[1:]:
        metrics = summary["models"][row[0]]["benchmarks"][row[1]]
        assert int(row[4]) == metrics["passed"]
        for header, cell in zip(passk[0][5:], row[5:]):
            if cell != "–":
                assert float(cell.split(" ± ")[0]) == round(100 * metrics["pass_at_k"][header.removeprefix("pass@")], 2)
    return pq.read_table(run / "samples.parquet").to_pylist()


@pytest.mark.slow
def test_completions_made_elsewhere_score_exactly(tmp_path, ray_session):
    right = {"examples/bell-state": "```python\nfrom qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\n"
                                    "qc.cx(0, 1)\n```",
             "examples/ghz-function": "    qc = QuantumCircuit(n)\n    qc.h(0)\n    for q in range(n - 1):\n"
                                      "        qc.cx(q, q + 1)\n    return qc\n"}
    wrong = "    return QuantumCircuit(n)\n"  # runs, but no GHZ state: the tests' assertion fails
    no_code, broken_import = "I do not know.", "```python\nimport qiskit.nope\n```"
    # bell: 2/2 right; ghz: 1/2 (the other a wrong answer); the rest 0/2 (sampler-counts: no code at all)
    texts = {"examples/bell-state": [right["examples/bell-state"]] * 2,
             "examples/ghz-function": [right["examples/ghz-function"], wrong]}
    rows = [{"task_id": task, "sample_idx": index,
             "completion": texts[task][index] if task in texts else no_code if task.endswith("counts") else broken_import}
            for task in EXAMPLE_IDS for index in range(2)]
    path = write_jsonl(tmp_path / "elsewhere.jsonl", rows)
    code, summary, output = qvr("--completions", str(path), "sampled.k=[1,2]", *BENCHMARK, *POOL,
                                f"run.root={tmp_path / 'runs'}")
    assert code == 0, output
    metrics = summary["benchmarks"]["examples"]
    assert metrics["n"] == 2 and metrics["tasks"] == 5 and metrics["passed"] == 3
    assert metrics["pass_at_k"] == {"1": pytest.approx((1 + 0.5) / 5), "2": pytest.approx(2 / 5)}
    assert metrics["greedy_pass_at_1"] is None
    assert metrics["failures"] == {"passed": 3, "no_code": 2, "import_error": 4, "wrong_answer": 1}
    assert list(summary["models"]) == ["elsewhere"]
    samples = check_outputs(summary)
    assert len(samples) == 10 and {row["mode"] for row in samples} == {"completions"}


@pytest.mark.slow
def test_tiny_models_end_to_end_side_by_side(tmp_path, ray_session):
    """Two tiny models (one given as a qvr run directory) on CPU: greedy and sampled, one report."""
    from actors.rollout.testing import save_tiny_model

    model = save_tiny_model(tmp_path / "tiny")
    run = tmp_path / "grpo-run"
    final = run / "checkpoints" / "learner" / "checkpoint_1" / "hf_model"
    shutil.copytree(save_tiny_model(tmp_path / "other", seed=1), final)
    (final.parent / "trainer_state.json").write_text(json.dumps({"step": 1}))
    (run / "config.yaml").write_text("steps: 1\n")
    code, summary, output = qvr("--model", str(model), "--model", str(run), *BENCHMARK, *POOL,
                                "rollout.engine=transformers", "rollout.num_cpus=0.25", "rollout.max_model_len=256",
                                "sampled.n=2", "sampled.k=[1,2]", "shard_prompts=2", f"run.root={tmp_path / 'runs'}")
    assert code == 0, output
    assert list(summary["models"]) == ["tiny", "grpo-run"]
    assert summary["models"]["grpo-run"]["source"] == str(run)
    for entry in summary["models"].values():
        metrics = entry["benchmarks"]["examples"]
        assert metrics["n"] == 2 and metrics["tasks"] == 5 and metrics["samples"] == 15
        assert set(metrics["pass_at_k"]) == {"1", "2"} and metrics["greedy_pass_at_1"] is not None
        assert sum(metrics["failures"].values()) == 15
        assert entry["timing"]["generate_s"] > 0 and entry["timing"]["verify_tail_s"] >= 0
    assert summary["benchmarks"] == summary["models"]["tiny"]["benchmarks"]
    samples = check_outputs(summary)
    assert len(samples) == 30
    assert {(row["model"], row["mode"]) for row in samples} == {(m, mode) for m in ("tiny", "grpo-run")
                                                                 for mode in ("greedy", "sampled")}
    assert all(row["prompt_mode"] == "chat" and row["completion_tokens"] <= 48 for row in samples)
    report = Path(summary["report"]).read_text()
    assert "| tiny |" in report and "| grpo-run |" in report
    metrics_rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in metrics_rows] == [0, 1] and "eval/examples/pass@1" in metrics_rows[0]


@pytest.mark.slow
def test_humaneval_canonical_solutions_all_pass(tmp_path, ray_session):
    code, summary, output = qvr("--canonical", 'benchmarks={"humaneval": {"tasks": {"source": "humaneval"}}}',
                                *POOL, "verifier.timeout_s=30", f"run.root={tmp_path / 'runs'}")
    assert code == 0, output
    metrics = summary["benchmarks"]["humaneval"]
    print(f"HumanEval canonical: {metrics['passed']}/{metrics['tasks']}, isolation {metrics['isolation']}")
    assert metrics["tasks"] == 164 and metrics["passed"] == 164, metrics["failures"]
