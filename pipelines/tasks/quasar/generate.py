"""QUASAR tasks (arXiv 2510.00967): a graph problem, its cost Hamiltonian and, computed once here,
the ground truth the ``qasm`` checker scores against.

Per task: the exact smallest and largest eigenvalue (the Hamiltonian is a sum of Z products:
the min and max of its diagonal); a reference QAOA circuit (Hadamards, then per layer the cost
unitary as CX ladders around RZ and an RX mixer) with angles optimised by COBYLA on a fast
diagonal simulation from several starts; then polished under the checker's own optimiser (each
numeric angle a parameter, equal values shared: a finer space than QAOA's two angles per layer)
until that optimiser finds nothing better from it, so the reference is what QUASAR's
optimisation-progress term calls optimal; its exact output distribution and expectation (E*).

The ground truth goes into the task's ``tests`` (JSON, hidden from the policy); the prompt holds
only QUASAR's question: "Design a QASM 3.0 quantum circuit with {n} qubits and {p} layers to
solve the {problem} given the graph: {node-link JSON}. Provide valid QASM 3.0 code with optimal
parameters."
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from actors.contracts import Task
from pipelines.tasks.quasar.problems import Instance, instance, to_pauli

PROMPT = ("Design a QASM 3.0 quantum circuit with {n} qubits and {p} layers to solve the {problem} given the graph: "
          "{graph}. Provide valid QASM 3.0 code with optimal parameters.")

CHECKER_SETTINGS = {"cobyla_maxiter": 80, "cobyla_tol": 1e-6, "progress_tol": 1e-3, "max_extra_qubits": 4,
                    "max_angles": 256, "pass_s2": 0.9}
"""What the checker uses (carried in each task's tests; `qvr synth` sets them from
``quasar.checker``, pipelines/tasks/quasar/synth.py)."""


def qaoa_state(diagonal: np.ndarray, n: int, gammas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """QAOA's statevector from the cost diagonal (little-endian), numpy only."""
    state = np.full(2**n, 2 ** (-n / 2), dtype=complex)
    for gamma, beta in zip(gammas, betas):
        state = state * np.exp(-1j * gamma * diagonal)
        mixer = np.array([[np.cos(beta), -1j * np.sin(beta)], [-1j * np.sin(beta), np.cos(beta)]])
        tensor = state.reshape([2] * n)
        for axis in range(n):
            tensor = np.moveaxis(np.tensordot(mixer, tensor, axes=([1], [axis])), 0, axis)
        state = tensor.reshape(-1)
    return state


def optimise_qaoa(diagonal: np.ndarray, n: int, layers: int, seed: int, starts: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(gammas, betas) minimising <H> over a few COBYLA starts (a linear ramp, then random)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    scale = 1.0 / max(np.abs(diagonal - diagonal.mean()).max(), 1e-9)

    def energy(x: np.ndarray) -> float:
        return float(np.abs(qaoa_state(diagonal, n, x[:layers], x[layers:])) ** 2 @ diagonal)

    ramp = np.concatenate([np.linspace(0.1, 1.0, layers) * scale * 2, np.linspace(0.6, 0.1, layers)])
    best = None
    for start in [ramp] + [np.concatenate([rng.uniform(0, 2 * scale * 2, layers), rng.uniform(0, np.pi / 2, layers)])
                           for _ in range(starts - 1)]:
        result = minimize(energy, start, method="COBYLA", options={"maxiter": 400, "rhobeg": 0.3}, tol=1e-8)
        if best is None or result.fun < best.fun:
            best = result
    return best.x[:layers], best.x[layers:]


def qaoa_circuit(paulis: list[str], coeffs: list[float], n: int, gammas: Any, betas: Any) -> Any:
    """The QAOA circuit (measured) of a Z Hamiltonian: each Z product as a CX ladder around RZ."""
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    for gamma, beta in zip(gammas, betas):
        for label, coeff in zip(paulis, coeffs):
            qubits = [n - 1 - position for position, char in enumerate(label) if char == "Z"]
            if not qubits:
                continue
            for a, b in zip(qubits, qubits[1:]):
                circuit.cx(a, b)
            circuit.rz(2 * float(gamma) * float(coeff), qubits[-1])
            for a, b in reversed(list(zip(qubits, qubits[1:]))):
                circuit.cx(a, b)
        for qubit in range(n):
            circuit.rx(2 * float(beta), qubit)
    circuit.measure_all()
    return circuit


def polish(circuit: Any, diagonal: np.ndarray, emin: float, emax: float, settings: dict[str, Any] | None = None,
           rounds: int = 40) -> Any:
    """The circuit moved, under the checker's own optimiser, to where that optimiser finds nothing
    better (nfev 1), or after ``rounds`` rounds: first one long COBYLA run in the checker's
    parameter space (each numeric angle a parameter, equal values shared), then the checker's
    own short runs until they start at their best."""
    from scipy.optimize import minimize

    from actors.verify.sandbox.measures.quasar import optimisation_progress
    from actors.verify.sandbox.measures.quasar.simulator import compile_template, parametrize

    def rebuilt(template: Any, values: Any) -> Any:
        bound = template.assign_parameters(dict(zip(list(template.parameters), values)), inplace=False)
        bound.measure_all()
        return bound

    template, start = parametrize(circuit)
    simulate = compile_template(template)
    if start:
        result = minimize(lambda theta: float(simulate(theta) @ diagonal), np.asarray(start), method="COBYLA",
                          tol=1e-10, options={"maxiter": 60 * len(start) + 400, "rhobeg": 0.2})
        circuit = rebuilt(template, result.x)
    settings = {**CHECKER_SETTINGS, **(settings or {})}
    for _ in range(rounds):
        # A hundred times stricter than the checker: COBYLA's path from the same point differs
        # between processes (floating-point noise), so the reference must be a real optimum,
        # not one that the checker's slack alone makes look optimal.
        progress = optimisation_progress(circuit, lambda probs: float(probs @ diagonal), emin, emax,
                                         settings["cobyla_maxiter"], settings["cobyla_tol"],
                                         settings["progress_tol"] / 100, settings["max_angles"])
        if progress["nfev"] <= 1:
            break
        circuit = rebuilt(progress["template"], progress["best"])
    return circuit


def ground_truth(item: Instance, layers: int, seed: int, checker: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], str]:
    """(the task's hidden ground truth, the reference QASM); ``checker``: settings of the checker's
    optimisation-progress term and pass threshold (default :data:`CHECKER_SETTINGS`)."""
    settings = {**CHECKER_SETTINGS, **(checker or {})}
    from qiskit import qasm3

    from actors.verify.sandbox.measures.quasar import parse_qasm, probabilities, z_diagonal

    n = item.n_qubits
    paulis, coeffs, _ = to_pauli(item.polynomial, n)
    diagonal = z_diagonal(paulis, coeffs, n)
    emin, emax = float(diagonal.min()), float(diagonal.max())
    gammas, betas = optimise_qaoa(diagonal, n, layers, seed)
    circuit = polish(qaoa_circuit(paulis, coeffs, n, gammas, betas), diagonal, emin, emax, settings)
    reference_qasm = qasm3.dumps(circuit)
    probs = probabilities(parse_qasm(reference_qasm))  # what the checker will read back
    truth = {"n_qubits": n, "layers": layers, "paulis": paulis, "coeffs": coeffs, "emin": emin, "emax": emax,
             "energy_ref": float(probs @ diagonal), "reference_probs": [round(float(p), 12) for p in probs],
             "reference_qasm": reference_qasm, "settings": settings}
    return truth, reference_qasm


def generate_task(problem: str, seed: int, qubits: int, layers: int, checker: dict[str, Any] | None = None) -> Task:
    """One QUASAR task: prompt in QUASAR's form, ground truth in ``tests``, the reference QASM;
    ``checker`` as in :func:`ground_truth`."""
    item = instance(problem, seed, qubits)
    truth, reference = ground_truth(item, layers, seed, checker)
    prompt = PROMPT.format(n=item.n_qubits, p=layers, problem=item.description,
                           graph=json.dumps(item.graph, separators=(",", ":")))
    return Task(task_id=f"quasar-{problem}-q{item.n_qubits}-p{layers}-s{seed}", family="quasar", harness="qasm",
                prompt=prompt, tests=json.dumps(truth), reference_solution=reference, difficulty=f"{item.n_qubits}q",
                area=problem, metadata={"problem": problem, "n_qubits": item.n_qubits, "layers": layers, "seed": seed,
                                        "source": "generated"})
