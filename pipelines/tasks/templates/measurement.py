"""Measurement and classical control: bit mapping, measurement bases, ``if_test`` and if/else."""

from __future__ import annotations

import math
import random

from pipelines.tasks.templates.common import (
    REGISTER_OUTCOMES,
    choose,
    drop_line,
    mutate,
    pick_float,
    prompts,
    qubit_list,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "measurement"
HEADER = "from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister\n\n"


def _register_lines(n: int, registers: dict[str, int]) -> str:
    """Source that declares ``qc`` over n qubits and the given classical registers."""
    declared = ", ".join(f"ClassicalRegister({size}, {name!r})" for name, size in registers.items())
    return f"qc = QuantumCircuit(QuantumRegister({n}, 'q'), {declared})\n"


@template("measure_to_clbits", area=AREA)
def measure_to_clbits(rng: random.Random) -> Draft:
    """A basis state measured through a permuted qubit -> classical-bit mapping."""
    n = rng.randint(3, 4)
    while True:
        values = [rng.randint(0, 1) for _ in range(n)]
        clbit_of = rng.sample(range(n), n)
        if 0 < sum(values) < n and clbit_of != list(range(n)):
            break
    flips = [f"qc.x({q})" for q in range(n) if values[q]]
    measures = [f"qc.measure({q}, {clbit_of[q]})" for q in range(n)]
    reference = source(HEADER + _register_lines(n, {"c": n}) + "\n".join(flips + measures))
    expected = ["0"] * n
    for q in range(n):
        expected[n - 1 - clbit_of[q]] = str(values[q])
    expected_key = "".join(expected)
    one, zero = values.index(1), values.index(0)
    swapped = list(measures)
    swapped[one], swapped[zero] = f"qc.measure({one}, {clbit_of[zero]})", f"qc.measure({zero}, {clbit_of[one]})"
    checks = tests(f"""
        class TestMeasureMapping(unittest.TestCase):
            def test_outcome(self):
                outcomes = _register_outcomes(qc, shots=64)
                self.assertEqual([registers["c"] for registers, _ in outcomes], [{expected_key!r}])
        """, REGISTER_OUTCOMES)
    ones = qubit_list([q for q in range(n) if values[q]])
    mapping = ", ".join(f"qubit {q} → bit {clbit_of[q]}" for q in range(n))
    return Draft(
        prompts=prompts([
            f"On {n} qubits, flip {ones} to |1⟩, then measure each qubit into the classical bit given by "
            f"this mapping: {mapping}.",
            f"Write a Qiskit circuit that prepares |1⟩ on {ones} (all others |0⟩) and measures with the "
            f"qubit-to-clbit mapping {mapping}.",
            f"Prepare a basis state with X gates on {ones} of a {n}-qubit register, and route the "
            f"measurements to permuted classical bits: {mapping}.",
        ], f"Name the circuit `qc`, with a quantum register of {n} qubits and one classical register of {n} bits "
           "named \"c\"."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", "\n".join(measures), "\n".join(swapped)),
            drop_line(reference, "missing_step", flips[0]),
            mutate(reference, "wrong_gate", flips[0], flips[0].replace("qc.x", "qc.h")),
        ],
        features={"num_qubits": n, "gate_count": len(flips) + n, "concepts": ["measurement", "clbit mapping"]},
    )


@template("x_basis_measurement", area=AREA)
def x_basis_measurement(rng: random.Random) -> Draft:
    """|+⟩/|−⟩ product states read out deterministically by measuring in the X basis."""
    n = rng.randint(2, 4)
    while True:
        minus = [rng.random() < 0.5 for _ in range(n)]
        if any(minus) and not all(minus):
            break
    pattern = "".join("-" if m else "+" for m in reversed(minus))
    flips = [f"qc.x({q})" for q in range(n) if minus[q]]
    reference = source(HEADER + _register_lines(n, {"c": n}) + "\n".join(flips) + f"""
qc.h(range({n}))
qc.barrier()
qc.h(range({n}))
qc.measure(range({n}), range({n}))""")
    expected_key = "".join("1" if m else "0" for m in reversed(minus))
    plus_qubit = minus.index(False)
    checks = tests(f"""
        class TestXBasisMeasurement(unittest.TestCase):
            def test_outcome(self):
                outcomes = _register_outcomes(qc, shots=128)
                self.assertEqual([registers["c"] for registers, _ in outcomes], [{expected_key!r}])
        """, REGISTER_OUTCOMES)
    states = ", ".join(f"qubit {q}: |{'−' if minus[q] else '+'}⟩" for q in range(n))
    return Draft(
        prompts=prompts([
            f"Prepare the {n}-qubit product state {states}, then measure every qubit in the X basis "
            "(outcome 0 for |+⟩, 1 for |−⟩), qubit q into classical bit q.",
            f"Write a Qiskit circuit that puts qubits into |+⟩ or |−⟩ according to the pattern {pattern} "
            "(rightmost character is qubit 0) and then measures all of them in the Hadamard (X) basis, "
            "qubit q into bit q, so that |−⟩ reads 1.",
            f"Build a circuit on {n} qubits where {states}; read each qubit out in the X basis into the "
            "classical bit with the same index (|+⟩ → 0, |−⟩ → 1).",
        ], f"Name the circuit `qc`, with one quantum register of {n} qubits and one classical register of {n} "
           "bits named \"c\"."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", f"qc.h(range({n}))"),
            mutate(reference, "wrong_gate", flips[0], flips[0].replace("qc.x", "qc.z")),
            mutate(reference, "wrong_qubit", flips[0], f"qc.x({plus_qubit})"),
        ],
        features={"num_qubits": n, "gate_count": len(flips) + 3 * n, "concepts": ["measurement", "basis change"]},
    )


@template("conditional_flip", area=AREA)
def conditional_flip(rng: random.Random) -> Draft:
    """Measure a qubit in superposition and flip another one when the bit has a given value."""
    n = rng.randint(2, 3)
    control, target = choose(rng, range(n), 2)
    value = rng.randint(0, 1)
    reference = source(HEADER + f"""
qr = QuantumRegister({n}, "q")
cr = ClassicalRegister({n}, "c")
qc = QuantumCircuit(qr, cr)
qc.h({control})
qc.measure({control}, {control})
with qc.if_test((cr[{control}], {value})):
    qc.x({target})
qc.measure({target}, {target})""")
    expected = set()
    for measured in (0, 1):
        key = ["0"] * n
        key[n - 1 - control] = str(measured)
        key[n - 1 - target] = "1" if measured == value else "0"
        expected.add("".join(key))
    expected_set = "{" + ", ".join(repr(key) for key in sorted(expected)) + "}"
    checks = tests(f"""
        class TestConditionalFlip(unittest.TestCase):
            def test_outcomes(self):
                outcomes = _register_outcomes(qc, shots=512)
                self.assertEqual({{registers["c"] for registers, _ in outcomes}}, {expected_set})
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"Put qubit {control} of a {n}-qubit circuit in superposition with H and measure it into classical "
            f"bit {control}. If that bit is {value}, apply X to qubit {target} (use if_test). Finally measure "
            f"qubit {target} into bit {target}.",
            f"Write a dynamic circuit: H on qubit {control}, mid-circuit measurement of qubit {control} into "
            f"clbit {control}, then a classically controlled X on qubit {target} that fires when the clbit equals "
            f"{value}, then measure qubit {target} into clbit {target}. {n} qubits in total.",
            f"Using QuantumCircuit.if_test, make qubit {target} flip exactly when the measured value of qubit "
            f"{control} (after a Hadamard) is {value}. Store the measurement of qubit {control} in bit "
            f"{control} and of qubit {target} in bit {target}; the circuit has {n} qubits.",
        ], f"Name the circuit `qc`, with a quantum register of {n} qubits and one classical register of {n} "
           "bits named \"c\"; leave the other classical bits unused."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"(cr[{control}], {value})", f"(cr[{control}], {1 - value})"),
            mutate(reference, "wrong_qubit", f"    qc.x({target})", f"    qc.x({control})"),
            drop_line(reference, "missing_step", f"qc.measure({target}, {target})"),
        ],
        features={"num_qubits": n, "gate_count": 4, "concepts": ["measurement", "if_test"]},
    )


@template("if_else_branches", area=AREA)
def if_else_branches(rng: random.Random) -> Draft:
    """An if/else on a measured bit, with different gates in each branch; checked statistically."""
    n = rng.randint(2, 3)
    control, target = choose(rng, range(n), 2)
    theta = pick_float(rng, 1.1, 2.0)
    then_gate, else_gate = rng.choice([("x", "h"), ("h", "x")])
    reference = source(HEADER + f"""
qr = QuantumRegister({n}, "q")
cr = ClassicalRegister({n}, "c")
qc = QuantumCircuit(qr, cr)
qc.ry({theta}, {control})
qc.measure({control}, {control})
with qc.if_test((cr[{control}], 1)) as else_:
    qc.{then_gate}({target})
with else_:
    qc.{else_gate}({target})
qc.measure({target}, {target})""")
    p_one = math.sin(theta / 2) ** 2
    expected: dict[str, float] = {}
    for measured, weight, gate in ((1, p_one, then_gate), (0, 1 - p_one, else_gate)):
        for result, share in (((1, 1.0),) if gate == "x" else ((0, 0.5), (1, 0.5))):
            key = ["0"] * n
            key[n - 1 - control], key[n - 1 - target] = str(measured), str(result)
            expected["".join(key)] = round(weight * share, 6)
    checks = tests(f"""
        class TestIfElse(unittest.TestCase):
            def test_distribution(self):
                outcomes = _register_outcomes(qc, shots=2048)
                expected = {expected!r}
                for key in set(expected) | {{registers["c"] for registers, _ in outcomes}}:
                    frequency = _register_frequency(outcomes, lambda registers: registers["c"] == key)
                    self.assertAlmostEqual(frequency, expected.get(key, 0.0), delta=0.06, msg=key)
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"On {n} qubits, apply RY({theta}) to qubit {control} and measure it into clbit {control}. If the "
            f"result is 1 apply {then_gate.upper()} to qubit {target}, otherwise apply {else_gate.upper()} to it. "
            f"Then measure qubit {target} into clbit {target}.",
            f"Write a Qiskit circuit with an if/else on a mid-circuit measurement: RY({theta}) on qubit {control}, "
            f"measure it to bit {control}; when the bit is 1 do {then_gate.upper()} on qubit {target}, else "
            f"{else_gate.upper()} on qubit {target}; finally measure qubit {target} to bit {target}.",
            f"Build a {n}-qubit dynamic circuit using if_test with an else branch: the outcome of qubit {control} "
            f"(rotated by RY({theta}), stored in bit {control}) decides whether qubit {target} gets "
            f"{then_gate.upper()} (outcome 1) or {else_gate.upper()} (outcome 0). Measure qubit {target} into "
            f"bit {target}.",
        ], f"Name the circuit `qc`, with a quantum register of {n} qubits and one classical register of {n} "
           "bits named \"c\"."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", f"with else_:\n    qc.{else_gate}({target})\n", ""),
            mutate(reference, "wrong_gate", f"    qc.{else_gate}({target})", f"    qc.z({target})"),
            mutate(reference, "wrong_parameter", f"(cr[{control}], 1)", f"(cr[{control}], 0)"),
        ],
        features={"num_qubits": n, "gate_count": 5, "concepts": ["measurement", "if_test", "else branch"]},
    )


@template("register_condition", area=AREA)
def register_condition(rng: random.Random) -> Draft:
    """A condition on the integer value of a whole classical register."""
    width = rng.randint(2, 3)
    n = width + 1
    value = rng.randrange(2 ** width)
    reference = source(HEADER + f"""
m = ClassicalRegister({width}, "m")
flag = ClassicalRegister(1, "flag")
qc = QuantumCircuit(QuantumRegister({n}, "q"), m, flag)
qc.h(range({width}))
qc.measure(range({width}), m)
with qc.if_test((m, {value})):
    qc.x({width})
qc.measure({width}, flag[0])""")
    checks = tests(f"""
        class TestRegisterCondition(unittest.TestCase):
            def test_flag_marks_value(self):
                outcomes = _register_outcomes(qc, shots=512)
                self.assertEqual(len(outcomes), {2 ** width})
                for registers, _ in outcomes:
                    self.assertEqual(registers["flag"], "1" if int(registers["m"], 2) == {value} else "0")
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"Put qubits 0..{width - 1} in uniform superposition and measure them into a {width}-bit classical "
            f"register named \"m\" (qubit i into m[i]). If the register's value equals {value}, flip qubit "
            f"{width}; measure qubit {width} into a 1-bit register named \"flag\".",
            f"Write a {n}-qubit dynamic circuit: Hadamards on qubits 0..{width - 1}, measure them into register "
            f"\"m\" (bit i from qubit i), apply X to qubit {width} only when m == {value} (as an integer), and "
            f"measure qubit {width} into register \"flag\" (1 bit).",
            f"Use QuantumCircuit.if_test on a whole ClassicalRegister: register \"m\" holds the measurements of "
            f"qubits 0..{width - 1} (each after H, qubit i into m[i]); when its value is {value}, X is applied to "
            f"qubit {width}, which is then measured into the 1-bit register \"flag\".",
        ], f"Name the circuit `qc`: {n} qubits and exactly the two classical registers \"m\" and \"flag\"."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"(m, {value})", f"(m, {(value + 1) % 2 ** width})"),
            mutate(reference, "wrong_qubit", f"    qc.x({width})", "    qc.x(0)"),
            drop_line(reference, "missing_step", f"qc.measure({width}, flag[0])"),
        ],
        features={"num_qubits": n, "gate_count": 2 * width + 2, "concepts": ["measurement", "if_test", "registers"]},
    )


BELL_CODES = {"Φ+": (False, False), "Φ-": (False, True), "Ψ+": (True, False), "Ψ-": (True, True)}


@template("bell_measurement", area=AREA)
def bell_measurement(rng: random.Random) -> Draft:
    """Prepare a Bell state and identify it with a Bell-basis measurement."""
    n = rng.randint(2, 3)
    a, b = choose(rng, range(n), 2)
    name = rng.choice(sorted(BELL_CODES))
    flip, phase = BELL_CODES[name]
    prep = [f"qc.h({a})", f"qc.cx({a}, {b})"] + ([f"qc.x({b})"] if flip else []) + ([f"qc.z({a})"] if phase else [])
    reference = source(HEADER + _register_lines(n, {"c": 2}) + "\n".join(prep) + f"""
qc.cx({a}, {b})
qc.h({a})
qc.measure({a}, 0)
qc.measure({b}, 1)""")
    expected_key = f"{int(flip)}{int(phase)}"
    checks = tests(f"""
        class TestBellMeasurement(unittest.TestCase):
            def test_outcome(self):
                outcomes = _register_outcomes(qc, shots=128)
                self.assertEqual([registers["c"] for registers, _ in outcomes], [{expected_key!r}])
        """, REGISTER_OUTCOMES)
    return Draft(
        prompts=prompts([
            f"Prepare the Bell state |{name}⟩ on qubits {a} and {b} of a {n}-qubit circuit, then measure the pair "
            f"in the Bell basis: CNOT from {a} to {b}, H on {a}, and measure qubit {a} into clbit 0 and qubit {b} "
            "into clbit 1.",
            f"Write a Qiskit circuit that creates |{name}⟩ between qubits {a} and {b} and decodes it with a Bell "
            f"measurement (CX {a}->{b}, then H on {a}); qubit {a}'s result goes to bit 0, qubit {b}'s to bit 1.",
            f"Build a {n}-qubit circuit: entangle qubits {a} and {b} into |{name}⟩, undo the entangler with a CNOT "
            f"({a} controls {b}) followed by a Hadamard on {a}, and measure {a} → bit 0, {b} → bit 1.",
        ], f"Name the circuit `qc`, with {n} qubits and one classical register of 2 bits named \"c\"."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", f"qc.h({a})\nqc.measure", "qc.measure"),
            mutate(reference, "wrong_qubit", f"qc.cx({a}, {b})\nqc.h({a})\nqc.measure",
                   f"qc.cx({b}, {a})\nqc.h({a})\nqc.measure"),
            mutate(reference, "wrong_gate", prep[0], f"qc.x({a})"),
        ],
        features={"num_qubits": n, "gate_count": len(prep) + 4, "concepts": ["entanglement", "Bell measurement"]},
    )
