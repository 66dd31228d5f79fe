"""QUASAR's hub dataset (``Benyucong/graph-data-quantum-rl``) rows -> ``qasm`` tasks.

Not testable online here: the columns are inferred from QUASAR's public preprocessing code,
which reads ``prompt`` (the question, QUASAR's wording), ``circuit_with_params`` (the reference
OpenQASM 3 circuit with optimised angles), ``cost_hamiltonian`` (a PennyLane-style string such
as ``-0.5 * (Z(0) @ Z(1)) + 1.0 * Z(2)``) and ``exact_solution`` (JSON with
``smallest_eigenvalues`` and ``largest_eigenvalues``). Assumed besides: optional
``problem_type``, ``number_of_qubits`` and ``number_of_layers`` columns (else read off the
prompt: "with {n} qubits and {p} layers to solve the {problem}"), Hamiltonians of Z products
only (a row with X or Y terms is refused), and Z(i) acting on the circuit's qubit i (qiskit's
order; QUASAR's own converter writes the Pauli string unreversed). Emin and Emax are recomputed
exactly from the diagonal (the hub's values are kept in metadata); the reference distribution
and E* are simulated by the checker from the reference circuit.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from actors.contracts import Task

HUB_DATASET = "Benyucong/graph-data-quantum-rl"
HUB_FIELDS = {"prompt", "circuit_with_params", "cost_hamiltonian"}
"""The columns that make a row a QUASAR hub row."""

_TERM = re.compile(r"([+-]?\s*\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*\*\s*(\((?:[^()]|\(\d*\))*\)|[XYZI]\(\d*\))")
_OPERATOR = re.compile(r"([XYZI])\((\d*)\)")
_SHAPE = re.compile(r"with (\d+) qubits and (\d+) layers? to solve the ([\w-]+)")


def parse_hamiltonian(text: str, n: int | None = None) -> tuple[list[str], list[float], int]:
    """(qiskit Pauli labels, coefficients, qubits) of a PennyLane-style Z Hamiltonian string."""
    terms: list[tuple[float, list[int]]] = []
    for coeff, product in _TERM.findall(text):
        qubits = []
        for pauli, index in _OPERATOR.findall(product):
            if pauli in "XY":
                raise ValueError(f"cost Hamiltonian term {product!r}: only Z products are supported")
            if pauli == "Z":
                qubits.append(int(index))
        terms.append((float(coeff.replace(" ", "")), qubits))
    if not terms:
        raise ValueError(f"no terms in cost Hamiltonian {text[:80]!r}")
    width = max([n or 0] + [q + 1 for _, qubits in terms for q in qubits])
    labels, coeffs = [], []
    for coeff, qubits in terms:
        label = ["I"] * width
        for qubit in qubits:
            label[width - 1 - qubit] = "Z" if label[width - 1 - qubit] == "I" else "I"  # Z @ Z on one qubit = I
        labels.append("".join(label))
        coeffs.append(coeff)
    return labels, coeffs, width


def hub_row_to_task(row: dict[str, Any], split: str = "") -> Task:
    """One hub row -> a ``qasm`` task of family ``quasar`` (see the module docstring)."""
    from actors.verify.sandbox.measures.quasar import z_diagonal

    prompt = str(row["prompt"])
    shape = _SHAPE.search(prompt)
    n = int(row.get("number_of_qubits") or (shape.group(1) if shape else 0)) or None
    layers = int(row.get("number_of_layers") or (shape.group(2) if shape else 0)) or None
    problem = str(row.get("problem_type") or (shape.group(3) if shape else "unknown"))
    paulis, coeffs, n_qubits = parse_hamiltonian(str(row["cost_hamiltonian"]), n)
    diagonal = z_diagonal(paulis, coeffs, n_qubits)
    truth = {"n_qubits": n_qubits, "layers": layers, "paulis": paulis, "coeffs": coeffs,
             "emin": float(diagonal.min()), "emax": float(diagonal.max()), "energy_ref": None,
             "reference_probs": None, "reference_qasm": str(row["circuit_with_params"])}
    exact = row.get("exact_solution")
    try:
        exact = json.loads(exact) if isinstance(exact, str) else exact
    except json.JSONDecodeError:
        exact = None
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:12]
    return Task(task_id=f"quasar-hub-{digest}", family="quasar", harness="qasm", prompt=prompt,
                tests=json.dumps(truth), reference_solution=str(row["circuit_with_params"]),
                difficulty=f"{n_qubits}q", area=problem,
                metadata={"problem": problem, "n_qubits": n_qubits, "layers": layers, "source": HUB_DATASET,
                          "split": split, "hub_exact_solution": exact})
