"""Dynamic circuits: teleportation with feed-forward, active reset, switch, repeated parity checks and
repeat-until-success loops, all checked by sampling with Aer (fixed seed, registers read by name)."""

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

AREA = "dynamic_circuits"
HEADER = "from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister\n\n"


@template("teleportation", area=AREA)
def teleportation(rng: random.Random) -> Draft:
    """Teleport RZ(φ)RY(θ)|0⟩ from qubit 0 to qubit 2 with mid-circuit measurements and corrections."""
    theta, phi = pick_float(rng, 0.5, 2.6), pick_float(rng, 0.5, 2.6)
    x_fix, z_fix = "with qc.if_test((m1, 1)):\n    qc.x(2)", "with qc.if_test((m0, 1)):\n    qc.z(2)"
    reference = HEADER + source(f"""
        m0 = ClassicalRegister(1, "m0")
        m1 = ClassicalRegister(1, "m1")
        qc = QuantumCircuit(QuantumRegister(3, "q"), m0, m1)
        qc.ry({theta}, 0)
        qc.rz({phi}, 0)
        qc.h(1)
        qc.cx(1, 2)
        qc.cx(0, 1)
        qc.h(0)
        qc.measure(0, m0[0])
        qc.measure(1, m1[0])
        """) + f"{x_fix}\n{z_fix}\n"
    checks = tests(f"""
        from qiskit import ClassicalRegister


        class TestTeleportation(unittest.TestCase):
            def test_state_arrives_on_qubit_2(self):
                probe = qc.copy()
                check = ClassicalRegister(1, "teleport_check")
                probe.add_register(check)
                probe.rz({-phi}, 2)
                probe.ry({-theta}, 2)
                probe.measure(2, check[0])
                outcomes = _register_outcomes(probe, shots=512)
                self.assertEqual({{registers["teleport_check"] for registers, _ in outcomes}}, {{"0"}})
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"Teleport the state RZ({phi})·RY({theta})|0⟩, prepared on qubit 0, to qubit 2: share a Bell pair "
            "between qubits 1 and 2, do the Bell measurement on qubits 0 and 1 with mid-circuit measurements, "
            "and apply the X and Z corrections to qubit 2 with if_test on the measured bits.",
            f"Write the quantum teleportation protocol as a 3-qubit dynamic circuit in Qiskit. Input: RY({theta}) "
            f"then RZ({phi}) on qubit 0. Output: the same state on qubit 2 after classically conditioned "
            "corrections (feed-forward), not by deferred measurement.",
            f"Implement teleportation with real-time classical control: qubit 0 holds RZ({phi})RY({theta})|0⟩, "
            "qubits 1-2 form the Bell pair, measure qubits 0 and 1 mid-circuit and correct qubit 2 with "
            "QuantumCircuit.if_test.",
        ], "Name the circuit `qc` (3 qubits). Leave qubit 2 unmeasured at the end; the tests measure it "
           "themselves."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", z_fix + "\n", ""),
            mutate(reference, "wrong_gate", "    qc.x(2)", "    qc.y(2)"),
            mutate(reference, "wrong_qubit", "with qc.if_test((m0, 1)):", "with qc.if_test((m1, 1)):"),
        ],
        features={"num_qubits": 3, "gate_count": 10, "concepts": ["teleportation", "if_test", "mid-circuit measurement"]},
    )


@template("active_reset", area=AREA)
def active_reset(rng: random.Random) -> Draft:
    """Measure qubits in superposition and flip the ones that read 1, so that all end in |0⟩."""
    n = rng.randint(2, 3)
    thetas = [pick_float(rng, 0.8, 2.4) for _ in range(n)]
    fixes = [f"with qc.if_test((before[{q}], 1)):\n    qc.x({q})" for q in range(n)]
    reference = HEADER + source(f"""
        before = ClassicalRegister({n}, "before")
        after = ClassicalRegister({n}, "after")
        qc = QuantumCircuit(QuantumRegister({n}, "q"), before, after)
        {block([f"qc.ry({thetas[q]}, {q})" for q in range(n)])}
        qc.measure(range({n}), before)
        """) + "\n".join(fixes) + f"\nqc.measure(range({n}), after)\n"
    shots = 512
    checks = tests(f"""
        class TestActiveReset(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                cls.outcomes = _register_outcomes(qc, shots={shots})

            def test_all_reset(self):
                self.assertEqual({{registers["after"] for registers, _ in self.outcomes}}, {{"0" * {n}}})

            def test_first_measurement(self):
                for qubit, theta in enumerate({thetas!r}):
                    p = np.sin(theta / 2) ** 2
                    ones = _register_frequency(self.outcomes, lambda registers: registers["before"][{n - 1} - qubit] == "1")
                    self.assertAlmostEqual(ones, p, delta=5 * (p * (1 - p) / {shots}) ** 0.5 + 0.01)
        """, REGISTER_OUTCOMES)
    rotations = ", ".join(f"RY({thetas[q]}) on qubit {q}" for q in range(n))
    return Draft(
        prompts=prompts([
            f"Prepare {rotations}. Measure every qubit q into before[q], then actively reset: apply X to each "
            "qubit whose measured bit is 1 (if_test), and finally measure qubit q into after[q], which must "
            "always read 0.",
            f"Write a dynamic Qiskit circuit on {n} qubits that implements measurement-based active reset: after "
            f"{rotations}, mid-circuit measurements into register \"before\" decide, bit by bit, whether an X "
            "brings the qubit back to |0⟩; verify with a final measurement into register \"after\".",
            f"Using classical feed-forward (no reset instruction needed), return {n} qubits prepared by "
            f"{rotations} to |0…0⟩: measure each into before[q], conditionally flip it, then measure into after[q].",
        ], f"Name the circuit `qc` with {n} qubits and two {n}-bit classical registers named \"before\" and "
           "\"after\" (qubit q into bit q of each)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", "(before[0], 1)", "(before[0], 0)"),
            mutate(reference, "missing_step", fixes[-1] + "\n", ""),
            mutate(reference, "wrong_qubit", fixes[0], fixes[0].replace("qc.x(0)", "qc.x(1)")),
        ],
        features={"num_qubits": n, "gate_count": 4 * n, "concepts": ["mid-circuit measurement", "if_test", "reset"]},
    )


@template("switch_dispatch", area=AREA)
def switch_dispatch(rng: random.Random) -> Draft:
    """A switch on a 2-bit register: some values flip the output qubit, the others do nothing."""
    while True:
        flips = sorted(v for v in range(4) if rng.random() < 0.5)
        if 0 < len(flips) < 4:
            break
    keeps = [v for v in range(4) if v not in flips]
    case_values = ", ".join(map(str, flips))
    reference = HEADER + source("""
        sel = ClassicalRegister(2, "sel")
        out = ClassicalRegister(1, "out")
        qc = QuantumCircuit(QuantumRegister(3, "q"), sel, out)
        qc.h(0)
        qc.h(1)
        qc.measure([0, 1], sel)
        """) + f"with qc.switch(sel) as case:\n    with case({case_values}):\n        qc.x(2)\n" + \
        "qc.measure(2, out[0])\n"
    checks = tests(f"""
        class TestSwitch(unittest.TestCase):
            def test_dispatch(self):
                outcomes = _register_outcomes(qc, shots=512)
                self.assertEqual({{int(registers["sel"], 2) for registers, _ in outcomes}}, {{0, 1, 2, 3}})
                for registers, _ in outcomes:
                    expected = "1" if int(registers["sel"], 2) in {flips!r} else "0"
                    self.assertEqual(registers["out"], expected, registers)
        """, REGISTER_OUTCOMES)
    moved = flips[:-1] + [keeps[0]]
    return Draft(
        prompts=prompts([
            f"Put qubits 0 and 1 in superposition and measure them into a 2-bit register \"sel\" (qubit i into "
            f"sel[i]). Use a switch statement on sel so that qubit 2 is flipped when sel is one of {flips} and "
            "left alone otherwise; then measure qubit 2 into a 1-bit register \"out\".",
            f"Write a 3-qubit dynamic circuit with QuantumCircuit.switch: random 2-bit selector from Hadamards "
            f"and measurements of qubits 0-1 into register \"sel\"; the cases {flips} apply X to qubit 2, the "
            f"values {keeps} do nothing; finally measure qubit 2 into register \"out\".",
            f"Dispatch on a measured register: sel (2 bits, from H + measure on qubits 0 and 1) selects whether "
            f"qubit 2 is flipped (values {case_values}) or not (values {', '.join(map(str, keeps))}). Record "
            "qubit 2 in register \"out\".",
        ], "Name the circuit `qc` (3 qubits) with the classical registers \"sel\" (2 bits) and \"out\" (1 bit)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"case({case_values})", f"case({', '.join(map(str, moved))})"),
            mutate(reference, "wrong_qubit", "        qc.x(2)", "        qc.x(0)"),
            drop_line(reference, "missing_step", "qc.measure(2, out[0])"),
        ],
        features={"num_qubits": 3, "gate_count": 6, "concepts": ["switch", "mid-circuit measurement", "registers"]},
    )


@template("repeated_parity_check", area=AREA)
def repeated_parity_check(rng: random.Random) -> Draft:
    """Measure a two-qubit parity twice with one ancilla reset in between, without disturbing the data."""
    a, b, c = choose(rng, range(3), 3)  # the error sits on a: parity(a, b) = 1, parity(b, c) = 0
    check = [f"qc.cx({a}, 3)", f"qc.cx({b}, 3)"]
    reference = HEADER + source(f"""
        p1 = ClassicalRegister(1, "p1")
        p2 = ClassicalRegister(1, "p2")
        data = ClassicalRegister(3, "data")
        qc = QuantumCircuit(QuantumRegister(4, "q"), p1, p2, data)
        qc.h(0)
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.x({a})
        {block(check)}
        qc.measure(3, p1[0])
        qc.reset(3)
        {block(check)}
        qc.measure(3, p2[0])
        qc.measure([0, 1, 2], data)
        """)
    pattern = "".join("1" if q == a else "0" for q in (2, 1, 0))
    complement = "".join("0" if bit == "1" else "1" for bit in pattern)
    checks = tests(f"""
        class TestRepeatedParity(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                cls.outcomes = _register_outcomes(qc, shots=512)

            def test_both_checks_report_odd_parity(self):
                self.assertEqual({{(registers["p1"], registers["p2"]) for registers, _ in self.outcomes}}, {{("1", "1")}})

            def test_data_undisturbed(self):
                self.assertEqual({{registers["data"] for registers, _ in self.outcomes}}, {{{pattern!r}, {complement!r}}})
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"On data qubits 0-2 prepare a GHZ state and flip qubit {a}. Using qubit 3 as an ancilla, measure "
            f"the parity Z{a}Z{b} twice: CNOTs from qubits {a} and {b} onto the ancilla, measure it into the "
            "1-bit register \"p1\", reset it, repeat into register \"p2\". Finally measure qubits 0-2 into the "
            "3-bit register \"data\" (qubit i into data[i]).",
            f"Write a dynamic Qiskit circuit for repeated stabilizer measurement: GHZ on qubits 0-2 with an X on "
            f"qubit {a}, ancilla 3 collects the parity of qubits {a} and {b} (two CNOTs) and is measured "
            "mid-circuit into \"p1\", reset, and reused for a second round into \"p2\"; the data qubits are then "
            "measured into \"data\".",
            f"Check the parity of qubits {a} and {b} twice with the same ancilla (qubit 3), resetting it between "
            f"rounds, on the data state X_{a}·GHZ (qubits 0-2). Store the two results in 1-bit registers \"p1\" "
            "and \"p2\" and the final data readout in a 3-bit register \"data\".",
        ], "Name the circuit `qc` (4 qubits) with classical registers \"p1\", \"p2\" (1 bit each) and \"data\" "
           "(3 bits)."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", "qc.reset(3)"),
            mutate(reference, "wrong_qubit", "\n".join(check), f"qc.cx({c}, 3)\nqc.cx({b}, 3)", count=2),
            mutate(reference, "wrong_gate", f"qc.x({a})", f"qc.z({a})"),
        ],
        features={"num_qubits": 4, "gate_count": 13,
                  "concepts": ["mid-circuit measurement", "reset", "parity check", "ancilla"]},
    )


@template("repeat_until_success", area=AREA)
def repeat_until_success(rng: random.Random) -> Draft:
    """A while_loop that retries a probabilistic preparation until the measurement succeeds."""
    theta = pick_float(rng, 1.0, 2.5)
    target = rng.randint(1, 2)
    reference = HEADER + source(f"""
        flag = ClassicalRegister(1, "flag")
        final = ClassicalRegister(2, "final")
        qc = QuantumCircuit(QuantumRegister(3, "q"), flag, final)
        qc.ry({theta}, 0)
        qc.measure(0, flag[0])
        """) + f"with qc.while_loop((flag, 0)):\n    qc.ry({theta}, 0)\n    qc.measure(0, flag[0])\n" + source(f"""
        qc.cx(0, {target})
        qc.measure(0, final[0])
        qc.measure({target}, final[1])
        """)
    p_success = math.sin(theta / 2) ** 2
    checks = tests("""
        class TestRepeatUntilSuccess(unittest.TestCase):
            def test_always_succeeds(self):
                outcomes = _register_outcomes(qc, shots=256)
                self.assertEqual({registers["flag"] for registers, _ in outcomes}, {"1"})
                self.assertEqual({registers["final"] for registers, _ in outcomes}, {"11"})
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"Repeat-until-success: rotate qubit 0 by RY({theta}) and measure it into the 1-bit register "
            f"\"flag\"; while flag is 0, apply RY({theta}) again and re-measure (use while_loop). Once it "
            f"succeeded, copy qubit 0 onto qubit {target} with a CNOT and measure qubits 0 and {target} into "
            f"final[0] and final[1].",
            f"Write a Qiskit dynamic circuit with a while loop that keeps re-trying the RY({theta}) preparation "
            f"of qubit 0 (success probability about {p_success:.2f}) until its mid-circuit measurement, stored "
            f"in register \"flag\", reads 1; then CNOT 0 → {target} and measure qubit 0 into final[0] and qubit "
            f"{target} into final[1].",
            f"Use QuantumCircuit.while_loop on a 1-bit register \"flag\" to retry RY({theta}) + measurement on "
            f"qubit 0 until it yields 1. Afterwards entangle qubit {target} with a CNOT from qubit 0 and read both "
            "into the 2-bit register \"final\" (qubit 0 → bit 0).",
        ], "Name the circuit `qc` (3 qubits) with classical registers \"flag\" (1 bit) and \"final\" (2 bits)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", f"with qc.while_loop((flag, 0)):\n    qc.ry({theta}, 0)\n"
                   "    qc.measure(0, flag[0])\n", ""),
            mutate(reference, "wrong_qubit", f"qc.cx(0, {target})", f"qc.cx(0, {3 - target})"),
            mutate(reference, "wrong_gate", f"qc.cx(0, {target})", f"qc.cz(0, {target})"),
        ],
        features={"num_qubits": 3, "gate_count": 7, "concepts": ["while_loop", "mid-circuit measurement"]},
    )
