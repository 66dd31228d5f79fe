"""Isolation modes the verifier pool calibrated, kept across evaluations.

The pool decides each unmarked task's isolation mode by running its reference (split, then shared
where split fails) before any of the task's samples run. On QHE that is 151 reference runs, more
than a small model's whole greedy evaluation takes to verify: an evaluation run would spend most
of its time after generation calibrating. The modes depend only on the task (its prompt, tests and
reference), the verifier's sandbox code, its limits and the Qiskit stack, so ``qvr eval`` keeps the
pool's marks in ``<run.root>/isolation-cache.json`` keyed by a hash of exactly those, and marks a
task from there before the pool sees it. A change to any of them is a new key: the pool calibrates
again. Nothing here ever looks at a candidate's result.

Only ``split`` marks are kept. The cache is a file anyone with the run root may edit: kept marks can
thus only save work, never weaken a task's isolation, and tasks that need ``shared`` prove it again
in each run (their reference fails split and passes shared; a split timeout never counts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger("qvr.eval")

STACK = ("qiskit", "qiskit-aer", "qiskit-ibm-runtime", "numpy", "scipy")


def environment_key(verifier: Any) -> str:
    """What a calibration depends on besides the task: the sandbox's code, limits and the stack."""
    import actors.verify.sandbox as sandbox

    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    for package in STACK:
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    for path in sorted(Path(sandbox.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    limits = {"timeout_s": verifier.timeout_s, "sandbox": verifier.sandbox.model_dump(exclude={"hidden_paths"}),
              "qpu_gateway": verifier.qpu_gateway, "python": verifier.python}
    digest.update(json.dumps(limits, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def task_key(task: Any) -> str:
    fields = [task.harness, task.prompt, task.tests, task.entry_point, task.reference_solution, task.requires_qpu]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:24]


class IsolationCache:
    """``{environment key: {task key: mode}}`` in one JSON file."""

    def __init__(self, path: str | Path, verifier: Any) -> None:
        self.path = Path(path)
        self.environment = environment_key(verifier)
        self.modes: dict[str, str] = {}
        if self.path.is_file():
            try:
                self.modes = dict(json.loads(self.path.read_text()).get(self.environment, {}))
            except (json.JSONDecodeError, AttributeError, TypeError):
                log.warning("%s is not an isolation cache; it will be rewritten", self.path)

    def apply(self, tasks: list[Any]) -> int:
        """Mark the unmarked tasks the cache knows; returns how many."""
        marked = 0
        for task in tasks:
            mode = self.modes.get(task_key(task))
            if "isolation" not in task.metadata and mode == "split":
                task.metadata["isolation"] = mode
                marked += 1
        return marked

    def save(self, tasks: list[Any]) -> int:
        """Remember the split marks of ``tasks`` (those the pool calibrated); returns how many are new."""
        new = {task_key(task): "split" for task in tasks if task.metadata.get("isolation") == "split"}
        added = sum(key not in self.modes for key in new)
        if not added:
            return 0
        self.modes.update(new)
        data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                data = {}
        data[self.environment] = {**data.get(self.environment, {}), **self.modes}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(data, indent=0, sort_keys=True))
        temporary.replace(self.path)
        return added
