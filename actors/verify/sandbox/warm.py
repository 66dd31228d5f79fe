"""What the zygote does once, before it forks anything: import and run the hot paths that tasks
use, let every registered harness warm what its checks use, import the rest of this package (a
child's file view holds nothing of qvr), and freeze the heap."""

from __future__ import annotations

import gc
import os
import sys

from actors.verify.sandbox.codecs.backends import warm as warm_backends
from actors.verify.sandbox.config import load_plugins
from actors.verify.sandbox.harnesses.registry import HARNESSES


def warm_up(backends: list[str] = (), plugins: list[str] = ()) -> None:
    """Import what QHE and synthetic tasks use and run each hot path once, then let every harness
    warm what its checks use, then freeze the heap. ``backends``: fake backends whose Targets the
    split checker's codec keeps ready; ``plugins``: modules outside this package that register
    harnesses or measure providers (``verifier.sandbox.plugins``), imported first.

    The harnesses come from their registry, never by name (see the module docstring)."""
    import numpy  # noqa: F401
    import qiskit
    import qiskit_aer
    import qiskit_ibm_runtime  # noqa: F401
    import scipy  # noqa: F401
    from qiskit.quantum_info import Statevector
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    circuit = qiskit.QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    Statevector(circuit)
    circuit.measure_all()
    transpiled = qiskit.transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=1)
    qiskit_aer.AerSimulator().run(transpiled, shots=16, seed_simulator=1).result()
    warm_backends(list(backends))
    load_plugins(plugins)
    preload()
    for harness in HARNESSES.values():
        harness.warm()
    os.register_at_fork(after_in_child=fresh_numpy_draws)
    gc.collect()
    gc.freeze()


def preload() -> None:
    """Import every module of this package now: a child's file view holds nothing of qvr, so
    whatever it runs of qvr must already be in memory when the zygote forks."""
    import importlib
    import pkgutil

    import actors.verify.sandbox as package

    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)


def fresh_numpy_draws() -> None:
    """Reseed numpy's global generator from the OS, in a child right after its fork: every child
    would otherwise inherit the zygote's generator state and draw the same ``np.random`` numbers,
    so that running a job again (a re-measurement, actors/verify/noise) would not be a new draw.
    (Python's ``random`` reseeds itself after a fork; Aer seeds each run itself.)"""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
