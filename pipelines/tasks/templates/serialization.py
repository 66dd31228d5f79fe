"""Serialization: OpenQASM 2 and 3 export/import and QPY round-trips, checked by loading back."""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import (
    REGISTER_OUTCOMES,
    STEPS_HELPER,
    Step,
    block,
    drop_line,
    moved,
    mutate,
    other_gate,
    prompts,
    random_steps,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "serialization"
QELIB1_FIXED_GATES = ("h", "x", "s", "t")
"""Fixed gates that the original qelib1.inc defines (it lacks ``sx`` and ``swap``)."""


def _described(steps: list[Step]) -> str:
    return "; ".join(step.text for step in steps)


@template("qasm2_export", area=AREA)
def qasm2_export(rng: random.Random) -> Draft:
    """Build a circuit and export it as an OpenQASM 2 string."""
    n = rng.randint(2, 4)
    steps = random_steps(rng, n, rng.randint(3, 5))
    calls = [step.code() for step in steps]
    reference = source(f"from qiskit import QuantumCircuit, qasm2\n\nqc = QuantumCircuit({n})\n"
                       + "\n".join(calls) + "\nqasm_str = qasm2.dumps(qc)\n")
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}


        class TestQasm2Export(unittest.TestCase):
            def test_is_openqasm2(self):
                self.assertIsInstance(qasm_str, str)
                self.assertTrue(qasm_str.lstrip().startswith("OPENQASM 2.0"))

            def test_round_trip(self):
                loaded = QuantumCircuit.from_qasm_str(qasm_str)
                self.assertEqual(loaded.num_qubits, {n})
                self.assertTrue(Operator(loaded).equiv(Operator(_circuit_from({n}, _STEPS))))
        """, STEPS_HELPER)
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit with these gates in order: {_described(steps)}. Export it to an "
            "OpenQASM 2.0 string.",
            f"Write Qiskit code that creates the circuit [{_described(steps)}] on {n} qubits and serializes it "
            "with the OpenQASM 2 exporter.",
            f"Create a QuantumCircuit ({n} qubits: {_described(steps)}) and produce its OpenQASM 2 text.",
        ], "Name the circuit `qc` and the OpenQASM 2 text `qasm_str`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "wrong_qubit", calls[0], moved(steps[0], n, rng).code()),
            mutate(reference, "missing_step", "qasm_str = qasm2.dumps(qc)",
                   "from qiskit import qasm3\nqasm_str = qasm3.dumps(qc)"),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["OpenQASM 2"]},
    )


def _qasm2_text(n: int, steps: list[Step], creg: int = 0) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];"]
    lines += [f"creg c[{creg}];"] if creg else []
    return "\n".join(lines + [step.qasm for step in steps]) + "\n"


@template("qasm2_import", area=AREA)
def qasm2_import(rng: random.Random) -> Draft:
    """Load an OpenQASM 2 program given in the prompt and extend the circuit."""
    n = rng.randint(2, 4)
    steps = random_steps(rng, n, rng.randint(3, 4), fixed_gates=QELIB1_FIXED_GATES,
                         two_qubit_gates=("cx", "cz"))
    extra = Step(rng.choice(["x", "h", "s"]), (), (rng.randrange(n),))
    text = _qasm2_text(n, steps)
    reference = f'from qiskit import qasm2\n\nPROGRAM = """{text}"""\n\nqc = qasm2.loads(PROGRAM)\n{extra.code()}\n'
    checks = tests(f"""
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps + [extra]]!r}


        class TestQasm2Import(unittest.TestCase):
            def test_circuit(self):
                self.assertEqual(qc.num_qubits, {n})
                self.assertTrue(Operator(qc).equiv(Operator(_circuit_from({n}, _STEPS))))
        """, STEPS_HELPER)
    shown = "\n".join("    " + line for line in text.splitlines())
    ending = f"append {extra.text}"
    return Draft(
        prompts=prompts([
            f"Load this OpenQASM 2.0 program into a Qiskit circuit, then {ending}:\n\n{shown}\n",
            f"Parse the following OpenQASM 2 source with Qiskit and, after the loaded gates, {ending}.\n\n{shown}\n",
            f"Here is a circuit in OpenQASM 2:\n\n{shown}\n\nImport it with Qiskit and {ending}.",
        ], "Name the resulting circuit `qc`."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", extra.code()),
            mutate(reference, "wrong_qubit", extra.code(), moved(extra, n, rng).code()),
            mutate(reference, "wrong_gate", steps[0].qasm, other_gate(steps[0], rng, avoid=("sx",)).qasm),
        ],
        features={"num_qubits": n, "gate_count": len(steps) + 1, "concepts": ["OpenQASM 2", "import"]},
    )


@template("qasm3_parameterized", area=AREA)
def qasm3_parameterized(rng: random.Random) -> Draft:
    """Export a circuit with a free Parameter to OpenQASM 3 (it becomes an ``input``)."""
    n = rng.randint(2, 3)
    steps = random_steps(rng, n, rng.randint(2, 4))
    axis, target = rng.choice(["rx", "ry", "rz"]), rng.randrange(n)
    calls = [step.code() for step in steps]
    reference = source(f"from qiskit import QuantumCircuit, qasm3\nfrom qiskit.circuit import Parameter\n\n"
                       f"theta = Parameter(\"theta\")\nqc = QuantumCircuit({n})\n" + "\n".join(calls)
                       + f"\nqc.{axis}(theta, {target})\nprogram = qasm3.dumps(qc)\n")
    checks = tests(f"""
        from qiskit import qasm3
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}


        class TestQasm3Parameterized(unittest.TestCase):
            def test_round_trip(self):
                loaded = qasm3.loads(program)
                self.assertEqual(loaded.num_qubits, {n})
                self.assertEqual([p.name for p in loaded.parameters], ["theta"])
                for value in (0.45, 2.1):
                    expected = _circuit_from({n}, _STEPS + [("{axis}", [value], [{target}])])
                    self.assertTrue(Operator(loaded.assign_parameters([value])).equiv(Operator(expected)))
        """, STEPS_HELPER)
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit: {_described(steps)}; then {axis.upper()}(theta) on qubit {target}, "
            "where theta is a free Parameter named \"theta\". Export it to OpenQASM 3 so that theta becomes an "
            "input of the program.",
            f"Write Qiskit code that serializes a parameterized circuit to OpenQASM 3. The circuit has {n} "
            f"qubits and applies {_described(steps)}, followed by {axis.upper()}(theta) on qubit {target} with "
            "an unbound Parameter \"theta\".",
            f"Create a {n}-qubit QuantumCircuit ({_described(steps)}, then {axis.upper()} by the Parameter "
            f"\"theta\" on qubit {target}) and dump it as OpenQASM 3 text, keeping theta unbound.",
        ], "Name the circuit `qc` and the OpenQASM 3 text `program`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "wrong_parameter", "program = qasm3.dumps(qc)",
                   "program = qasm3.dumps(qc.assign_parameters([0.45]))"),
            drop_line(reference, "missing_step", calls[0]),
        ],
        features={"num_qubits": n, "gate_count": len(steps) + 1, "concepts": ["OpenQASM 3", "Parameter"]},
    )


@template("qpy_roundtrip", area=AREA)
def qpy_roundtrip(rng: random.Random) -> Draft:
    """Serialize two circuits (one parameterized) into QPY bytes."""
    n = rng.randint(2, 3)
    steps = random_steps(rng, n, rng.randint(2, 4))
    axis, target = rng.choice(["rx", "ry"]), rng.randrange(n)
    scale = rng.choice([2, 3])
    calls = [step.code("first") for step in steps]
    reference = source(f"""
        import io

        from qiskit import QuantumCircuit, qpy
        from qiskit.circuit import Parameter

        first = QuantumCircuit({n})
        {block(calls)}

        phi = Parameter("phi")
        second = QuantumCircuit({n})
        second.h(range({n}))
        second.{axis}({scale} * phi, {target})

        buffer = io.BytesIO()
        qpy.dump([first, second], buffer)
        qpy_bytes = buffer.getvalue()
        """)
    checks = tests(f"""
        import io

        from qiskit import QuantumCircuit, qpy
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}


        class TestQpyRoundTrip(unittest.TestCase):
            def setUp(self):
                self.loaded = qpy.load(io.BytesIO(qpy_bytes))

            def test_two_circuits(self):
                self.assertEqual(len(self.loaded), 2)

            def test_first(self):
                self.assertTrue(Operator(self.loaded[0]).equiv(Operator(_circuit_from({n}, _STEPS))))

            def test_second_keeps_parameter(self):
                restored = self.loaded[1]
                self.assertEqual([p.name for p in restored.parameters], ["phi"])
                for value in (0.3, 1.7):
                    expected = QuantumCircuit({n})
                    expected.h(range({n}))
                    expected.{axis}({scale} * value, {target})
                    self.assertTrue(Operator(restored.assign_parameters([value])).equiv(Operator(expected)))
        """, STEPS_HELPER)
    return Draft(
        prompts=prompts([
            f"Create two {n}-qubit circuits: the first applies {_described(steps)}; the second applies H to "
            f"every qubit and then {axis.upper()}({scale}·phi) on qubit {target}, with phi an unbound Parameter "
            "named \"phi\". Serialize both, in this order, into one QPY payload.",
            f"Write Qiskit code that writes a list of two circuits to QPY in memory. Circuit 1 ({n} qubits): "
            f"{_described(steps)}. Circuit 2 ({n} qubits): Hadamards on all qubits, then "
            f"{axis.upper()}({scale}*phi) on qubit {target} with a free Parameter \"phi\".",
            f"Using qiskit.qpy, serialize [first, second] to bytes, where first = {_described(steps)} on {n} "
            f"qubits and second = H on all {n} qubits followed by {axis.upper()}({scale}·phi) on qubit {target} "
            "(Parameter \"phi\" left unbound).",
        ], "Name the circuits `first` and `second` and the serialized bytes `qpy_bytes` (a bytes object, as "
           "qpy.dump writes it). Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", "qpy.dump([first, second], buffer)", "qpy.dump(first, buffer)"),
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code("first")),
            mutate(reference, "wrong_parameter", f"second.{axis}({scale} * phi, {target})",
                   f"second.{axis}({scale + 1} * phi, {target})"),
        ],
        features={"num_qubits": n, "gate_count": len(steps) + n + 1, "concepts": ["QPY", "Parameter"]},
    )


@template("qasm2_program_text", area=AREA)
def qasm2_program_text(rng: random.Random) -> Draft:
    """Write OpenQASM 2 source by hand: a GHZ state with one flipped qubit, measured."""
    n = rng.randint(3, 5)  # with 2 qubits, flipping either qubit gives the same pair of outcomes
    flipped = rng.randrange(n)
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];", f"creg c[{n}];", "h q[0];"]
    lines += [f"cx q[{q - 1}],q[{q}];" for q in range(1, n)] + [f"x q[{flipped}];", "measure q -> c;"]
    reference = 'program = """' + "\n".join(lines) + '\n"""\n'
    pattern = "".join("1" if q == flipped else "0" for q in reversed(range(n)))
    complement = "".join("0" if bit == "1" else "1" for bit in pattern)
    checks = tests(f"""
        from qiskit import QuantumCircuit


        class TestQasm2Program(unittest.TestCase):
            def test_outcomes(self):
                circuit = QuantumCircuit.from_qasm_str(program)
                self.assertEqual(circuit.num_qubits, {n})
                outcomes = _register_outcomes(circuit, shots=256)
                keys = {{"".join(registers.values()) for registers, _ in outcomes}}
                self.assertEqual(keys, {{{pattern!r}, {complement!r}}})
        """, REGISTER_OUTCOMES)
    wrong_target = (flipped + 1) % n
    return Draft(
        prompts=prompts([
            f"Write an OpenQASM 2.0 program (using qelib1.inc) with qreg q[{n}] and creg c[{n}] that prepares "
            f"the GHZ state on all {n} qubits, then applies X to q[{flipped}], and measures q into c.",
            f"As a Python string, give the OpenQASM 2 source of a {n}-qubit circuit: GHZ preparation "
            f"(H then a CNOT chain), an extra X gate on qubit {flipped}, and a measurement of every qubit q[i] "
            f"into c[i] (creg c[{n}]).",
            f"Produce OpenQASM 2.0 text for this experiment: {n} qubits entangled in a GHZ state, qubit {flipped} "
            f"flipped afterwards, all qubits measured into a {n}-bit classical register c (q[i] → c[i]).",
        ], "Store the OpenQASM 2 text in a Python string variable named `program`."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", lines[5]),
            mutate(reference, "wrong_qubit", f"x q[{flipped}];", f"x q[{wrong_target}];"),
            mutate(reference, "wrong_gate", "h q[0];", "x q[0];"),
        ],
        features={"num_qubits": n, "gate_count": 2 * n + 1, "concepts": ["OpenQASM 2", "measurement"]},
    )
