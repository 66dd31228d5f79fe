import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
QHE_JSON = SHARED / "data" / "qhe" / "dataset_qiskit_test_human_eval.json"
EXAMPLES = ROOT / "pipelines" / "tasks" / "examples" / "qiskit-basics.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def python() -> str:
    return sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a qvr subprocess: this interpreter's bin dir first, offline hub."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(extra)
    return env


QPU_SAMPLER_PROGRAM = ("from qiskit import QuantumCircuit, transpile\n"
                       "from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2, Batch\n"
                       "service = QiskitRuntimeService()\nbackend = service.backend('ibm_manila')\n"
                       "qc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\nqc.measure_all()\n"
                       "with Batch(backend=backend) as batch:\n"
                       "    sampler = SamplerV2(mode=batch)\n    sampler.options.default_shots = 100\n"
                       "    counts = sampler.run([transpile(qc, backend)]).result()[0].data.meas.get_counts()\n"
                       "assert sum(counts.values()) == 100, counts\n")
"""A candidate that samples a Bell circuit on an IBM backend through the runtime primitives (the
sandbox's shim sends it to the QPU gateway)."""


def write_two_stage_recipe(path: Path, name: str) -> Path:
    """A recipe of two quick stages: synth (two tasks) -> verify of what synth wrote (by its output)."""
    import yaml

    path.write_text(yaml.safe_dump({"name": name, "stages": {
        "synth": {"job": "synth", "config": "configs/synth-smoke.yaml",
                  "overrides": ["spec.templates=[bell_state, ghz_state]", "spec.seeds_per_template=1"]},
        "check": {"job": "verify", "config": "configs/verify-quickstart.yaml",
                  "overrides": ["tasks.source={synth.output}", "pool.cpus_per_slot=0.5"]}}}, sort_keys=False))
    return path
