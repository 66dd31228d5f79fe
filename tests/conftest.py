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
