"""Error correction: repetition and phase-flip encoders, syndrome extraction, correction and decoding."""

from __future__ import annotations

import math
import random

from pipelines.tasks.templates.common import (
    REGISTER_OUTCOMES,
    block,
    choose,
    drop_line,
    mutate,
    pick_float,
    prompts,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "error_correction"
HEADER = "from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister\n\n"


def _logical_angle(rng: random.Random) -> float:
    """An RY angle whose P(1) is far from 1/2 (so that swapping |0⟩ and |1⟩ is visible)."""
    return pick_float(rng, 0.5, 1.1) if rng.random() < 0.5 else pick_float(rng, 2.0, 2.6)


@template("repetition_encoder", area=AREA)
def repetition_encoder(rng: random.Random) -> Draft:
    """Encode a·|0⟩ + b·|1⟩ held by one qubit into a·|0…0⟩ + b·|1…1⟩."""
    n = rng.choice([3, 5])
    source_qubit = rng.randrange(n)
    theta = _logical_angle(rng)
    phi = pick_float(rng, 0.3, 2.8)
    others = [q for q in range(n) if q != source_qubit]
    spreads = [f"qc.cx({source_qubit}, {q})" for q in others]
    reference = source(f"""
        from qiskit import QuantumCircuit

        qc = QuantumCircuit({n})
        qc.ry({theta}, {source_qubit})
        qc.rz({phi}, {source_qubit})
        {block(spreads)}
        """)
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestRepetitionEncoder(unittest.TestCase):
            def test_codeword(self):
                expected = np.zeros({2 ** n}, dtype=complex)
                expected[0] = np.cos({theta} / 2)
                expected[-1] = np.exp(1j * {phi}) * np.sin({theta} / 2)
                self.assertEqual(qc.num_qubits, {n})
                self.assertTrue(Statevector(qc).equiv(Statevector(expected)))
        """)
    amplitude = f"cos({theta}/2)|0⟩ + e^(i·{phi})·sin({theta}/2)|1⟩"
    return Draft(
        prompts=prompts([
            f"Prepare the state {amplitude} on qubit {source_qubit} with RY({theta}) then RZ({phi}), and encode "
            f"it into the {n}-qubit bit-flip repetition code, so that the register holds "
            f"cos({theta}/2)|{'0' * n}⟩ + e^(i·{phi})·sin({theta}/2)|{'1' * n}⟩ (up to global phase).",
            f"Write a Qiskit encoder for the {n}-qubit repetition code: qubit {source_qubit} carries the logical "
            f"state (made with RY({theta}) and RZ({phi})), and the circuit must copy its computational-basis "
            "value onto every other qubit without measuring.",
            f"Build a {n}-qubit circuit that rotates qubit {source_qubit} by RY({theta}) and RZ({phi}) and then "
            f"spreads it into the codeword α|{'0' * n}⟩ + β|{'1' * n}⟩ of the repetition code.",
        ], "Store the circuit in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", spreads[-1]),
            mutate(reference, "wrong_qubit", f"qc.ry({theta}, {source_qubit})", f"qc.ry({theta}, {others[0]})"),
            mutate(reference, "wrong_parameter", f"qc.ry({theta}, {source_qubit})",
                   f"qc.ry({round(math.pi - theta, 2)}, {source_qubit})"),
        ],
        features={"num_qubits": n, "gate_count": n + 1, "concepts": ["repetition code", "encoding"]},
    )


SYNDROME_CHECKS = ((0, 1, 3), (1, 2, 4))
"""(data qubit, data qubit, ancilla) for the two parity checks of the 3-qubit bit-flip code."""


def _syndrome(error_qubit: int) -> str:
    """The two-bit syndrome string (bit 1 first) of an X error on ``error_qubit``."""
    bits = [int(error_qubit in (a, b)) for a, b, _ in SYNDROME_CHECKS]
    return f"{bits[1]}{bits[0]}"


def _syndrome_lines(checks: tuple[tuple[int, int, int], ...] = SYNDROME_CHECKS) -> list[str]:
    lines = []
    for a, b, ancilla in checks:
        lines += [f"qc.cx({a}, {ancilla})", f"qc.cx({b}, {ancilla})"]
    return lines + ["qc.measure(3, syndrome[0])", "qc.measure(4, syndrome[1])"]


@template("bit_flip_syndrome", area=AREA)
def bit_flip_syndrome(rng: random.Random) -> Draft:
    """Extract the syndrome of a single X error in the 3-qubit bit-flip code."""
    theta = _logical_angle(rng)
    error = rng.randrange(3)
    reference = HEADER + source(f"""
        syndrome = ClassicalRegister(2, "syndrome")
        qc = QuantumCircuit(QuantumRegister(5, "q"), syndrome)
        qc.ry({theta}, 0)
        qc.cx(0, 1)
        qc.cx(0, 2)
        qc.x({error})
        {block(_syndrome_lines())}
        """)
    expected = _syndrome(error)
    checks = tests(f"""
        class TestSyndrome(unittest.TestCase):
            def test_syndrome(self):
                outcomes = _register_outcomes(qc, shots=256)
                self.assertEqual({{registers["syndrome"] for registers, _ in outcomes}}, {{{expected!r}}})
        """, REGISTER_OUTCOMES)
    # A check on the wrong pair must disagree for this error: for an error on qubit 0 change check 1
    # (Z1Z2 -> Z0Z2), otherwise change check 0 (Z0Z1 -> Z0Z2).
    wrong_check = ("qc.cx(1, 4)", "qc.cx(0, 4)") if error == 0 else ("qc.cx(1, 3)", "qc.cx(2, 3)")
    return Draft(
        prompts=prompts([
            f"Encode RY({theta})|0⟩ from qubit 0 into the 3-qubit bit-flip code on qubits 0-2, apply an X error "
            f"to qubit {error}, and measure the syndrome with ancillas: qubit 3 gets the parity of qubits 0 and "
            "1, qubit 4 the parity of qubits 1 and 2, measured into syndrome[0] and syndrome[1].",
            f"Write a 5-qubit Qiskit circuit for one round of bit-flip-code syndrome extraction: data qubits 0-2 "
            f"(encoded from RY({theta}) on qubit 0 with two CNOTs), a deliberate X error on data qubit {error}, "
            "ancilla 3 measuring Z0Z1 into syndrome[0] and ancilla 4 measuring Z1Z2 into syndrome[1].",
            f"Simulate error detection in the 3-qubit repetition code: logical state RY({theta})|0⟩ spread over "
            f"qubits 0, 1, 2; bit flip on qubit {error}; parities Z0Z1 and Z1Z2 copied onto ancillas 3 and 4 by "
            "CNOTs and measured into a 2-bit register (bit 0: Z0Z1, bit 1: Z1Z2).",
        ], "Name the circuit `qc`, with 5 qubits and one 2-bit classical register named \"syndrome\"."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"qc.x({error})", f"qc.x({(error + 1) % 3})"),
            mutate(reference, "wrong_check", *wrong_check),
            drop_line(reference, "missing_step", f"qc.x({error})"),
        ],
        features={"num_qubits": 5, "gate_count": 10, "concepts": ["bit-flip code", "syndrome", "ancilla"]},
    )


@template("bit_flip_correction", area=AREA)
def bit_flip_correction(rng: random.Random) -> Draft:
    """A full bit-flip-code cycle: encode, error, syndrome, conditional correction, decode."""
    theta = _logical_angle(rng)
    error = rng.randrange(3)
    corrections = [f"with qc.if_test((syndrome, {int(_syndrome(q), 2)})):\n    qc.x({q})" for q in range(3)]
    reference = HEADER + source(f"""
        syndrome = ClassicalRegister(2, "syndrome")
        out = ClassicalRegister(3, "out")
        qc = QuantumCircuit(QuantumRegister(5, "q"), syndrome, out)
        qc.ry({theta}, 0)
        qc.cx(0, 1)
        qc.cx(0, 2)
        qc.x({error})
        {block(_syndrome_lines())}
        """) + "\n".join(corrections) + "\n" + source("""
        qc.cx(0, 2)
        qc.cx(0, 1)
        qc.measure([0, 1, 2], out)
        """)
    p_one = math.sin(theta / 2) ** 2
    shots = 1024
    checks = tests(f"""
        class TestCorrection(unittest.TestCase):
            def test_decoded(self):
                outcomes = _register_outcomes(qc, shots={shots})
                self.assertEqual({{registers["out"][:2] for registers, _ in outcomes}}, {{"00"}})
                ones = _register_frequency(outcomes, lambda registers: registers["out"][2] == "1")
                self.assertAlmostEqual(ones, {p_one!r}, delta=5 * ({p_one!r} * (1 - {p_one!r}) / {shots}) ** 0.5 + 0.01)
        """, REGISTER_OUTCOMES)
    wrong_value = int(_syndrome((error + 1) % 3), 2)
    return Draft(
        prompts=prompts([
            f"Run one full cycle of the 3-qubit bit-flip code on 5 qubits: encode RY({theta})|0⟩ from qubit 0 "
            f"onto qubits 0-2, apply an X error to qubit {error}, measure Z0Z1 (ancilla 3 → syndrome[0]) and Z1Z2 "
            "(ancilla 4 → syndrome[1]), correct the flipped qubit with if_test on the syndrome register, decode "
            "with the inverse CNOTs and measure qubits 0, 1, 2 into out[0], out[1], out[2].",
            f"Write a dynamic Qiskit circuit that protects RY({theta})|0⟩ with the bit-flip code: encoding with "
            f"CNOTs from qubit 0, a deliberate X on qubit {error}, ancilla-based syndrome extraction into a 2-bit "
            "register \"syndrome\" (bit 0 = parity of qubits 0,1; bit 1 = parity of qubits 1,2), classically "
            "controlled X corrections, decoding, and measurement of the three data qubits into register \"out\" "
            "(qubit i into out[i]). After decoding, qubits 1 and 2 must be |0⟩ and qubit 0 must hold the "
            "original state.",
            f"Demonstrate error correction: logical RY({theta})|0⟩ encoded in the repetition code on qubits 0-2, "
            f"bit flip on qubit {error}, syndrome measured with ancillas 3 and 4 into register \"syndrome\", "
            "corrections applied with QuantumCircuit.if_test according to the syndrome value, then unencode and "
            "measure the data qubits into register \"out\".",
        ], "Name the circuit `qc` with 5 qubits and the classical registers \"syndrome\" (2 bits) and \"out\" "
           "(3 bits)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", corrections[error] + "\n", ""),
            mutate(reference, "wrong_parameter", f"(syndrome, {int(_syndrome(error), 2)})",
                   f"(syndrome, {wrong_value})"),
            mutate(reference, "missing_decode", "qc.cx(0, 2)\nqc.cx(0, 1)\nqc.measure", "qc.measure"),
        ],
        features={"num_qubits": 5, "gate_count": 18,
                  "concepts": ["bit-flip code", "syndrome", "if_test", "decoding"]},
    )


@template("syndrome_decoder", area=AREA)
def syndrome_decoder(rng: random.Random) -> Draft:
    """A lookup decoder for the n-qubit repetition code's nearest-neighbour parity checks."""
    n = rng.randint(3, 6)
    reference = source(f"""
        NUM_QUBITS = {n}


        def decode(syndrome):
            \"\"\"Index of the single flipped qubit for a syndrome string, or -1 when it shows no error.\"\"\"
            bits = [int(bit) for bit in reversed(syndrome)]
            for qubit in range(NUM_QUBITS):
                pattern = [1 if check in (qubit - 1, qubit) else 0 for check in range(NUM_QUBITS - 1)]
                if bits == pattern:
                    return qubit
            return -1
        """)
    checks = tests(f"""
        def _syndrome_of(error):
            bits = [1 if error in (check, check + 1) else 0 for check in range({n - 1})]
            return "".join(str(bit) for bit in reversed(bits))


        class TestDecoder(unittest.TestCase):
            def test_no_error(self):
                self.assertEqual(decode("0" * {n - 1}), -1)

            def test_single_errors(self):
                for error in range({n}):
                    self.assertEqual(decode(_syndrome_of(error)), error, _syndrome_of(error))
        """)
    return Draft(
        prompts=prompts([
            f"The {n}-qubit repetition code measures the parities Z_i Z_(i+1) for i = 0..{n - 2}; check i is "
            f"stored in classical bit i, and syndromes are written as Qiskit bitstrings (bit 0 is the rightmost "
            "character). Write decode(syndrome) that returns the index of the qubit hit by a single X error, or "
            "-1 for the all-zero syndrome.",
            f"Implement the lookup decoder of the {n}-qubit bit-flip repetition code: given a syndrome string of "
            f"{n - 1} characters in Qiskit's order (rightmost = check 0 = parity of qubits 0 and 1), return which "
            "qubit flipped (single-error assumption), or -1 if none did.",
            f"Write a Python function for syndrome decoding: decode('{'0' * (n - 1)}') == -1, and for a single "
            f"X error on qubit q of a {n}-qubit repetition code with checks Z_i Z_(i+1) (check i at string "
            f"position {n - 2}-i, i.e. little-endian), decode returns q.",
        ], "Define the function `decode(syndrome)` taking a string and returning an int."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", "(qubit - 1, qubit)", "(qubit, qubit + 1)"),
            mutate(reference, "wrong_bit_order", "reversed(syndrome)", "syndrome"),
            mutate(reference, "missing_step", "    return -1", "    return 0"),
        ],
        features={"num_qubits": n, "gate_count": 0, "concepts": ["repetition code", "decoding", "bit ordering"]},
        entry_point="decode",
    )


@template("phase_flip_code", area=AREA)
def phase_flip_code(rng: random.Random) -> Draft:
    """Encode into the phase-flip code and apply a Z error on one qubit."""
    theta = _logical_angle(rng)
    error = rng.randrange(3)
    other = choose(rng, [q for q in range(3) if q != error], 1)[0]
    reference = source(f"""
        from qiskit import QuantumCircuit

        qc = QuantumCircuit(3)
        qc.ry({theta}, 0)
        qc.cx(0, 1)
        qc.cx(0, 2)
        qc.h(0)
        qc.h(1)
        qc.h(2)
        qc.z({error})
        """)

    def label(sign: str) -> str:
        """Codeword label with the error's qubit flipped (+ <-> -); the rightmost character is qubit 0."""
        chars = [sign] * 3
        chars[2 - error] = "-" if sign == "+" else "+"
        return "".join(chars)

    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestPhaseFlipCode(unittest.TestCase):
            def test_state(self):
                expected = (np.cos({theta} / 2) * Statevector.from_label({label("+")!r})
                            + np.sin({theta} / 2) * Statevector.from_label({label("-")!r}))
                self.assertEqual(qc.num_qubits, 3)
                self.assertTrue(Statevector(qc).equiv(expected))
        """)
    return Draft(
        prompts=prompts([
            f"Encode RY({theta})|0⟩ (prepared on qubit 0) into the 3-qubit phase-flip code, "
            f"cos({theta}/2)|+++⟩ + sin({theta}/2)|---⟩, then apply a phase-flip (Z) error to qubit {error}.",
            f"Write a Qiskit circuit on 3 qubits: prepare RY({theta}) on qubit 0, encode it into the phase-flip "
            f"repetition code (CNOTs to qubits 1 and 2, then Hadamards on all three), and inject a Z error on "
            f"qubit {error}.",
            f"Build the phase-flip code's encoder (logical state RY({theta})|0⟩ on qubit 0 mapped to "
            f"α|+++⟩ + β|---⟩) followed by a Z error on qubit {error}.",
        ], "Store the circuit in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", f"qc.z({error})", f"qc.x({error})"),
            mutate(reference, "wrong_qubit", f"qc.z({error})", f"qc.z({other})"),
            drop_line(reference, "missing_step", "qc.h(1)"),
        ],
        features={"num_qubits": 3, "gate_count": 7, "concepts": ["phase-flip code", "encoding"]},
    )
