"""quantum_info: marginal probabilities, Pauli expectation values, fidelities, reduced states, tensor order.

Where a mutant's effect depends on the drawn numbers, the template computes the few numbers it
needs with plain numpy (no Qiskit at render time) and redraws until the mutant is observable.
"""

from __future__ import annotations

import math
import random

import numpy as np

from pipelines.tasks.templates.common import (
    block,
    choose,
    drop_line,
    linear_combination,
    mutate,
    pick_float,
    prompts,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "quantum_info"


def _away_from_half(rng: random.Random) -> float:
    """An RY angle whose P(1) = sin²(θ/2) is far from 1/2 and stays on the same side after ±0.6."""
    return pick_float(rng, 0.3, 1.1) if rng.random() < 0.5 else pick_float(rng, 2.1, 2.8)


@template("marginal_probabilities", area=AREA)
def marginal_probabilities(rng: random.Random) -> Draft:
    """Marginal distribution of two qubits, in the qargs order the prompt fixes."""
    n = rng.randint(3, 4)
    a, b, c = choose(rng, range(n), 3)
    thetas = [pick_float(rng, 0.3, 2.8) for _ in range(n)]
    thetas[a] = _away_from_half(rng)  # P(a=1) != 1/2 makes the swapped-qargs mutant observable
    lines = [f"qc.ry({thetas[q]}, {q})" for q in range(n)] + [f"qc.cx({a}, {b})", f"qc.cx({b}, {c})"]
    reference = source(f"from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector\n\n"
                       f"qc = QuantumCircuit({n})\n" + "\n".join(lines)
                       + f"\nmarginal = Statevector(qc).probabilities_dict(qargs=[{a}, {b}])\n")
    shifted = round(thetas[a] + (0.6 if thetas[a] < 1.5 else -0.6), 2)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Statevector


        def _expected():
            circuit = QuantumCircuit({n})
            for qubit, theta in enumerate({thetas!r}):
                circuit.ry(theta, qubit)
            circuit.cx({a}, {b})
            circuit.cx({b}, {c})
            return Statevector(circuit).probabilities_dict(qargs=[{a}, {b}])


        class TestMarginal(unittest.TestCase):
            def test_marginal(self):
                expected = _expected()
                self.assertLessEqual(set(marginal), {{"00", "01", "10", "11"}})
                for key in ("00", "01", "10", "11"):
                    self.assertAlmostEqual(float(marginal.get(key, 0.0)), expected.get(key, 0.0), places=8, msg=key)
        """)
    rotations = ", ".join(f"RY({thetas[q]}) on qubit {q}" for q in range(n))
    return Draft(
        prompts=prompts([
            f"Prepare a {n}-qubit state with {rotations}, then CNOT {a}->{b} and CNOT {b}->{c}. Compute the exact "
            f"marginal probability distribution of qubits {a} and {b}.",
            f"Write Qiskit code that applies {rotations}, followed by CX({a}, {b}) and CX({b}, {c}), and uses "
            f"Statevector to get the joint outcome probabilities of qubits {a} and {b} alone (all other qubits "
            "traced out).",
            f"For the {n}-qubit circuit [{rotations}; CX {a}->{b}; CX {b}->{c}], find the distribution of the "
            f"two-bit outcome of measuring only qubits {a} and {b}.",
        ], f"Name the circuit `qc` and the result `marginal`: a dict from two-character bitstrings to "
           f"probabilities, where the rightmost character is qubit {a} and the leftmost is qubit {b} (the "
           f"convention of probabilities_dict(qargs=[{a}, {b}])). Zero-probability outcomes may be omitted."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"qargs=[{a}, {b}]", f"qargs=[{b}, {a}]"),
            mutate(reference, "wrong_parameter", f"qc.ry({thetas[a]}, {a})", f"qc.ry({shifted}, {a})"),
            drop_line(reference, "missing_step", f"qc.cx({a}, {b})"),
        ],
        features={"num_qubits": n, "gate_count": n + 2, "concepts": ["Statevector", "marginal probabilities"]},
    )


def _product_expectation(label: str, thetas: list[float]) -> float:
    """<P> for the product state ⊗ RY(θ_q)|0⟩ (label in Qiskit order: rightmost is qubit 0)."""
    value = 1.0
    for qubit, pauli in enumerate(reversed(label)):
        value *= {"I": 1.0, "Z": math.cos(thetas[qubit]), "X": math.sin(thetas[qubit])}[pauli]
    return value


@template("pauli_expectation", area=AREA)
def pauli_expectation(rng: random.Random) -> Draft:
    """⟨ψ|H|ψ⟩ for a SparsePauliOp H and a product state of RY rotations."""
    n = rng.randint(2, 3)
    while True:
        thetas = [pick_float(rng, 0.3, 2.8) for _ in range(n)]
        labels = []
        while len(labels) < rng.randint(2, 3):
            label = "".join(rng.choice("IXZ") for _ in range(n))
            if label.strip("I") and label not in labels:
                labels.append(label)
        coeffs = [pick_float(rng, -1.5, 1.5) for _ in labels]
        first = labels[0]
        flip_effect = abs(2 * coeffs[0] * _product_expectation(first, thetas))
        reverse_effect = abs(coeffs[0] * (_product_expectation(first, thetas)
                                          - _product_expectation(first[::-1], thetas)))
        # RX instead of RY on qubit 0 keeps <Z> but zeroes <X> there: the terms with X on qubit 0 vanish.
        rx_effect = abs(sum(coeff * _product_expectation(label, thetas)
                            for label, coeff in zip(labels, coeffs) if label[-1] == "X"))
        if min(flip_effect, reverse_effect, rx_effect) > 0.05 and abs(coeffs[0]) > 0.2:
            break
    terms = ", ".join(f"({label!r}, {coeff})" for label, coeff in zip(labels, coeffs))
    reversed_terms = terms.replace(repr(first), repr(first[::-1]), 1)
    negated_terms = terms.replace(f"({first!r}, {coeffs[0]})", f"({first!r}, {-coeffs[0]})", 1)
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import SparsePauliOp, Statevector

        qc = QuantumCircuit({n})
        {block([f"qc.ry({thetas[q]}, {q})" for q in range(n)])}
        hamiltonian = SparsePauliOp.from_list([{terms}])
        energy = float(Statevector(qc).expectation_value(hamiltonian).real)
        """)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import SparsePauliOp, Statevector


        class TestPauliExpectation(unittest.TestCase):
            def test_energy(self):
                circuit = QuantumCircuit({n})
                for qubit, theta in enumerate({thetas!r}):
                    circuit.ry(theta, qubit)
                matrix = SparsePauliOp.from_list([{terms}]).to_matrix()
                state = Statevector(circuit).data
                expected = float(np.real(np.conj(state) @ matrix @ state))
                self.assertAlmostEqual(float(np.real(energy)), expected, places=7)
        """)
    hamiltonian = linear_combination(list(zip(labels, coeffs)))
    rotations = ", ".join(f"RY({thetas[q]}) on qubit {q}" for q in range(n))
    return Draft(
        prompts=prompts([
            f"Prepare the {n}-qubit state {rotations} and compute the expectation value of the Hamiltonian "
            f"H = {hamiltonian} (Pauli labels in Qiskit order: the rightmost letter acts on qubit 0).",
            f"Using SparsePauliOp and Statevector, evaluate ⟨ψ|H|ψ⟩ where |ψ⟩ = {rotations} applied to |0…0⟩ "
            f"and H = {hamiltonian}, with labels in Qiskit's little-endian convention.",
            f"Write Qiskit code for the energy of the state produced by {rotations} ({n} qubits) with respect to "
            f"the observable {hamiltonian}; each label's last character is qubit 0.",
        ], "Name the circuit `qc`, the observable `hamiltonian` and the real energy `energy` (a float)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", terms, reversed_terms),
            mutate(reference, "wrong_parameter", terms, negated_terms),
            mutate(reference, "wrong_gate", f"qc.ry({thetas[0]}, 0)", f"qc.rx({thetas[0]}, 0)"),
        ],
        features={"num_qubits": n, "gate_count": n, "concepts": ["SparsePauliOp", "expectation value"]},
    )


def _ket(gate: str, angle: float) -> np.ndarray:
    """Single-qubit state R(angle)|0⟩ for R in rx, ry."""
    if gate == "ry":
        return np.array([math.cos(angle / 2), math.sin(angle / 2)], dtype=complex)
    return np.array([math.cos(angle / 2), -1j * math.sin(angle / 2)], dtype=complex)


def _describe(rotations: list[tuple[str, float]]) -> str:
    return ", ".join(f"{gate.upper()}({angle}) on qubit {q}" for q, (gate, angle) in enumerate(rotations))


def _fidelity(first: list[tuple[str, float]], second: list[tuple[str, float]]) -> float:
    value = 1.0
    for (g1, a1), (g2, a2) in zip(first, second):
        value *= abs(np.vdot(_ket(g1, a1), _ket(g2, a2))) ** 2
    return value


@template("state_fidelity", area=AREA)
def state_fidelity(rng: random.Random) -> Draft:
    """Fidelity between two product states given by rotation circuits."""
    n = rng.randint(1, 3)
    while True:
        psi = [(rng.choice(["rx", "ry"]), pick_float(rng, 0.2, 2.9)) for _ in range(n)]
        phi = [(rng.choice(["rx", "ry"]), pick_float(rng, 0.2, 2.9)) for _ in range(n)]
        value = _fidelity(psi, phi)
        swapped_gate = [("ry" if psi[0][0] == "rx" else "rx", psi[0][1])] + psi[1:]
        shifted = [(phi[0][0], round(phi[0][1] + 0.5, 2))] + phi[1:]
        if (0.05 < value < 0.95 and abs(_fidelity(swapped_gate, phi) - value) > 0.02
                and abs(_fidelity(psi, shifted) - value) > 0.02):
            break
    lines_a = [f"a.{gate}({angle}, {q})" for q, (gate, angle) in enumerate(psi)]
    lines_b = [f"b.{gate}({angle}, {q})" for q, (gate, angle) in enumerate(phi)]
    reference = source(f"from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector, "
                       f"state_fidelity\n\na = QuantumCircuit({n})\n" + "\n".join(lines_a)
                       + f"\nb = QuantumCircuit({n})\n" + "\n".join(lines_b)
                       + "\nfidelity = state_fidelity(Statevector(a), Statevector(b))\n")
    checks = tests(f"""
        class TestFidelity(unittest.TestCase):
            def test_fidelity(self):
                self.assertAlmostEqual(float(fidelity), {value!r}, places=7)
        """)
    return Draft(
        prompts=prompts([
            f"Two {n}-qubit states: |ψ⟩ from {_describe(psi)}, and |φ⟩ from {_describe(phi)} (both starting in "
            "|0…0⟩). Compute their state fidelity |⟨ψ|φ⟩|².",
            f"Write Qiskit code that builds circuit a ({_describe(psi)}) and circuit b ({_describe(phi)}) on {n} "
            "qubits and computes the fidelity between their output states with qiskit.quantum_info.",
            f"How close are the states prepared by [{_describe(psi)}] and [{_describe(phi)}]? Compute the fidelity "
            f"of the two {n}-qubit pure states with Qiskit.",
        ], "Name the circuits `a` and `b` and the fidelity `fidelity` (a float between 0 and 1)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", lines_a[0], f"a.{swapped_gate[0][0]}({psi[0][1]}, 0)"),
            mutate(reference, "wrong_parameter", lines_b[0], f"b.{phi[0][0]}({shifted[0][1]}, 0)"),
        ],
        features={"num_qubits": n, "gate_count": 2 * n, "concepts": ["Statevector", "fidelity"]},
    )


@template("reduced_state_purity", area=AREA)
def reduced_state_purity(rng: random.Random) -> Draft:
    """Purity and entropy of one qubit of a partially entangled state, via partial_trace."""
    m = rng.randint(2, 3)
    n = m + 1
    spectator = n - 1
    theta = pick_float(rng, 0.5, 1.1)
    phi = pick_float(rng, 0.3, 2.8)
    kept = rng.randrange(m)
    traced = [q for q in range(n) if q != kept]
    p = math.sin(theta / 2) ** 2
    purity = p ** 2 + (1 - p) ** 2
    entropy = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    lines = [f"qc.ry({theta}, 0)"] + [f"qc.cx(0, {q})" for q in range(1, m)] + [f"qc.ry({phi}, {spectator})"]
    reference = source(f"from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector, "
                       f"entropy, partial_trace\n\nqc = QuantumCircuit({n})\n" + "\n".join(lines) + f"""
reduced = partial_trace(Statevector(qc), {traced})
purity = float(reduced.purity().real)
entanglement_entropy = float(entropy(reduced, base=2))
""")
    checks = tests(f"""
        class TestReducedState(unittest.TestCase):
            def test_purity(self):
                self.assertAlmostEqual(float(purity), {purity!r}, places=7)

            def test_entropy(self):
                self.assertAlmostEqual(float(entanglement_entropy), {entropy!r}, places=6)
        """)
    chain = ", ".join(f"CNOT 0->{q}" for q in range(1, m))
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit: RY({theta}) on qubit 0, then {chain}, and RY({phi}) on qubit {spectator}. "
            f"Trace out every qubit except qubit {kept} and compute the purity Tr(ρ²) and the von Neumann "
            "entropy (base 2) of the remaining one-qubit state.",
            f"Using partial_trace, find the reduced density matrix of qubit {kept} for the state prepared by "
            f"RY({theta}) on q0, {chain}, RY({phi}) on q{spectator} ({n} qubits), and report its purity and its "
            "entropy in bits.",
            f"How entangled is qubit {kept} with the rest? Prepare RY({theta})·q0, {chain}, RY({phi})·q{spectator} "
            f"on {n} qubits and compute the purity and base-2 von Neumann entropy of qubit {kept}'s reduced state.",
        ], "Name the circuit `qc`, the purity `purity` and the entropy `entanglement_entropy` (floats)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"partial_trace(Statevector(qc), {traced})",
                   f"partial_trace(Statevector(qc), {list(range(spectator))})"),
            mutate(reference, "wrong_parameter", f"qc.ry({theta}, 0)", f"qc.ry({round(theta + 0.4, 2)}, 0)"),
            drop_line(reference, "missing_step", f"qc.ry({theta}, 0)"),
        ],
        features={"num_qubits": n, "gate_count": m + 1,
                  "concepts": ["partial_trace", "purity", "entropy"]},
    )


SINGLE_QUBIT_OPERATORS = ("XGate", "YGate", "ZGate", "HGate", "SGate", "TGate", "SXGate")


@template("operator_tensor_order", area=AREA)
def operator_tensor_order(rng: random.Random) -> Draft:
    """Build an Operator acting with given gates on given qubits (tensor order matters)."""
    n = rng.randint(2, 3)
    gates = choose(rng, SINGLE_QUBIT_OPERATORS, n)  # distinct, so reversing the order changes the operator
    other = rng.choice([g for g in SINGLE_QUBIT_OPERATORS if g not in gates])

    def chain(names: list[str]) -> str:
        """``A.tensor(B)`` puts A on the higher qubit: write qubit n-1 first."""
        ops = [f"Operator(library.{name}())" for name in reversed(names)]
        return ops[0] + "".join(f".tensor({op})" for op in ops[1:])

    reference = source(f"from qiskit.circuit import library\nfrom qiskit.quantum_info import Operator\n\n"
                       f"op = {chain(gates)}\n")
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import library
        from qiskit.quantum_info import Operator


        class TestTensorOrder(unittest.TestCase):
            def test_operator(self):
                circuit = QuantumCircuit({n})
                for qubit, name in enumerate({gates!r}):
                    circuit.append(getattr(library, name)(), [qubit])
                self.assertEqual(Operator(op).num_qubits, {n})
                self.assertTrue(Operator(op).equiv(Operator(circuit)))
        """)
    placement = ", ".join(f"{gate[:-4]} on qubit {q}" for q, gate in enumerate(gates))
    return Draft(
        prompts=prompts([
            f"Build the {n}-qubit Operator that applies {placement} (Qiskit's qubit ordering: qubit 0 is the "
            "least significant).",
            f"Using qiskit.quantum_info.Operator, construct the tensor-product operator with {placement}. "
            "Mind the order of tensor factors in Qiskit's little-endian convention.",
            f"Write the {n}-qubit unitary {placement} as a Qiskit Operator, such that it equals the operator of "
            "a circuit applying each gate to its qubit.",
        ], "Store it in a variable named `op` (an Operator)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", chain(gates), chain(gates[::-1])),
            mutate(reference, "wrong_gate", chain(gates), chain([other] + gates[1:])),
        ],
        features={"num_qubits": n, "gate_count": n, "concepts": ["Operator", "tensor product"]},
    )
