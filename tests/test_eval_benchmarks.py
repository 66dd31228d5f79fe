"""The benchmarks' tasks: QHE, QHE-hard and HumanEval told apart by their source (never by a run), and
QHE-hard-style tasks run as whole programs (nothing prepended) in both isolation modes.

The real QHE-hard (Qiskit/qiskit_humaneval_hard) is not available offline: its stand-ins here are
written in its form (a plain-language prompt naming the function and its arguments, a whole
program as the canonical solution) and made from QHE tasks by pipelines.tasks.qhe.whole_program_row.
"""

import json

import pytest

from actors.contracts import Completion
from actors.verify.config import VerifierConfig
from pipelines.tasks.loader import TaskSourceConfig, load_tasks, source_format
from pipelines.tasks.qhe import whole_program_row
from tests.conftest import QHE_JSON

GHZ = {
    "task_id": "qiskitHumanEval/900", "entry_point": "ghz", "difficulty_scale": "basic",
    "prompt": "Return a QuantumCircuit on n_qubits that prepares a GHZ state. You must implement this using a "
              "function named `ghz` with the following arguments: n_qubits.",
    "canonical_solution": "from qiskit import QuantumCircuit\n\n\ndef ghz(n_qubits):\n    qc = QuantumCircuit(n_qubits)\n"
                          "    qc.h(0)\n    for q in range(n_qubits - 1):\n        qc.cx(q, q + 1)\n    return qc\n",
    "test": "from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector\n\n\ndef check(candidate):\n"
            "    for n in (2, 3):\n        qc = candidate(n)\n        assert isinstance(qc, QuantumCircuit)\n"
            "        probabilities = Statevector(qc).probabilities_dict()\n"
            "        assert set(probabilities) == {'0' * n, '1' * n}\n",
}
PROBABILITIES = {
    "task_id": "qiskitHumanEval/901", "entry_point": "bell_probabilities", "difficulty_scale": "intermediate",
    "prompt": "Return the measurement probabilities of the Bell state (|00> + |11>)/sqrt(2) as a dict from bitstring to "
              "probability. You must implement this using a function named `bell_probabilities` with the following "
              "arguments: none.",
    "canonical_solution": "from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector\n\n\n"
                          "def bell_probabilities():\n    qc = QuantumCircuit(2)\n    qc.h(0)\n    qc.cx(0, 1)\n"
                          "    return Statevector(qc).probabilities_dict()\n",
    "test": "def check(candidate):\n    result = candidate()\n    assert set(result) == {'00', '11'}\n"
            "    assert abs(result['00'] - 0.5) < 1e-9 and abs(result['11'] - 0.5) < 1e-9\n",
}
WRONG = {"qiskitHumanEval/900": "from qiskit import QuantumCircuit\n\ndef ghz(n_qubits):\n    return QuantumCircuit(n_qubits)\n",
         "qiskitHumanEval/901": "def bell_probabilities():\n    return {'00': 1.0}\n"}


@pytest.fixture
def hard_file(tmp_path):
    path = tmp_path / "qiskit_humaneval_hard.json"
    path.write_text(json.dumps([GHZ, PROBABILITIES]))
    return path


def test_the_source_names_the_benchmark():
    assert source_format("Qiskit/qiskit_humaneval") == "qhe"
    assert source_format("Qiskit/qiskit_humaneval_hard") == "qhe_hard"
    assert source_format("data/qhe-hard.jsonl") == "qhe_hard"
    assert source_format("../shared/data/qhe/dataset_qiskit_test_human_eval.json") == "qhe"
    assert source_format("humaneval") == source_format("openai/openai_humaneval") == "humaneval"
    assert source_format("x/HumanEval.jsonl.gz") == "humaneval"
    assert source_format("Qiskit/qiskit_humaneval", "qhe_hard") == "qhe_hard"  # an explicit format wins
    assert source_format("data/dataset_qiskit_test_human_eval_hard.json") == "qhe_hard"  # the dataset's own file name


def test_qhe_hard_rows_become_whole_program_tasks(hard_file, tmp_path):
    tasks = load_tasks(TaskSourceConfig(source=str(hard_file)))
    assert [(t.harness, t.family, t.area) for t in tasks] == [("qhe_hard", "qhe_hard", "qhe_hard")] * 2
    assert tasks[0].reference_solution.startswith("from qiskit import") and tasks[0].difficulty == "basic"
    # The same rows under a neutral name are QHE-hard too: their canonical solutions are whole programs.
    neutral = tmp_path / "tasks.json"
    neutral.write_text(hard_file.read_text())
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(neutral)))} == {"qhe_hard"}
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(neutral), format="qhe_hard"))} == {"qhe_hard"}
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(neutral), format="qhe"))} == {"qhe"}


def test_humaneval_loads_from_the_human_eval_package():
    tasks = load_tasks(TaskSourceConfig(source="humaneval"))
    assert len(tasks) == 164 and tasks[0].task_id == "HumanEval/0"
    assert {(t.family, t.harness, t.requires_qpu) for t in tasks} == {("humaneval", "qhe", False)}


@pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")
def test_qhe_tasks_in_whole_program_form():
    rows = json.loads(QHE_JSON.read_text())
    hard = whole_program_row(rows[0])
    assert hard["prompt"].endswith("You must implement this using a function named `create_quantum_circuit` with "
                                   "the following arguments: n_qubits.")
    assert hard["canonical_solution"] == rows[0]["prompt"] + rows[0]["canonical_solution"]
    assert hard["test"].startswith("from qiskit import QuantumCircuit\n")  # the imports the test relied on
    assert all(whole_program_row(row)["entry_point"] == row["entry_point"] for row in rows)


def hard_tasks(hard_file, extra=()):
    import tempfile
    from pathlib import Path

    tasks = load_tasks(TaskSourceConfig(source=str(hard_file)))
    if extra:
        path = Path(tempfile.mkdtemp()) / "qhe_hard_from_qhe.json"
        path.write_text(json.dumps([whole_program_row(row) for row in extra]))
        tasks += load_tasks(TaskSourceConfig(source=str(path)))
    return tasks


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["split", "shared"])
def test_qhe_hard_style_tasks_run_as_whole_programs(hard_file, isolation):
    """Canonical whole programs pass and wrong ones fail in both modes; an answer in QHE's form (a
    function body, expecting the prompt before it) fails, since nothing is prepended; and the old
    reading of these rows as QHE (prompt + completion) fails every canonical solution."""
    from dataclasses import replace

    from actors.verify.verifier import Verifier, reference_jobs

    extra = []
    if QHE_JSON.is_file():
        rows = {row["task_id"]: row for row in json.loads(QHE_JSON.read_text())}
        extra = [rows[f"qiskitHumanEval/{n}"] for n in (0, 1, 9)]
    tasks = hard_tasks(hard_file, extra)
    config = VerifierConfig(isolation=isolation, qpu_gateway=False, timeout_s=60)
    with Verifier(config, slots=2) as verifier:
        canonical = verifier.run(reference_jobs(tasks))
        wrong = verifier.verify(tasks[:2], [Completion(task_id=t, sample_idx=0, text=f"```python\n{code}```")
                                            for t, code in WRONG.items()])
        body_only = verifier.verify(tasks[:1], [Completion(task_id=GHZ["task_id"], sample_idx=0, text=(
            "    qc = QuantumCircuit(n_qubits)\n    qc.h(0)\n    for q in range(n_qubits - 1):\n"
            "        qc.cx(q, q + 1)\n    return qc\n"))])
        as_qhe = verifier.run(reference_jobs([replace(task, harness="qhe") for task in tasks]))
    assert [v.status for v in canonical] == ["passed"] * len(tasks), [v.stderr_tail[-300:] for v in canonical]
    assert {v.isolation for v in canonical} == {isolation}
    assert [v.status for v in wrong] == ["failed", "failed"]
    assert body_only[0].status != "passed"
    assert all(v.status != "passed" and "SyntaxError" in v.stderr_tail for v in as_qhe)


# ---------------------------------------------------------------- QHE-hard told by its rows, not its name


def whole_program_file(tmp_path, numbers=None):
    """QHE's rows in QHE-hard form (prompt and canonical solution joined into a whole program), under
    a name that says nothing of "hard"."""
    rows = json.loads(QHE_JSON.read_text())
    if numbers is not None:
        rows = [row for row in rows if int(row["task_id"].rsplit("/", 1)[1]) in numbers]
    path = tmp_path / "qiskit_whole_programs.json"
    path.write_text(json.dumps([whole_program_row(row) for row in rows]))
    return path


@pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")
def test_a_qhe_shaped_file_of_whole_programs_is_qhe_hard_whatever_its_name(tmp_path):
    from pipelines.tasks.loader import TaskSourceError

    tasks = load_tasks(TaskSourceConfig(source=str(whole_program_file(tmp_path))))
    assert len(tasks) == 151 and {(t.harness, t.family) for t in tasks} == {("qhe_hard", "qhe_hard")}
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(QHE_JSON)))} == {"qhe"}
    rows = json.loads(QHE_JSON.read_text())
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps([whole_program_row(rows[0]), rows[1]]))
    with pytest.raises(TaskSourceError, match="row 0 .* whole program .* row 1 .* continues its prompt"):
        load_tasks(TaskSourceConfig(source=str(mixed)))
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(mixed), format="qhe"))} == {"qhe"}


QUICK = (0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 29)
"""The first QHE tasks that verify in seconds and split (3 needs the shared mode), and one whose
reference cannot pass offline (29: the Graphviz binary), so that failing is compared too."""


@pytest.mark.slow
@pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")
def test_whole_program_qhe_scores_what_qhe_scores(tmp_path):
    """Loaded without any flag, the whole-program file runs as QHE-hard (nothing prepended) and each
    reference passes or fails exactly as the same task's reference does in QHE."""
    from actors.verify.verifier import Verifier

    hard = load_tasks(TaskSourceConfig(source=str(whole_program_file(tmp_path, QUICK))))
    qhe = [task for task in load_tasks(TaskSourceConfig(source=str(QHE_JSON)))
           if int(task.task_id.rsplit("/", 1)[1]) in QUICK]
    assert {t.harness for t in hard} == {"qhe_hard"} and len(hard) == len(qhe) == len(QUICK)
    with Verifier(VerifierConfig(timeout_s=120, qpu_gateway=False), slots=2) as verifier:
        _, hard_verdicts = verifier.calibrate(hard)
        _, qhe_verdicts = verifier.calibrate(qhe)
    hard_status = {v.task_id: v.status for v in hard_verdicts}
    qhe_status = {v.task_id: v.status for v in qhe_verdicts}
    assert hard_status == qhe_status, {t: (hard_status[t], qhe_status[t]) for t in qhe_status
                                       if hard_status[t] != qhe_status[t]}
    assert sorted(hard_status.values()).count("passed") == len(QUICK) - 1
