"""Algorithms: VQE-style energies and minimisation, QAOA cost layers and expectations, exact diagonalisation.

Tests call the functions the prompt asks for at several points and compare with values computed
independently (numpy matrices, Statevector). Where a mutant's effect depends on the drawn
Hamiltonian, the template checks with small numpy computations that the effect is visible.
"""

from __future__ import annotations

import math
import random
from functools import reduce

import numpy as np

from pipelines.tasks.templates.common import (
    drop_line,
    linear_combination,
    mutate,
    pick_float,
    prompts,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "algorithms"

PAULIS = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
          "Z": np.diag([1.0, -1.0])}


def _pauli_sum(terms: list[tuple[str, float]]) -> np.ndarray:
    """Matrix of Σ c·P (labels in Qiskit order: the leftmost letter acts on the highest qubit)."""
    return sum(coeff * reduce(np.kron, [PAULIS[p] for p in label]) for label, coeff in terms)


def _rotation(gate: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    return np.array([[c, -s], [s, c]]) if gate == "ry" else np.array([[c, -1j * s], [-1j * s, c]])


def _ansatz_state(n: int, gate: str, params: list[float], chain: bool) -> np.ndarray:
    """⊗ gate(params[q]) |0…0⟩, then CNOT(q-1, q) for q = 1..n-1 when ``chain``."""
    state = np.zeros(2 ** n, dtype=complex)
    state[0] = 1
    for qubit in range(n):
        single = reduce(np.kron, [_rotation(gate, params[q]) if q == qubit else np.eye(2) for q in reversed(range(n))])
        state = single @ state
    if chain:
        for target in range(1, n):
            control = target - 1
            permuted = state.copy()
            for index in range(2 ** n):
                if index >> control & 1:
                    permuted[index ^ (1 << target)] = state[index]
            state = permuted
    return state


def _random_terms(rng: random.Random, n: int, count: int, alphabet: str = "IXZ") -> list[tuple[str, float]]:
    labels: list[str] = []
    while len(labels) < count:
        label = "".join(rng.choice(alphabet) for _ in range(n))
        if label.strip("I") and label not in labels:
            labels.append(label)
    return [(label, pick_float(rng, -1.5, 1.5)) for label in labels]


def _terms_code(terms: list[tuple[str, float]]) -> str:
    return "[" + ", ".join(f"({label!r}, {coeff})" for label, coeff in terms) + "]"


def _terms_text(terms: list[tuple[str, float]]) -> str:
    return linear_combination(terms)


@template("vqe_energy_function", area=AREA)
def vqe_energy_function(rng: random.Random) -> Draft:
    """A function returning ⟨ψ(θ)|H|ψ(θ)⟩ for a fixed hardware-efficient ansatz."""
    n = rng.randint(2, 3)
    probes = [[pick_float(rng, -3.0, 3.0) for _ in range(n)] for _ in range(3)]
    while True:
        terms = _random_terms(rng, n, rng.randint(2, 4))
        matrix = _pauli_sum(terms)
        flipped = _pauli_sum([(terms[0][0], -terms[0][1])] + terms[1:])

        def energies(op: np.ndarray, gate: str = "ry", chain: bool = True) -> list[float]:
            return [float(np.real(np.vdot(s, op @ s))) for s in (_ansatz_state(n, gate, p, chain) for p in probes)]

        reference_values = energies(matrix)
        variants = [energies(matrix, gate="rx"), energies(flipped), energies(matrix, chain=False)]
        if all(max(abs(x - y) for x, y in zip(reference_values, v)) > 1e-3 for v in variants):
            break
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import SparsePauliOp, Statevector

        hamiltonian = SparsePauliOp.from_list({_terms_code(terms)})


        def energy(params):
            circuit = QuantumCircuit({n})
            for q in range({n}):
                circuit.ry(params[q], q)
            for q in range(1, {n}):
                circuit.cx(q - 1, q)
            return float(Statevector(circuit).expectation_value(hamiltonian).real)
        """)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import SparsePauliOp, Statevector


        class TestEnergyFunction(unittest.TestCase):
            def test_energies(self):
                matrix = SparsePauliOp.from_list({_terms_code(terms)}).to_matrix()
                for params in {probes!r}:
                    circuit = QuantumCircuit({n})
                    for q in range({n}):
                        circuit.ry(params[q], q)
                    for q in range(1, {n}):
                        circuit.cx(q - 1, q)
                    state = Statevector(circuit).data
                    expected = float(np.real(np.conj(state) @ matrix @ state))
                    self.assertAlmostEqual(float(energy(list(params))), expected, places=7)
        """)
    return Draft(
        prompts=prompts([
            f"Write the cost function of a VQE: energy(params) prepares {n} qubits with RY(params[q]) on each "
            f"qubit q followed by CNOTs from qubit q-1 to q (q = 1..{n - 1}), and returns the exact expectation "
            f"value of H = {_terms_text(terms)} (Qiskit label order, rightmost letter = qubit 0).",
            f"Implement a Qiskit function energy(params) → float for the ansatz [RY(params[q]) on qubit q for "
            f"all {n} qubits, then a CNOT chain q-1 → q] and the Hamiltonian SparsePauliOp.from_list("
            f"{_terms_code(terms)}), computed exactly with Statevector.",
            f"For VQE on H = {_terms_text(terms)}, code the objective: given a list of {n} angles, build the "
            "RY-layer + linear-CNOT-chain ansatz and return ⟨ψ|H|ψ⟩ (a real float, exact, no sampling).",
        ], "Define the function `energy(params)` (params: a list of floats, one per qubit) returning a float."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", "circuit.ry(params[q], q)", "circuit.rx(params[q], q)"),
            mutate(reference, "wrong_parameter", f"({terms[0][0]!r}, {terms[0][1]})",
                   f"({terms[0][0]!r}, {-terms[0][1]})"),
            mutate(reference, "missing_step", "circuit.cx(q - 1, q)", "pass"),
        ],
        features={"num_qubits": n, "gate_count": 2 * n - 1, "concepts": ["VQE", "SparsePauliOp", "function"]},
        entry_point="energy",
    )


def _random_graph(rng: random.Random, n: int, weighted: bool) -> list[tuple[int, int, float]]:
    """A connected graph: a random spanning path plus a few extra edges."""
    order = rng.sample(range(n), n)
    pairs = {tuple(sorted(order[i:i + 2])) for i in range(n - 1)}
    extra = [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in pairs]
    pairs |= set(rng.sample(extra, min(len(extra), rng.randint(0, 2))))
    return [(i, j, rng.choice([0.5, 1.0, 2.0]) if weighted else 1.0) for i, j in sorted(pairs)]


@template("qaoa_cost_layer", area=AREA)
def qaoa_cost_layer(rng: random.Random) -> Draft:
    """The QAOA cost unitary exp(-iγ Σ w ZZ) as a function of γ."""
    n = rng.randint(3, 5)
    edges = _random_graph(rng, n, weighted=rng.random() < 0.5)
    i, j, w = edges[0]
    moved = next(k for k in range(n) if k not in (i, j))
    reference = source(f"""
        from qiskit import QuantumCircuit

        EDGES = {edges!r}


        def cost_layer(gamma):
            circuit = QuantumCircuit({n})
            for i, j, weight in EDGES:
                circuit.rzz(2 * gamma * weight, i, j)
            return circuit
        """)
    checks = tests(f"""
        from qiskit.quantum_info import Operator


        def _expected(gamma):
            phases = []
            for index in range({2 ** n}):
                z = [1 - 2 * (index >> qubit & 1) for qubit in range({n})]
                phases.append(np.exp(-1j * gamma * sum(w * z[a] * z[b] for a, b, w in {edges!r})))
            return Operator(np.diag(phases))


        class TestCostLayer(unittest.TestCase):
            def test_unitary(self):
                for gamma in (0.37, 1.1):
                    layer = cost_layer(gamma)
                    self.assertEqual(layer.num_qubits, {n})
                    self.assertTrue(Operator(layer).equiv(_expected(gamma)))
        """)
    edge_text = ", ".join(f"({a},{b})" + (f" w={x}" if x != 1.0 else "") for a, b, x in edges)
    return Draft(
        prompts=prompts([
            f"Write a function cost_layer(gamma) returning the {n}-qubit QAOA cost unitary exp(-i·gamma·Σ w_ij "
            f"Z_i Z_j) for the graph with edges {edge_text} (unlisted weights are 1).",
            f"Implement the QAOA problem layer for a weighted graph on {n} nodes, edges {edge_text} (weight 1 "
            "unless given): cost_layer(gamma) must return a QuantumCircuit equal, up to global phase, to "
            "exp(-i γ Σ_(i,j) w_ij Z_i Z_j).",
            f"Given the graph {edge_text} on {n} qubits (default weight 1), code cost_layer(gamma) that builds "
            "the circuit implementing exp(-iγ Σ w·ZZ) over the edges, e.g. with RZZ gates.",
        ], "Define the function `cost_layer(gamma)` returning a QuantumCircuit (no measurements)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", "rzz(2 * gamma * weight", "rzz(gamma * weight"),
            mutate(reference, "wrong_qubit", f"EDGES = [({i}, {j}, {w})", f"EDGES = [({i}, {moved}, {w})"),
            mutate(reference, "missing_step", "for i, j, weight in EDGES:", "for i, j, weight in EDGES[1:]:"),
        ],
        features={"num_qubits": n, "gate_count": len(edges), "concepts": ["QAOA", "RZZ", "function"],
                  "edges": [list(edge) for edge in edges]},
        entry_point="cost_layer",
    )


def _qaoa_cut(n: int, edges: list[tuple[int, int]], gamma: float, beta: float, mixer_scale: float = 2,
              hadamards: bool = True) -> float:
    """Expected cut of RX(mixer_scale·β)^n · Π RZZ(2γ) · (H^n)|0⟩, with numpy."""
    size = 2 ** n
    state = np.full(size, size ** -0.5, dtype=complex) if hadamards else np.eye(size, dtype=complex)[0]
    spins = [[1 - 2 * (index >> q & 1) for q in range(n)] for index in range(size)]
    state = state * np.exp([-1j * gamma * sum(z[a] * z[b] for a, b in edges) for z in spins])
    mixer = reduce(np.kron, [_rotation("rx", mixer_scale * beta)] * n)
    probabilities = np.abs(mixer @ state) ** 2
    cuts = [sum(z[a] != z[b] for a, b in edges) for z in spins]
    return float(np.dot(probabilities, cuts))


@template("qaoa_expectation", area=AREA)
def qaoa_expectation(rng: random.Random) -> Draft:
    """Depth-1 QAOA for MaxCut: the expected cut size as a function of (γ, β)."""
    n = rng.randint(3, 4)
    points = [(pick_float(rng, 0.2, 1.4), pick_float(rng, 0.2, 1.4)) for _ in range(3)]
    while True:
        edges = [(i, j) for i, j, _ in _random_graph(rng, n, weighted=False)]
        i, j = edges[0]
        reference_values = [_qaoa_cut(n, edges, g, b) for g, b in points]

        def differs(values: list[float], reference_values: list[float] = reference_values) -> bool:
            return max(abs(x - y) for x, y in zip(values, reference_values)) > 1e-4

        # moving an edge can give an isomorphic graph, whose expected cut is the same: pick a visible move
        moves = [k for k in range(n) if k not in (i, j)
                 and differs([_qaoa_cut(n, [(i, k)] + edges[1:], g, b) for g, b in points])]
        if (moves and differs([_qaoa_cut(n, edges, g, b, mixer_scale=1) for g, b in points])
                and differs([_qaoa_cut(n, edges, g, b, hadamards=False) for g, b in points])):
            moved = moves[0]
            break
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Statevector

        EDGES = {edges!r}


        def expected_cut(gamma, beta):
            circuit = QuantumCircuit({n})
            circuit.h(range({n}))
            for i, j in EDGES:
                circuit.rzz(2 * gamma, i, j)
            for q in range({n}):
                circuit.rx(2 * beta, q)
            probabilities = Statevector(circuit).probabilities()
            total = 0.0
            for index, p in enumerate(probabilities):
                total += p * sum(1 for i, j in EDGES if (index >> i & 1) != (index >> j & 1))
            return float(total)
        """)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Statevector


        def _reference_value(gamma, beta):
            circuit = QuantumCircuit({n})
            circuit.h(range({n}))
            for a, b in {edges!r}:
                circuit.rzz(2 * gamma, a, b)
            circuit.rx(2 * beta, range({n}))
            probabilities = Statevector(circuit).probabilities()
            cuts = [sum((index >> a & 1) != (index >> b & 1) for a, b in {edges!r}) for index in range({2 ** n})]
            return float(np.dot(probabilities, cuts))


        class TestQaoaExpectation(unittest.TestCase):
            def test_values(self):
                for gamma, beta in {points!r}:
                    self.assertAlmostEqual(float(expected_cut(gamma, beta)), _reference_value(gamma, beta), places=7)
        """)
    return Draft(
        prompts=prompts([
            f"For MaxCut on the graph with edges {edges} ({n} nodes), write expected_cut(gamma, beta): prepare "
            f"|+⟩^{n}, apply RZZ(2·gamma) on every edge, then RX(2·beta) on every qubit, and return the exact "
            "expected number of cut edges in the resulting state.",
            f"Implement depth-1 QAOA for MaxCut on {edges}: expected_cut(gamma, beta) builds H on all {n} qubits, "
            "the cost layer RZZ(2γ) per edge and the mixer RX(2β) per qubit, then computes the exact expectation "
            "of the cut size (an edge is cut when its endpoints' bits differ) from the statevector.",
            f"Write a Qiskit function giving ⟨C⟩ for p=1 QAOA, where C counts the cut edges of the graph {edges}; "
            "the circuit is Hadamards, RZZ(2*gamma) on each edge, RX(2*beta) on each qubit (exact, no sampling).",
        ], "Define the function `expected_cut(gamma, beta)` returning a float."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", "circuit.rx(2 * beta, q)", "circuit.rx(beta, q)"),
            drop_line(reference, "missing_step", f"circuit.h(range({n}))"),
            mutate(reference, "wrong_qubit", f"EDGES = [({i}, {j})", f"EDGES = [({i}, {moved})"),
        ],
        features={"num_qubits": n, "gate_count": 2 * n + len(edges), "concepts": ["QAOA", "MaxCut", "function"]},
        entry_point="expected_cut",
    )


@template("exact_ground_energy", area=AREA)
def exact_ground_energy(rng: random.Random) -> Draft:
    """Exact diagonalisation of a small SparsePauliOp: ground energy and a ground state."""
    n = rng.randint(2, 3)
    while True:
        terms = _random_terms(rng, n, rng.randint(3, 4), alphabet="IXYZ")
        values = np.linalg.eigvalsh(_pauli_sum(terms))
        flipped = np.linalg.eigvalsh(_pauli_sum([(terms[0][0], -terms[0][1])] + terms[1:]))
        if values[-1] - values[0] > 0.1 and abs(flipped[0] - values[0]) > 1e-3:
            break
    reference = source(f"""
        import numpy as np
        from qiskit.quantum_info import SparsePauliOp, Statevector

        hamiltonian = SparsePauliOp.from_list({_terms_code(terms)})
        values, vectors = np.linalg.eigh(hamiltonian.to_matrix())
        ground_energy = float(values[0])
        ground_state = Statevector(vectors[:, 0])
        """)
    checks = tests(f"""
        from qiskit.quantum_info import SparsePauliOp, Statevector


        class TestGroundState(unittest.TestCase):
            def setUp(self):
                self.matrix = SparsePauliOp.from_list({_terms_code(terms)}).to_matrix()

            def test_energy(self):
                self.assertAlmostEqual(float(ground_energy), float(np.linalg.eigvalsh(self.matrix)[0]), places=7)

            def test_state(self):
                state = Statevector(ground_state).data
                self.assertAlmostEqual(float(np.linalg.norm(state)), 1.0, places=7)
                energy = float(np.real(np.conj(state) @ self.matrix @ state))
                self.assertAlmostEqual(energy, float(np.linalg.eigvalsh(self.matrix)[0]), places=7)
        """)
    return Draft(
        prompts=prompts([
            f"Find the ground state of the {n}-qubit Hamiltonian H = {_terms_text(terms)} (Qiskit label order) by "
            "exact diagonalisation: its lowest eigenvalue and a corresponding normalized eigenvector.",
            f"Write code that builds SparsePauliOp.from_list({_terms_code(terms)}) and computes exactly its "
            "ground-state energy and a ground state.",
            f"Exactly diagonalise H = {_terms_text(terms)} on {n} qubits; report the minimum energy and a "
            "normalized state that attains it.",
        ], "Name the operator `hamiltonian`, the energy `ground_energy` (a float) and the state `ground_state` "
           "(a qiskit.quantum_info.Statevector)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_function", "float(values[0])", "float(values[-1])"),
            mutate(reference, "wrong_state", "vectors[:, 0]", "vectors[:, -1]"),
            mutate(reference, "wrong_parameter", f"({terms[0][0]!r}, {terms[0][1]})",
                   f"({terms[0][0]!r}, {-terms[0][1]})"),
        ],
        features={"num_qubits": n, "gate_count": 0, "concepts": ["SparsePauliOp", "diagonalisation"]},
    )


@template("vqe_minimize", area=AREA)
def vqe_minimize(rng: random.Random) -> Draft:
    """A one-parameter VQE minimised with scipy: the result must reach the exact ground energy."""
    a = pick_float(rng, -1.5, 1.5)
    b = pick_float(rng, 0.4, 1.5) * rng.choice([-1, 1])
    c = pick_float(rng, -0.5, 0.5)
    exact = c - math.hypot(a, b)
    start = pick_float(rng, 0.1, 3.0)
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.quantum_info import SparsePauliOp, Statevector
        from scipy.optimize import minimize

        hamiltonian = SparsePauliOp.from_list([("Z", {a}), ("X", {b}), ("I", {c})])
        theta = Parameter("theta")
        ansatz = QuantumCircuit(1)
        ansatz.ry(theta, 0)


        def energy(value):
            state = Statevector(ansatz.assign_parameters([float(value)]))
            return float(state.expectation_value(hamiltonian).real)


        result = minimize(lambda x: energy(x[0]), x0=[{start}], method="COBYLA", options={{"tol": 1e-8}})
        optimal_theta = float(result.x[0])
        min_energy = float(result.fun)
        """)
    checks = tests(f"""
        import math


        class TestVqeMinimize(unittest.TestCase):
            def test_reaches_ground_energy(self):
                self.assertAlmostEqual(float(min_energy), {exact!r}, delta=1e-4)

            def test_theta_gives_that_energy(self):
                theta = float(optimal_theta)
                value = {a} * math.cos(theta) + {b} * math.sin(theta) + {c}
                self.assertAlmostEqual(value, float(min_energy), delta=1e-6)
        """)
    hamiltonian = f"H = {linear_combination([('Z', a), ('X', b), ('I', c)])}"
    return Draft(
        prompts=prompts([
            f"Run a one-qubit VQE for {hamiltonian}: the ansatz is RY(theta)|0⟩, the energy is computed exactly "
            f"with Statevector, and theta is optimised with scipy.optimize.minimize (COBYLA) from theta = {start}.",
            f"Write Qiskit + SciPy code that minimises ⟨ψ(θ)|H|ψ(θ)⟩ with |ψ(θ)⟩ = RY(θ)|0⟩ and {hamiltonian} "
            f"(SparsePauliOp), starting at θ = {start}, to reach the ground-state energy.",
            f"Find the ground energy of {hamiltonian} variationally: RY(θ) ansatz on one qubit, exact expectation "
            f"values, a SciPy optimizer started at θ = {start}; tight tolerance.",
        ], "Name the optimal angle `optimal_theta` and the minimal energy found `min_energy` (floats)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", "ansatz.ry(theta, 0)", "ansatz.rz(theta, 0)"),
            mutate(reference, "wrong_parameter", f'("X", {b})', f'("X", {round(b / 2, 3)})'),
        ],
        features={"num_qubits": 1, "gate_count": 1, "concepts": ["VQE", "optimizer", "SparsePauliOp"]},
    )
