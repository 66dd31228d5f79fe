"""What a verdict depends on, as one key, and which verdicts may be kept.

A verdict is decided by: the program that ran (the extracted code) and the completion's text
(form rewards read it); the task's content (family, harness, prompt, tests, entry point, QPU flag)
and, of its metadata, what reaches the checker: its isolation mode and the measure requests its
rewards make of it (``metadata["circuit"]`` names a measure's target), never its id or its
bookkeeping (a template's seed, counted mutants); the verifier settings (the sandbox's
limits, the rewards' weights, the QPU backends and their noise; not where files lie); the source
of the code that decides it (the verifier, its harnesses, measures and rewards, the data
contracts and any sandbox plugin: a package version does not change when that code does); and the
versions of Python and the quantum libraries. The key is the SHA-256 of all of it, so a verdict
can never answer for other tests, another backend, other shots (they are in the tests' text),
other settings or other code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from actors.contracts import Verdict
from actors.verify.noise.stochastic import stochastic
from actors.verify.rewards.measures import requests

if TYPE_CHECKING:
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob

KEPT_STATUSES = ("passed", "failed")
"""Verdicts the checker reached. Timeouts and kills say how loaded the machine was; an ``error``
is the infrastructure's (no code, a lost worker, a zygote that failed): all run again."""

LIBRARIES = ("qiskit", "qiskit-aer", "qiskit-ibm-runtime", "numpy", "scipy")

_SETTINGS_ASIDE = {"huge_pages": True, "warm_backends": True, "sandbox": {"hidden_paths": True},
                   "qpu": {"budget_s": True, "budget_per_step_s": True}, "tiers": True, "noise": True}
"""VerifierConfig fields that change how fast, where or whether a verdict is reached, not what it says
(a QPU budget only refuses: an ``over_budget`` verdict is never kept), or that change only verdicts
that are never kept (``tiers``: tasks that need the QPU; ``noise``: stochastic jobs)."""

ACTORS = Path(__file__).resolve().parents[2]
DECIDING_CODE = ("verify", "contracts.py")
"""Under actors/: the code that decides a verdict (the pool and the cache included: harmless)."""


def cacheable(job: VerificationJob) -> bool:
    """Whether the job's verdict is a function of its key: no QPU, nothing noisy or random in the
    task or the program (:func:`~actors.verify.noise.stochastic.stochastic`: such a verdict is a
    draw, settled by re-measurement, never a fact to keep)."""
    return not job.task.requires_qpu and not stochastic(job.task, job.code)


def keeps(verdict: Verdict) -> bool:
    return verdict.status in KEPT_STATUSES


def verdict_key(job: VerificationJob, config: VerifierConfig) -> str:
    task = job.task
    content = {
        "code": job.code,
        "text": job.text if job.text not in (None, job.code) else None,
        "task": {"family": task.family, "harness": task.harness, "prompt": task.prompt, "tests": task.tests,
                 "entry_point": task.entry_point, "requires_qpu": task.requires_qpu,
                 # the metadata decides only through these two (a template's seed, a task's mutants do not)
                 "isolation": task.metadata.get("isolation"),
                 "measure_requests": requests(task, config.rewards.weights_for(task.family))},
        "settings": config.model_dump(mode="json", exclude=_SETTINGS_ASIDE),
        "code_of_verifier": fingerprint(tuple(config.sandbox.plugins)),
    }
    encoded = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def fingerprint(plugins: tuple[str, ...] = ()) -> str:
    """SHA-256 of the deciding code's source and the library versions (once per process)."""
    digest = hashlib.sha256()
    actors = ACTORS
    files = sorted(path for name in DECIDING_CODE for path in
                   ((actors / name).rglob("*.py") if (actors / name).is_dir() else [actors / name]))
    for plugin in plugins:
        module = sys.modules.get(plugin) or __import__(plugin, fromlist=["_"])
        if getattr(module, "__file__", None):
            files.append(Path(module.__file__))
    for path in files:
        digest.update(str(path.relative_to(actors) if path.is_relative_to(actors) else path.name).encode())
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    for library in LIBRARIES:
        digest.update(f"{library}=={_version(library)}".encode())
    return digest.hexdigest()


def _version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "absent"

