"""Circuit construction and gates: Bell and GHZ states, basis states, rotations, controlled gates."""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import (
    Angle,
    choose,
    drop_line,
    mutate,
    pick_angle,
    prompts,
    qubit_list,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "circuits"
NO_MEASURE = "Store the circuit in a variable named `qc`. Do not add measurements."

BELL_STATES = {
    "Φ+": ("(|00⟩ + |11⟩)/√2", False, +1),
    "Φ-": ("(|00⟩ - |11⟩)/√2", False, -1),
    "Ψ+": ("(|01⟩ + |10⟩)/√2", True, +1),
    "Ψ-": ("(|01⟩ - |10⟩)/√2", True, -1),
}


@template("bell_state", area=AREA)
def bell_state(rng: random.Random) -> Draft:
    """One of the four Bell states on a chosen pair of qubits of a larger register."""
    n = rng.randint(2, 4)
    a, b = choose(rng, range(n), 2)
    name = rng.choice(sorted(BELL_STATES))
    formula, flipped, sign = BELL_STATES[name]
    lines = [f"qc = QuantumCircuit({n})", f"qc.h({a})", f"qc.cx({a}, {b})"]
    lines += [f"qc.x({b})"] if flipped else []
    lines += [f"qc.z({a})"] if sign < 0 else []
    reference = source("from qiskit import QuantumCircuit\n\n" + "\n".join(lines))
    first, second = ((1 << a), (1 << b)) if flipped else (0, (1 << a) | (1 << b))
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestBellState(unittest.TestCase):
            def test_register_size(self):
                self.assertEqual(qc.num_qubits, {n})

            def test_bell_state(self):
                expected = np.zeros({2 ** n}, dtype=complex)
                expected[{first}] = 2 ** -0.5
                expected[{second}] = {sign} * 2 ** -0.5
                self.assertTrue(Statevector(qc).equiv(Statevector(expected)))
        """)
    return Draft(
        prompts=prompts([
            f"Create a {n}-qubit Qiskit circuit in which qubits {a} and {b} are in the Bell state "
            f"|{name}⟩ = {formula} and every other qubit stays in |0⟩.",
            f"Using Qiskit, prepare the Bell state {formula} on qubits {a} and {b} of a fresh {n}-qubit "
            f"QuantumCircuit (the first digit of each ket is qubit {a}); all other qubits remain |0⟩.",
            f"Starting from |0…0⟩ on {n} qubits, entangle qubit {a} with qubit {b} so that the pair ends in "
            f"{formula}, the Bell state |{name}⟩.",
        ], NO_MEASURE),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"qc.cx({a}, {b})", f"qc.cx({b}, {a})"),
            mutate(reference, "wrong_gate", f"qc.h({a})", f"qc.x({a})"),
            drop_line(reference, "missing_step", lines[-1]),
        ],
        features={"num_qubits": n, "gate_count": len(lines) - 1,
                  "concepts": ["entanglement"] + (["relative phase"] if name != "Φ+" else []),
                  "bell_state": name},
    )


ROTATIONS = ("rx", "ry", "rz")


@template("rotation_sequence", area=AREA)
def rotation_sequence(rng: random.Random) -> Draft:
    """A few single-qubit rotations with angles that are multiples of π/8."""
    n = rng.randint(2, 4)
    steps = [(rng.choice(ROTATIONS), pick_angle(rng), rng.randrange(n)) for _ in range(rng.randint(2, 3))]
    calls = [f"qc.{gate}({angle.code}, {qubit})" for gate, angle, qubit in steps]
    reference = source(f"from math import pi\n\nfrom qiskit import QuantumCircuit\n\nqc = QuantumCircuit({n})\n"
                       + "\n".join(calls))
    described = "; then ".join(f"{gate.upper()}({angle.text}) on qubit {qubit}" for gate, angle, qubit in steps)
    expected_steps = [(gate, angle.value, qubit) for gate, angle, qubit in steps]
    checks = tests(f"""
        from qiskit.circuit.library import RXGate, RYGate, RZGate
        from qiskit.quantum_info import Operator


        class TestRotations(unittest.TestCase):
            def test_register_size(self):
                self.assertEqual(qc.num_qubits, {n})

            def test_unitary(self):
                gates = {{"rx": RXGate, "ry": RYGate, "rz": RZGate}}
                expected = Operator(np.eye({2 ** n}))
                for name, angle, qubit in {expected_steps!r}:
                    expected = expected.compose(Operator(gates[name](angle)), qargs=[qubit])
                self.assertTrue(Operator(qc).equiv(expected))
        """)
    gate, angle, qubit = steps[0]
    other_gate = rng.choice([g for g in ROTATIONS if g != gate])
    other_qubit = rng.choice([q for q in range(n) if q != qubit])
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit that applies, in this order: {described}.",
            f"In Qiskit, start from an empty {n}-qubit QuantumCircuit and apply the rotations "
            f"{described} (angles in radians).",
            f"Write the Qiskit code for this sequence of single-qubit rotations on {n} qubits: {described}.",
        ], NO_MEASURE),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", calls[0], f"qc.{other_gate}({angle.code}, {qubit})"),
            mutate(reference, "wrong_qubit", calls[0], f"qc.{gate}({angle.code}, {other_qubit})"),
            mutate(reference, "wrong_parameter", calls[0], f"qc.{gate}({angle.negated().code}, {qubit})"),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["rotation gates"]},
    )


@template("ghz_state", area=AREA)
def ghz_state(rng: random.Random) -> Draft:
    """An n-qubit GHZ state with a + or - relative sign."""
    n = rng.randint(3, 6)
    minus = rng.random() < 0.5
    lines = [f"qc = QuantumCircuit({n})", "qc.h(0)"] + (["qc.z(0)"] if minus else [])
    lines += [f"qc.cx({q - 1}, {q})" for q in range(1, n)]
    reference = source("from qiskit import QuantumCircuit\n\n" + "\n".join(lines))
    sign = "-" if minus else "+"
    formula = f"(|{'0' * n}⟩ {sign} |{'1' * n}⟩)/√2"
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestGHZ(unittest.TestCase):
            def test_register_size(self):
                self.assertEqual(qc.num_qubits, {n})

            def test_ghz_state(self):
                expected = np.zeros({2 ** n}, dtype=complex)
                expected[0] = 2 ** -0.5
                expected[-1] = {-1 if minus else 1} * 2 ** -0.5
                self.assertTrue(Statevector(qc).equiv(Statevector(expected)))
        """)
    return Draft(
        prompts=prompts([
            f"Prepare the {n}-qubit GHZ state {formula} with Qiskit.",
            f"Write a Qiskit circuit on {n} qubits whose output state is {formula}.",
            f"Create a QuantumCircuit that entangles all {n} qubits into the GHZ state {formula}, "
            "starting from the all-zero state.",
        ], NO_MEASURE),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", lines[-1]),
            mutate(reference, "wrong_qubit", lines[-1], f"qc.cx({n - 2}, {n - 3})"),
            mutate(reference, "wrong_gate", "qc.h(0)", "qc.sx(0)"),
        ],
        features={"num_qubits": n, "gate_count": len(lines) - 1,
                  "concepts": ["entanglement"] + (["relative phase"] if minus else [])},
    )


def _asymmetric_bits(rng: random.Random, n: int) -> str:
    """A bitstring with at least two 1s and one 0 that is not a palindrome."""
    while True:
        bits = "".join(rng.choice("01") for _ in range(n))
        if bits.count("1") >= 2 and "0" in bits and bits != bits[::-1]:
            return bits


@template("basis_state", area=AREA)
def basis_state(rng: random.Random) -> Draft:
    """A computational basis state given as a bitstring, a list of qubits or an integer."""
    n = rng.randint(3, 6)
    bits = _asymmetric_bits(rng, n)
    ones = [q for q in range(n) if bits[n - 1 - q] == "1"]
    lines = [f"qc.x({q})" for q in ones]
    reference = source(f"from qiskit import QuantumCircuit\n\nqc = QuantumCircuit({n})\n" + "\n".join(lines))
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestBasisState(unittest.TestCase):
            def test_register_size(self):
                self.assertEqual(qc.num_qubits, {n})

            def test_basis_state(self):
                self.assertTrue(Statevector(qc).equiv(Statevector.from_label({bits!r})))
        """)
    reversed_lines = [f"qc.x({n - 1 - q})" for q in ones]
    return Draft(
        prompts=prompts([
            f"Prepare the {n}-qubit computational basis state |{bits}⟩ in Qiskit's bit ordering "
            "(the rightmost character is qubit 0).",
            f"Create a {n}-qubit circuit that leaves {qubit_list(ones)} in |1⟩ and all other "
            "qubits in |0⟩.",
            f"Build a {n}-qubit circuit whose output is the basis state encoding the integer {int(bits, 2)} "
            "(qubit 0 is the least significant bit).",
        ], NO_MEASURE),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", "\n".join(lines), "\n".join(reversed_lines)),
            drop_line(reference, "missing_step", lines[-1]),
            mutate(reference, "wrong_gate", lines[0], lines[0].replace("qc.x", "qc.h")),
        ],
        features={"num_qubits": n, "gate_count": len(ones), "concepts": ["bit ordering"], "bits": bits},
    )


FIRST_GATES = {
    # name: (qubits, has angle, prose, (wrong qubit order), replacement gate for wrong_gate)
    "ccx": (3, False, "a Toffoli (CCX) with controls {0}, {1} and target {2}", (0, 2, 1), "ccz"),
    "ch": (2, False, "a controlled-Hadamard with control {0} and target {1}", (1, 0), "cx"),
    "cry": (2, True, "a controlled-RY({angle}) with control {0} and target {1}", (1, 0), "crx"),
    "cswap": (3, False, "a Fredkin (controlled-SWAP) with control {0} swapping qubits {1} and {2}", (1, 0, 2),
              "swap"),
}
SECOND_GATES = {
    "cp": (True, "a controlled-phase CP({angle}) between control {0} and target {1}"),
    "cz": (False, "a CZ between qubits {0} and {1}"),
    "cx": (False, "a CNOT with control {0} and target {1}"),
    "crz": (True, "a controlled-RZ({angle}) with control {0} and target {1}"),
}
GATE_CLASSES = {"ccx": "CCXGate", "ch": "CHGate", "cry": "CRYGate", "cswap": "CSwapGate",
                "cp": "CPhaseGate", "cz": "CZGate", "cx": "CXGate", "crz": "CRZGate"}


def _call(name: str, angle: Angle | None, qubits: list[int]) -> str:
    """Source of one gate call on ``qc``."""
    args = ([angle.code] if angle else []) + [str(q) for q in qubits]
    return f"qc.{name}({', '.join(args)})"


@template("controlled_gates", area=AREA)
def controlled_gates(rng: random.Random) -> Draft:
    """Two multi-qubit controlled gates with given controls and targets."""
    n = rng.randint(3, 4)
    first = rng.choice(sorted(FIRST_GATES))
    width, angled, prose, wrong_order, replacement = FIRST_GATES[first]
    first_qubits = choose(rng, range(n), width)
    first_angle = pick_angle(rng) if angled else None
    second = rng.choice(sorted(SECOND_GATES))
    second_angled, second_prose = SECOND_GATES[second]
    second_qubits = choose(rng, range(n), 2)
    second_angle = pick_angle(rng) if second_angled else None
    calls = [_call(first, first_angle, first_qubits), _call(second, second_angle, second_qubits)]
    reference = source(f"from math import pi\n\nfrom qiskit import QuantumCircuit\n\nqc = QuantumCircuit({n})\n"
                       + "\n".join(calls))
    described = (prose.format(*first_qubits, angle=first_angle.text if first_angle else "")
                 + ", then " + second_prose.format(*second_qubits, angle=second_angle.text if second_angle else ""))
    steps = [(GATE_CLASSES[first], [first_angle.value] if first_angle else [], first_qubits),
             (GATE_CLASSES[second], [second_angle.value] if second_angle else [], second_qubits)]
    checks = tests(f"""
        from qiskit.circuit import library
        from qiskit.quantum_info import Operator


        class TestControlledGates(unittest.TestCase):
            def test_register_size(self):
                self.assertEqual(qc.num_qubits, {n})

            def test_unitary(self):
                expected = Operator(np.eye({2 ** n}))
                for name, params, qubits in {steps!r}:
                    expected = expected.compose(Operator(getattr(library, name)(*params)), qargs=qubits)
                self.assertTrue(Operator(qc).equiv(expected))
        """)
    swapped = [first_qubits[i] for i in wrong_order]
    wrong_gate_qubits = first_qubits[1:] if replacement == "swap" else first_qubits
    return Draft(
        prompts=prompts([
            f"On a {n}-qubit circuit apply {described}.",
            f"Write Qiskit code that builds a {n}-qubit QuantumCircuit containing {described}.",
            f"Construct the following {n}-qubit circuit with Qiskit's controlled gates: {described}.",
        ], NO_MEASURE),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", calls[0], _call(first, first_angle, swapped)),
            mutate(reference, "wrong_gate", calls[0], _call(replacement, first_angle, wrong_gate_qubits)),
            drop_line(reference, "missing_step", calls[1]),
        ],
        features={"num_qubits": n, "gate_count": 2, "concepts": ["controlled gates", "multi-qubit gates"]},
    )
