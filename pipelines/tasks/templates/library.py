"""The circuit library: QFT, Grover, phase estimation, random circuits and n-local ansätze."""

from __future__ import annotations

import math
import random

from pipelines.tasks.templates.common import block, drop_line, mutate, pick_float, prompts, source, tests
from pipelines.tasks.templates.registry import Draft, template

AREA = "library"


def _bits_of(value: int, n: int) -> list[int]:
    """Qubits set to 1 when ``value`` is written little-endian on n qubits."""
    return [q for q in range(n) if value >> q & 1]


def _reversed_value(value: int, n: int) -> int:
    return sum(1 << (n - 1 - q) for q in _bits_of(value, n))


@template("qft_basis_state", area=AREA)
def qft_basis_state(rng: random.Random) -> Draft:
    """The (inverse) quantum Fourier transform of a computational basis state."""
    n = rng.randint(2, 4)
    size = 2 ** n
    # k = N/2 gives a real Fourier state (forward == inverse); palindromic k hides a bit-order slip
    k = rng.choice([v for v in range(1, size) if v != size // 2 and _reversed_value(v, n) != v])
    inverse = rng.random() < 0.5
    flips = [f"qc.x({q})" for q in _bits_of(k, n)]
    gate, other = ("QFTGate({n}).inverse()", "QFTGate({n})") if inverse else ("QFTGate({n})", "QFTGate({n}).inverse()")
    gate, other = gate.format(n=n), other.format(n=n)
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit.library import QFTGate

        qc = QuantumCircuit({n})
        {block(flips)}
        qc.append({gate}, range({n}))
        """)
    sign = -1 if inverse else 1
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestFourierState(unittest.TestCase):
            def test_state(self):
                amplitudes = np.exp({sign} * 2j * np.pi * np.arange({size}) * {k} / {size}) / np.sqrt({size})
                self.assertEqual(qc.num_qubits, {n})
                self.assertTrue(Statevector(qc).equiv(Statevector(amplitudes)))
        """)
    name = "inverse quantum Fourier transform" if inverse else "quantum Fourier transform"
    formula = f"(1/√{size}) Σ_j exp({'-' if inverse else ''}2πi·j·{k}/{size}) |j⟩"
    return Draft(
        prompts=prompts([
            f"On {n} qubits, prepare the basis state |{k}⟩ (qubit 0 is the least significant bit) and apply the "
            f"{name} from Qiskit's circuit library to all qubits.",
            f"Write Qiskit code whose output state is {formula} on {n} qubits: prepare |{k}⟩ (little-endian) "
            f"and apply the library's {name}.",
            f"Use qiskit.circuit.library (QFTGate) to map the {n}-qubit basis state encoding the integer {k} to "
            f"its {'inverse ' if inverse else ''}Fourier transform, {formula}.",
        ], "Store the circuit in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", f"qc.append({gate}", f"qc.append({other}"),
            mutate(reference, "wrong_qubit", "\n".join(flips), "\n".join(f"qc.x({n - 1 - q})" for q in _bits_of(k, n))),
            drop_line(reference, "missing_step", flips[-1]),
        ],
        features={"num_qubits": n, "gate_count": len(flips) + n * (n + 1) // 2,
                  "concepts": ["QFT", "circuit library"], "inverse": inverse},
    )


def _oracle_lines(marked: str) -> list[str]:
    """Source of a phase oracle on ``oracle`` that flips the sign of |marked⟩ only: map it to |1…1⟩
    with X gates, apply a multi-controlled Z (H·MCX·H on the last qubit), and map back."""
    n = len(marked)
    zeros = [q for q in range(n) if marked[n - 1 - q] == "0"]
    flip = [f"oracle.x({zeros!r})"] if zeros else []
    return flip + [f"oracle.h({n - 1})", f"oracle.mcx({list(range(n - 1))!r}, {n - 1})", f"oracle.h({n - 1})"] + flip


@template("grover_search", area=AREA)
def grover_search(rng: random.Random) -> Draft:
    """A phase oracle for one marked bitstring, amplified with grover_operator."""
    n = rng.randint(2, 4)
    marked = format(rng.randrange(2 ** n), f"0{n}b")
    iterations = math.floor(math.pi / 4 * math.sqrt(2 ** n))
    oracle_lines = _oracle_lines(marked)
    other_lines = _oracle_lines(format(int(marked, 2) ^ 1, f"0{n}b"))
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit.library import grover_operator

        oracle = QuantumCircuit({n})
        {block(oracle_lines)}
        grover = grover_operator(oracle)
        qc = QuantumCircuit({n})
        qc.h(range({n}))
        for _ in range({iterations}):
            qc.compose(grover, inplace=True)
        """)
    checks = tests(f"""
        from qiskit.quantum_info import Operator, Statevector


        class TestGrover(unittest.TestCase):
            def test_oracle_marks_one_state(self):
                diagonal = np.ones({2 ** n})
                diagonal[{int(marked, 2)}] = -1
                self.assertTrue(Operator(oracle).equiv(Operator(np.diag(diagonal))))

            def test_amplified(self):
                probabilities = Statevector(qc).probabilities_dict()
                self.assertGreater(probabilities.get({marked!r}, 0.0), 0.9)
        """)
    return Draft(
        prompts=prompts([
            f"Search for the marked bitstring {marked} among {2 ** n} states with Grover's algorithm: build a "
            f"phase oracle that flips the sign of |{marked}⟩ only, turn it into a Grover operator with "
            f"qiskit.circuit.library.grover_operator, and apply it {iterations} time(s) after a uniform "
            "superposition.",
            f"Write Qiskit code for a {n}-qubit Grover search whose oracle marks |{marked}⟩ (Qiskit bit order, "
            f"qubit 0 rightmost) with a -1 phase. Start from Hadamards on all qubits and apply {iterations} Grover "
            "iteration(s) built with grover_operator.",
            f"Amplify the amplitude of |{marked}⟩ on {n} qubits: phase oracle (-1 on that state only), "
            f"grover_operator from the circuit library, {iterations} iteration(s) starting from |+⟩^{n}.",
        ], "Name the oracle circuit `oracle` (no measurements, no extra qubits) and the full search circuit "
           "`qc` (no measurements)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", "\n".join(oracle_lines), "\n".join(other_lines)),
            drop_line(reference, "missing_step", f"qc.h(range({n}))"),
            mutate(reference, "wrong_gate", f"oracle.mcx({list(range(n - 1))!r}, {n - 1})",
                   f"oracle.mcx({list(range(n - 1))!r}, {n - 1})\noracle.z(0)"),
        ],
        features={"num_qubits": n, "gate_count": len(oracle_lines) * iterations + n,
                  "concepts": ["Grover", "oracle", "circuit library"], "marked": marked},
    )


@template("random_circuit_reproducible", area=AREA)
def random_circuit_reproducible(rng: random.Random) -> Draft:
    """A seeded random circuit and its unitary."""
    n = rng.randint(3, 4)
    depth = rng.randint(2, 5)
    operands = rng.randint(2, 3)
    seed = rng.randint(0, 9999)
    call = f"random_circuit({n}, {depth}, max_operands={operands}, seed={seed})"
    reference = source(f"""
        from qiskit.circuit.random import random_circuit
        from qiskit.quantum_info import Operator

        qc = {call}
        unitary = Operator(qc)
        """)
    checks = tests(f"""
        from qiskit.circuit.random import random_circuit
        from qiskit.quantum_info import Operator


        class TestRandomCircuit(unittest.TestCase):
            def test_reproduces_the_seeded_circuit(self):
                expected = Operator({call})
                self.assertEqual(qc.num_qubits, {n})
                self.assertTrue(Operator(qc).equiv(expected))
                self.assertTrue(Operator(unitary).equiv(expected))
        """)
    return Draft(
        prompts=prompts([
            f"Generate a random {n}-qubit circuit of depth {depth} with gates acting on at most {operands} qubits, "
            f"using qiskit.circuit.random.random_circuit with seed={seed} and no measurements, and compute its "
            "unitary.",
            f"Write Qiskit code that reproducibly creates a random circuit (num_qubits={n}, depth={depth}, "
            f"max_operands={operands}, seed {seed}, without measurements) and its Operator.",
            f"Reproduce the random circuit random_circuit({n} qubits, depth {depth}, max {operands}-qubit gates, "
            f"seed {seed}, measure=False) and get its unitary as a quantum_info Operator.",
        ], "Name the circuit `qc` and its Operator `unitary`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"seed={seed})", f"seed={seed + 1})"),
            mutate(reference, "wrong_depth", f"random_circuit({n}, {depth},", f"random_circuit({n}, {depth + 1},"),
            mutate(reference, "missing_step", "unitary = Operator(qc)", "unitary = Operator(qc.inverse())"),
        ],
        features={"num_qubits": n, "gate_count": depth * n // 2 + 1,
                  "concepts": ["random circuits", "Operator"]},
    )


@template("phase_estimation", area=AREA)
def phase_estimation(rng: random.Random) -> Draft:
    """Textbook QPE of a phase gate whose phase has an exact t-bit expansion."""
    t = rng.randint(3, 4)
    size = 2 ** t
    numerator = rng.choice([j for j in range(1, size) if j != size // 2])  # QFT and its inverse differ
    reference = source(f"""
        from math import pi

        from qiskit import QuantumCircuit
        from qiskit.circuit.library import QFTGate

        phase = {numerator} / {size}
        qc = QuantumCircuit({t + 1})
        qc.x({t})
        qc.h(range({t}))
        for k in range({t}):
            qc.cp(2 * pi * phase * 2 ** k, k, {t})
        qc.append(QFTGate({t}).inverse(), range({t}))
        """)
    expected_key = format(numerator, f"0{t}b")
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestPhaseEstimation(unittest.TestCase):
            def test_counting_register(self):
                self.assertEqual(qc.num_qubits, {t + 1})
                probabilities = Statevector(qc).probabilities_dict(qargs=list(range({t})))
                self.assertGreater(probabilities.get({expected_key!r}, 0.0), 0.99)
        """)
    return Draft(
        prompts=prompts([
            f"Estimate the phase of U = P(2π·φ) with φ = {numerator}/{size} by quantum phase estimation with {t} "
            f"counting qubits (qubits 0..{t - 1}) and the eigenstate |1⟩ on qubit {t}. Counting qubit k controls "
            f"U^(2^k); finish with an inverse QFT on the counting qubits, so that they hold the integer "
            f"{numerator} (qubit 0 least significant).",
            f"Write a Qiskit QPE circuit ({t + 1} qubits) for the phase gate P(2π·{numerator}/{size}) acting on "
            f"qubit {t}, prepared in |1⟩. Use qubits 0..{t - 1} as the counting register (qubit k controls "
            f"U^(2^k)) and an inverse QFT from the circuit library; the register must read {numerator} in "
            "little-endian order.",
            f"Build phase estimation with {t} counting qubits for the eigenphase φ = {numerator}/{size} of a "
            f"P(2πφ) gate on the target qubit {t} (initialised to |1⟩): Hadamards, controlled powers U^(2^k) "
            f"from counting qubit k, inverse QFT; counting qubits 0..{t - 1} end up encoding {numerator}.",
        ], "Store the circuit in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", f"QFTGate({t}).inverse()", f"QFTGate({t})"),
            mutate(reference, "wrong_parameter", f"phase = {numerator} / {size}",
                   f"phase = {(numerator + 1) % size} / {size}"),
            drop_line(reference, "missing_step", f"qc.x({t})"),
        ],
        features={"num_qubits": t + 1, "gate_count": 2 * t + 1 + t * (t + 1) // 2,
                  "concepts": ["phase estimation", "QFT", "controlled gates"]},
    )


ENTANGLEMENTS = ("linear", "full", "circular")


@template("real_amplitudes_ansatz", area=AREA)
def real_amplitudes_ansatz(rng: random.Random) -> Draft:
    """The library's real_amplitudes ansatz, bound to a simple parameter pattern."""
    n = rng.randint(3, 4)
    reps = rng.randint(1, 3)
    entanglement = rng.choice(ENTANGLEMENTS)
    scale = pick_float(rng, 0.1, 0.4)
    count = n * (reps + 1)
    other = rng.choice([e for e in ENTANGLEMENTS if e != entanglement])
    reference = source(f"""
        from qiskit.circuit.library import real_amplitudes

        ansatz = real_amplitudes({n}, reps={reps}, entanglement="{entanglement}")
        bound = ansatz.assign_parameters([{scale} * (index + 1) for index in range(ansatz.num_parameters)])
        """)
    checks = tests(f"""
        from qiskit.circuit.library import real_amplitudes
        from qiskit.quantum_info import Statevector


        class TestRealAmplitudes(unittest.TestCase):
            def test_parameters(self):
                self.assertEqual(ansatz.num_qubits, {n})
                self.assertEqual(ansatz.num_parameters, {count})

            def test_bound_state(self):
                expected = real_amplitudes({n}, reps={reps}, entanglement="{entanglement}")
                values = [{scale} * (index + 1) for index in range({count})]
                self.assertEqual(bound.num_parameters, 0)
                self.assertTrue(Statevector(bound).equiv(Statevector(expected.assign_parameters(values))))
        """)
    return Draft(
        prompts=prompts([
            f"Create the RealAmplitudes ansatz from Qiskit's circuit library on {n} qubits with {reps} "
            f"repetition(s) and \"{entanglement}\" entanglement, then bind its parameters (in the ansatz's "
            f"parameter order) to {scale}·1, {scale}·2, …, {scale}·{count}.",
            f"Write Qiskit code that builds real_amplitudes(num_qubits={n}, reps={reps}, "
            f"entanglement='{entanglement}') and assigns the value {scale}·(i+1) to its i-th parameter.",
            f"Use the circuit library's real-amplitudes n-local circuit ({n} qubits, reps={reps}, "
            f"{entanglement} entanglement, {count} parameters) and produce a copy with parameter i set to "
            f"{scale}*(i+1).",
        ], "Name the parameterized ansatz `ansatz` and the bound circuit `bound`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"reps={reps},", f"reps={reps + 1},"),
            mutate(reference, "wrong_entanglement", f'entanglement="{entanglement}"', f'entanglement="{other}"'),
            mutate(reference, "wrong_gate", "real_amplitudes", "efficient_su2", count=2),
        ],
        features={"num_qubits": n, "gate_count": count + reps * (n - 1),
                  "concepts": ["n-local ansatz", "circuit library", "Parameter"], "entanglement": entanglement},
    )
