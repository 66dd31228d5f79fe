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


def test_qhe_hard_rows_become_whole_program_tasks(hard_file, tmp_path):
    tasks = load_tasks(TaskSourceConfig(source=str(hard_file)))
    assert [(t.harness, t.family, t.area) for t in tasks] == [("qhe_hard", "qhe_hard", "qhe_hard")] * 2
    assert tasks[0].reference_solution.startswith("from qiskit import") and tasks[0].difficulty == "basic"
    # The same rows under a neutral name are QHE unless the config says otherwise.
    neutral = tmp_path / "tasks.json"
    neutral.write_text(hard_file.read_text())
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(neutral)))} == {"qhe"}
    assert {t.harness for t in load_tasks(TaskSourceConfig(source=str(neutral), format="qhe_hard"))} == {"qhe_hard"}


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
