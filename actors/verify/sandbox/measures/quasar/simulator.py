"""The circuits COBYLA evaluates for QUASAR's optimisation-progress term, simulated in numpy.

:func:`parametrize` makes each numeric angle of a standard gate a parameter (equal values share
one: QUASAR's rule); :func:`compile_template` turns the parametrized circuit into ``probs(theta)``
once, so that each of COBYLA's evaluations costs index permutations, phase vectors and a few
tensor contractions instead of qiskit's per-gate Statevector evolution (about ten times less).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def parametrize(circuit: Any) -> tuple[Any, list[float]]:
    """(the circuit with each numeric angle of a standard gate made a parameter, equal values
    sharing one; the starting values in the circuit's parameter order)."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.circuit.library import get_standard_gate_name_mapping

    standard = get_standard_gate_name_mapping()
    values: dict[float, int] = {}
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name in standard and type(operation) is type(standard[operation.name]):
            for param in operation.params:
                if isinstance(param, (int, float)) and float(param) not in values:
                    values[float(param)] = len(values)
    vector = ParameterVector("theta", len(values))
    template = QuantumCircuit(*circuit.qregs, *circuit.cregs)
    for instruction in circuit.data:
        operation = instruction.operation
        if values and operation.name in standard and type(operation) is type(standard[operation.name]) \
                and operation.params:
            params = [vector[values[float(p)]] if isinstance(p, (int, float)) else p for p in operation.params]
            operation = type(operation)(*params)
        template.append(operation, instruction.qubits, instruction.clbits)
    template.remove_final_measurements(inplace=True)
    return template, [value for value, _ in sorted(values.items(), key=lambda item: item[1])]


_ROTATIONS = {
    "rx": lambda t: np.array([[np.cos(t / 2), -1j * np.sin(t / 2)], [-1j * np.sin(t / 2), np.cos(t / 2)]]),
    "ry": lambda t: np.array([[np.cos(t / 2), -np.sin(t / 2)], [np.sin(t / 2), np.cos(t / 2)]], dtype=complex),
}
"""Closed-form matrices (qiskit's conventions) of the common one-angle dense gates; other gates
with free angles are built through qiskit once per evaluation."""

_PHASES = {  # angle, bits of the gate's qubits -> the phase each basis state takes
    "rz": lambda t, b: np.exp(-0.5j * t * (1 - 2 * b[0])),
    "p": lambda t, b: np.exp(1j * t * b[0]),
    "rzz": lambda t, b: np.exp(-0.5j * t * (1 - 2 * b[0]) * (1 - 2 * b[1])),
    "cp": lambda t, b: np.exp(1j * t * b[0] * b[1]),
}
"""Diagonal one-angle gates as phase vectors (an elementwise product instead of a contraction)."""

_PERMUTATIONS = {  # index array, bits of the gate's qubits, the qubits -> the permuted index
    "x": lambda i, b, q: i ^ (1 << q[0]),
    "cx": lambda i, b, q: i ^ (b[0] << q[1]),
    "ccx": lambda i, b, q: i ^ ((b[0] & b[1]) << q[2]),
    "swap": lambda i, b, q: i ^ ((b[0] ^ b[1]) << q[0]) ^ ((b[0] ^ b[1]) << q[1]),
}
"""Gates that only permute basis states (all are involutions: new[i] = old[perm[i]])."""


def apply_gate(state: np.ndarray, matrix: np.ndarray, qubits: list[int], n: int) -> np.ndarray:
    """``matrix`` (qiskit's little-endian order over ``qubits``) applied to ``state`` shaped (2,)*n
    (axis n-1-q is qubit q)."""
    k = len(qubits)
    axes = [n - 1 - q for q in reversed(qubits)]
    state = np.tensordot(matrix.reshape([2] * (2 * k)), state, axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(state, list(range(k)), axes)


def compile_template(template: Any) -> Any:
    """``probs(theta)`` of a parametrized circuit of gates, in numpy: what COBYLA calls up to 80
    times (qiskit's Statevector costs ~0.1 ms per gate there). Permutations (x, cx, ccx, swap)
    index the state, diagonal gates (rz, p, rzz, cp and constant diagonals) multiply it by a phase
    vector, other gates contract with it."""
    from qiskit.circuit import ParameterExpression

    n = template.num_qubits
    index = np.arange(2**n, dtype=np.int64)
    bits = (index[None, :] >> np.arange(n, dtype=np.int64)[:, None]) & 1
    slot = {parameter: i for i, parameter in enumerate(template.parameters)}
    steps: list[tuple[str, Any, list[int]]] = []
    for instruction in template.data:
        operation = instruction.operation
        qubits = [template.find_bit(qubit).index for qubit in instruction.qubits]
        if operation.name == "barrier":
            continue
        free = [p for p in operation.params if isinstance(p, ParameterExpression)]
        gate_bits = [bits[q] for q in qubits]
        if not free and operation.name in _PERMUTATIONS:
            steps.append(("permute", _PERMUTATIONS[operation.name](index, gate_bits, qubits), qubits))
        elif not free:
            matrix = np.asarray(operation.to_matrix(), dtype=complex)
            if np.allclose(matrix, np.diag(np.diag(matrix))):
                local = sum(b << j for j, b in enumerate(gate_bits))
                steps.append(("phase", np.diag(matrix)[local], qubits))
            else:
                steps.append(("dense", matrix, qubits))
        elif len(operation.params) == 1 and operation.params[0] in slot and operation.name in _PHASES:
            steps.append(("phase_of", (_PHASES[operation.name], slot[operation.params[0]], gate_bits), qubits))
        elif len(operation.params) == 1 and operation.params[0] in slot and operation.name in _ROTATIONS:
            steps.append(("dense_of", (_ROTATIONS[operation.name], slot[operation.params[0]]), qubits))
        else:
            slots = [slot[p] if isinstance(p, ParameterExpression) else float(p) for p in operation.params]
            kind = type(operation)
            steps.append(("dense_of", ((lambda values, kind=kind: np.asarray(kind(*values).to_matrix(), dtype=complex)),
                                       slots), qubits))

    def probs(theta: np.ndarray) -> np.ndarray:
        state = np.zeros(2**n, dtype=complex)
        state[0] = 1.0
        for kind, data, qubits in steps:
            if kind == "permute":
                state = state[data]
            elif kind == "phase":
                state = state * data
            elif kind == "phase_of":
                state = state * data[0](theta[data[1]], data[2])
            else:
                if kind == "dense":
                    matrix = data
                elif isinstance(data[1], int):
                    matrix = data[0](theta[data[1]])
                else:
                    matrix = data[0]([theta[s] if isinstance(s, int) else s for s in data[1]])
                state = apply_gate(state.reshape([2] * n), matrix, qubits, n).reshape(-1)
        return np.abs(state) ** 2

    return probs
