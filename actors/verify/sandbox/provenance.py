"""Which simulators a job's code runs, with what noise, shots and seed: recorded inside the child
that writes the result record, as ``record["provenance"]`` (the parent checks it field by field:
actors/verify/noise/provenance.py).

Hooked while the job runs (:func:`recording`), for each call of: qiskit-aer's ``AerBackend.run``
(``AerSimulator``, its primitives, and qiskit-ibm-runtime's fake backends, which run on an
``AerSimulator`` holding their noise model: such a run is named after the fake backend),
qiskit's ``BasicSimulator.run`` and ``StatevectorSampler.run``. Only classes already imported are
hooked (the zygote imports them all before it forks; a fresh interpreter, the subprocess baseline,
records only what was imported before the job).

What is recorded depends on the mode: in ``shared`` isolation the one child runs the candidate and
its tests, so every run of either is recorded, and the candidate, running in that process, can
alter the record (it is informational only: it never changes a reward). In ``split`` isolation the
checker child writes the record: the runs of the tests themselves (e.g. the tests running the
candidate's circuit on a backend) are recorded, those made inside the candidate's functions, in
the solution child, are not.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Iterator
from typing import Any

MAX_RUNS = 16
"""Entries kept in a record; ``total`` counts every run."""

_HOOKS = (
    ("qiskit_aer.backends.aerbackend", "AerBackend", "aer"),
    ("qiskit_ibm_runtime.fake_provider.fake_backend", "FakeBackendV2", "fake"),
    ("qiskit.providers.basic_provider.basic_simulator", "BasicSimulator", "basic"),
    ("qiskit.primitives.statevector_sampler", "StatevectorSampler", "sampler"),
)
_state = threading.local()
_log: dict[str, Any] = {"runs": [], "total": 0}
"""The record being filled (a fresh one per :func:`recording`)."""


@contextlib.contextmanager
def recording() -> Iterator[dict[str, Any]]:
    """Hook the simulators' ``run`` while the block runs; yields the record's ``provenance``
    (``{"runs": [...], "total": n}``), filled as runs happen. The hooks are removed afterwards
    (the in-process floor runs jobs in the zygote itself)."""
    global _log
    _log = log = {"runs": [], "total": 0}
    hooked = []
    for module_name, class_name, kind in _HOOKS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None and "run" in vars(cls):
            hooked.append((cls, vars(cls)["run"]))
            cls.run = _hooked(vars(cls)["run"], kind)
    try:
        yield log
    finally:
        for cls, original in hooked:
            cls.run = original


def _hooked(original: Any, kind: str) -> Any:
    @functools.wraps(original)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "inside", None) is not None:  # the simulator under a fake backend: named after it
            if _state.inside == "pending":
                _state.inside = "taken"
                _add(_describe(kind, self, args, kwargs, name=_state.name))
            return original(self, *args, **kwargs)
        if kind == "fake":
            _state.inside, _state.name = "pending", getattr(self, "name", "fake backend")
        else:
            _state.inside = "taken"
            _add(_describe(kind, self, args, kwargs))
        try:
            return original(self, *args, **kwargs)
        finally:
            _state.inside = None

    return run


def _add(entry: dict[str, Any] | None) -> None:
    _log["total"] += 1
    if entry is not None and len(_log["runs"]) < MAX_RUNS:
        _log["runs"].append(entry)


def _describe(kind: str, backend: Any, args: tuple, kwargs: dict, name: str | None = None) -> dict[str, Any] | None:
    """backend, noise (a noise model with errors is set), shots, seed (None: unseeded) of one run."""
    try:
        if kind == "sampler":
            shots = kwargs.get("shots") if kwargs.get("shots") is not None else backend.default_shots
            return {"backend": "statevector_sampler", "noise": False, "shots": _number(shots),
                    "seed": _seed(backend.seed)}
        options = backend.options
        model = kwargs.get("noise_model", getattr(options, "noise_model", None))
        noisy = model is not None and not (hasattr(model, "is_ideal") and model.is_ideal())
        return {"backend": str(name or backend.name), "noise": bool(noisy),
                "shots": _number(kwargs.get("shots", getattr(options, "shots", None))),
                "seed": _seed(kwargs.get("seed_simulator", getattr(options, "seed_simulator", None)))}
    except Exception:  # noqa: BLE001 - a description that fails must never fail the run
        return None


def _number(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _seed(value: Any) -> int | str | None:
    """An integer seed as it is; another seed object (a numpy Generator) by its type's name."""
    if value is None:
        return None
    number = _number(value) if not isinstance(value, (float, str)) else None
    return number if number is not None else type(value).__name__
