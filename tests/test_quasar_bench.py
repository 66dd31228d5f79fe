"""`qvr bench verifier` with the ``qasm`` workload only: seconds per QUASAR verification."""

import json

import pytest

from tests.conftest import run_qvr

pytestmark = pytest.mark.slow


def test_bench_verifier_qasm_json(tmp_path, ray_session):
    result = run_qvr("bench", "verifier", "verifier.workloads=[qasm]",
         "verifier.qasm_qubits=[4]", "verifier.qasm_samples=2", f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "small" not in summary and "qhe" not in summary
    qasm = summary["qasm"]
    assert qasm["per_sample_s"]["4q"] > 0  # how fast is the bench's figure, not a test's
    reference, shifted = qasm["rewards"]["4q"]
    assert reference >= 0.9 and shifted < reference
    assert "qasm   4q" in result.stdout
