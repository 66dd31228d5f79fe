"""QUASAR's measures of an OpenQASM 3 candidate (arXiv 2510.00967), computed by the checker.

Everything here is plain numerics on a circuit the checker parsed itself: the exact output
distribution (Statevector, final measurements removed), the cost Hamiltonian's diagonal (the
Hamiltonians are sums of Z products, hence diagonal: energies of every basis state at once), and
the measures the hierarchical reward combines:

- ``syntax_valid``: 1 when the text parses as OpenQASM 3 (only ``stdgates.inc`` may be included,
  every angle must have a value), else 0 and nothing else is measured;
- ``m``, ``dw``: the qubit-count mismatch penalty and the weight of the distribution term
  (``m = -0.2 - 0.05*|dn| - 0.1*extra`` clipped at -1, ``dw = 0.5`` on a mismatch, else 0 and 1);
- ``s2 = 1 - sqrt(JS(p||q)/ln 2)``: distribution alignment with the reference (on the common
  qubits' marginals when the counts differ), 1e-12 smoothing;
- ``s3 = 1 - (E - Emin)/(Emax - Emin)``: the candidate's expectation of the cost Hamiltonian;
- ``s4 = 0.8/nfev + 0.2*s3_after``: optimisation progress. COBYLA starts from the candidate's
  own angles (each numeric angle of a standard gate is a parameter, equal values share one) and
  runs at most ``cobyla_maxiter`` evaluations with ``tol`` (simulated in numpy:
  actors/verify/sandbox/measures/quasar/simulator.py); ``nfev`` is the (1-based) evaluation at
  which it first came within ``progress_tol * (Emax - Emin)`` of the best energy it found (1:
  the candidate's angles were already optimal), ``s3_after`` the s3 of that best energy. A circuit
  without angles has nothing to optimise, and one with more angles than COBYLA can start with in
  ``cobyla_maxiter`` evaluations (angles + 2) is not optimised: their s4 is ``0.2*s3``.
- for evaluation: ``energy`` (E), ``energy_ref`` (E*), ``re_bits`` (KL(p_gen||p_ref) in bits).

Qubit mapping (qiskit's little-endian order): the Hamiltonian acts on qubits 0..n-1. A candidate
with more qubits is scored on its marginal over those; one with fewer is taken as having the
missing qubits in |0>. A candidate beyond ``max_extra_qubits`` more than the task is not simulated
(its m is clipped at -1 anyway, s2 = s3 = s4 = 0).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from actors.verify.sandbox.measures.quasar.simulator import compile_template, parametrize

SMOOTHING = 1e-12
_INCLUDE = re.compile(r'^\s*include\s+"([^"]*)"\s*;', re.MULTILINE)
_QUBIT_DECLARATION = re.compile(r"\b(?:qubit|qreg)\b\s*(?:\[\s*(\d+)\s*\])?")
MAX_DECLARED_QUBITS = 64
"""A program declaring more qubits than this is refused before parsing (a million-qubit register
would cost the importer more memory than the sandbox allows)."""


class InvalidProgram(ValueError):
    """The text is not a program the checker accepts (syntax, includes, unbound angles)."""


# ---------------------------------------------------------------- parsing and simulation


def parse_qasm(text: str) -> Any:
    """The QuantumCircuit of an OpenQASM 3 text, or InvalidProgram. Only ``stdgates.inc`` may be
    included: nothing is ever read from disk on the candidate's behalf."""
    from qiskit import qasm3

    if not isinstance(text, str) or "OPENQASM" not in text:
        raise InvalidProgram("not an OpenQASM program (no OPENQASM header)")
    declared = sum(int(size or 1) for size in _QUBIT_DECLARATION.findall(text))
    if declared > MAX_DECLARED_QUBITS:
        raise InvalidProgram(f"{declared} qubits declared; at most {MAX_DECLARED_QUBITS}")
    for name in _INCLUDE.findall(text):
        if name != "stdgates.inc":
            raise InvalidProgram(f"include {name!r}: only stdgates.inc may be included")
    try:
        circuit = qasm3.loads(text)
    except Exception as error:  # noqa: BLE001 - any importer failure is a syntax failure
        raise InvalidProgram(f"{type(error).__name__}: {error}"[:500]) from None
    if circuit.parameters:
        raise InvalidProgram(f"unbound angles {sorted(p.name for p in circuit.parameters)[:5]}: give every angle a value")
    return circuit


def probabilities(circuit: Any) -> np.ndarray:
    """Exact output distribution (little-endian indices), final measurements removed."""
    from qiskit.quantum_info import Statevector

    bare = circuit.remove_final_measurements(inplace=False)
    return np.abs(Statevector(bare).data) ** 2


def z_diagonal(paulis: list[str], coeffs: list[float], n: int) -> np.ndarray:
    """Energies of the 2^n basis states of a sum of Z products (qiskit labels: the rightmost
    character is qubit 0)."""
    index = np.arange(2**n, dtype=np.int64)
    signs = 1 - 2 * ((index[None, :] >> np.arange(n, dtype=np.int64)[:, None]) & 1)  # [qubit, state]
    diagonal = np.zeros(2**n)
    for label, coeff in zip(paulis, coeffs):
        if len(label) != n or set(label) - {"I", "Z"}:
            raise ValueError(f"Pauli {label!r}: only I/Z strings of length {n} are diagonal")
        qubits = [n - 1 - position for position, char in enumerate(label) if char == "Z"]
        term = np.prod(signs[qubits], axis=0) if qubits else np.ones(2**n)
        diagonal += float(coeff) * term
    return diagonal


def on_task_qubits(probs: np.ndarray, n_candidate: int, n: int) -> np.ndarray:
    """The candidate's distribution over the task's n qubits (marginal, or padded with |0>)."""
    if n_candidate >= n:
        return probs.reshape(2 ** (n_candidate - n), 2**n).sum(axis=0)
    padded = np.zeros(2**n)
    padded[: 2**n_candidate] = probs
    return padded


def marginal(probs: np.ndarray, n_total: int, k: int) -> np.ndarray:
    """Marginal over qubits 0..k-1."""
    return probs.reshape(2 ** (n_total - k), 2**k).sum(axis=0)


def _smooth(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float) + SMOOTHING
    return p / p.sum()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in nats (0 .. ln 2), both smoothed."""
    p, q = _smooth(p), _smooth(q)
    mid = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log(p / mid)) + 0.5 * np.sum(q * np.log(q / mid)))


def alignment(p: np.ndarray, q: np.ndarray) -> float:
    """s2 = 1 - sqrt(JS/ln 2): 1 for equal distributions, 0 for disjoint ones."""
    return float(1.0 - math.sqrt(max(0.0, js_divergence(p, q)) / math.log(2)))


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p||q) in bits, both smoothed (QUASAR's relative entropy, RE)."""
    p, q = _smooth(p), _smooth(q)
    return float(np.sum(p * np.log2(p / q)))


def energy_score(energy: float, emin: float, emax: float) -> float:
    """s3 = 1 - (E - Emin)/(Emax - Emin) (1 when the spectrum is flat)."""
    return 1.0 if emax - emin <= 1e-12 else float(1.0 - (energy - emin) / (emax - emin))


def mismatch(n_candidate: int, n: int, extra_acted_on: int) -> tuple[float, float]:
    """(m, dw) of the qubit-count mismatch."""
    if n_candidate == n:
        return 0.0, 1.0
    return max(-1.0, -0.2 - 0.05 * abs(n_candidate - n) - 0.1 * extra_acted_on), 0.5


def qubits_acted_on(circuit: Any) -> set[int]:
    """Indices of the qubits some operation (not a measure or barrier) touches."""
    touched: set[int] = set()
    for instruction in circuit.data:
        if instruction.operation.name in ("measure", "barrier"):
            continue
        touched.update(circuit.find_bit(qubit).index for qubit in instruction.qubits)
    return touched


# ---------------------------------------------------------------- optimisation progress (s4)


def optimisation_progress(circuit: Any, task_energy: Any, emin: float, emax: float, maxiter: int, tol: float,
                          progress_tol: float, max_angles: int = 256) -> dict[str, Any]:
    """s4 as the module docstring defines it: ``{"s4", "s3_after", "nfev", "template", "best"}``
    (``best``: the angles of the best energy found, for the template's parameters in order).
    ``task_energy(probs)`` maps the candidate's full distribution to its energy. A circuit with
    more angles than ``max_angles``, or than COBYLA can start with in ``maxiter`` evaluations
    (it needs angles + 2), is not optimised (s4 = 0.2*s3, like a circuit without angles)."""
    from scipy.optimize import minimize

    template, start = parametrize(circuit)
    if not start or len(start) > max_angles or len(start) + 2 > maxiter:
        s3 = energy_score(task_energy(probabilities(circuit)), emin, emax)
        return {"s4": 0.2 * s3, "s3_after": s3, "nfev": 0, "template": template, "best": list(start)}
    simulate = compile_template(template)
    trials: list[tuple[float, np.ndarray]] = []

    def energy(theta: np.ndarray) -> float:
        value = float(task_energy(simulate(theta)))
        trials.append((value, np.array(theta, dtype=float)))
        return value

    minimize(energy, np.asarray(start, dtype=float), method="COBYLA", tol=tol, options={"maxiter": maxiter})
    best = min(value for value, _ in trials)
    slack = progress_tol * max(emax - emin, 1e-12)
    nfev = next(index for index, (value, _) in enumerate(trials, 1) if value <= best + slack)
    s3_after = energy_score(best, emin, emax)
    best_theta = min(trials, key=lambda trial: trial[0])[1]
    return {"s4": 0.8 / nfev + 0.2 * s3_after, "s3_after": s3_after, "nfev": nfev, "template": template,
            "best": [float(value) for value in best_theta]}


# ---------------------------------------------------------------- all measures of one candidate


DEFAULT_SETTINGS = {"cobyla_maxiter": 80, "cobyla_tol": 1e-6, "progress_tol": 1e-3, "max_extra_qubits": 4,
                    "max_angles": 256}
"""For tasks whose tests carry no ``settings`` (hub rows); generated tasks carry theirs."""


def reference_distribution(truth: dict[str, Any]) -> np.ndarray:
    """The reference's output distribution over the task's qubits: stored at generation, or
    simulated from the reference circuit (hub rows carry only the circuit)."""
    if truth.get("reference_probs") is not None:
        return np.asarray(truth["reference_probs"], dtype=float)
    reference = parse_qasm(truth["reference_qasm"])
    return on_task_qubits(probabilities(reference), reference.num_qubits, int(truth["n_qubits"]))


def measure(text: str, truth: dict[str, Any]) -> dict[str, float]:
    """Every measure of one candidate against a task's hidden ground truth ``truth`` (the task's
    ``tests`` JSON: n_qubits, paulis, coeffs, emin, emax, reference_probs or reference_qasm,
    energy_ref, settings)."""
    try:
        circuit = parse_qasm(text)
    except InvalidProgram:
        return {"syntax_valid": 0.0}
    settings = {**DEFAULT_SETTINGS, **truth.get("settings", {})}
    n, n_candidate = int(truth["n_qubits"]), circuit.num_qubits
    extra = len({index for index in qubits_acted_on(circuit) if index >= n})
    m, dw = mismatch(n_candidate, n, extra)
    measures = {"syntax_valid": 1.0, "m": m, "dw": dw, "n_qubits": float(n_candidate), "s2": 0.0, "s3": 0.0,
                "s4": 0.0, "simulated": 0.0}
    if n_candidate > n + settings["max_extra_qubits"] or n_candidate == 0:
        return measures
    diagonal = z_diagonal(truth["paulis"], truth["coeffs"], n)
    emin, emax = float(truth["emin"]), float(truth["emax"])
    reference = reference_distribution(truth)
    try:
        probs = probabilities(circuit)
    except Exception:  # noqa: BLE001 - e.g. mid-circuit measurement, reset, control flow: not simulable
        return measures

    def task_energy(full: np.ndarray) -> float:
        return float(on_task_qubits(full, n_candidate, n) @ diagonal)

    common = min(n, n_candidate)
    candidate_marginal, reference_marginal = marginal(probs, n_candidate, common), marginal(reference, n, common)
    energy = task_energy(probs)
    energy_ref = float(truth["energy_ref"]) if truth.get("energy_ref") is not None else float(reference @ diagonal)
    measures.update(simulated=1.0, s2=alignment(candidate_marginal, reference_marginal),
                    s3=energy_score(energy, emin, emax), energy=energy, energy_ref=energy_ref,
                    re_bits=kl_bits(candidate_marginal, reference_marginal))
    progress = optimisation_progress(circuit, task_energy, emin, emax, int(settings["cobyla_maxiter"]),
                                     float(settings["cobyla_tol"]), float(settings["progress_tol"]),
                                     int(settings["max_angles"]))
    measures.update(s4=progress["s4"], s3_after=progress["s3_after"], nfev=float(progress["nfev"]))
    return measures


def warm() -> None:
    """Import and run once what a ``qasm`` check uses (the OpenQASM 3 parser, COBYLA), so that a
    zygote's children find it in memory."""
    import scipy.optimize  # noqa: F401

    truth = {"n_qubits": 1, "paulis": ["Z"], "coeffs": [1.0], "emin": -1.0, "emax": 1.0, "reference_probs": [0.0, 1.0],
             "energy_ref": -1.0, "settings": {"cobyla_maxiter": 5}}
    measure('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nrx(0.5) q[0];\n', truth)
