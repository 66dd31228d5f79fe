"""Parameterized circuits: Parameter, ParameterVector, expressions, binding, inverses and sweeps."""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import choose, drop_line, mutate, pick_float, prompts, source, tests
from pipelines.tasks.templates.registry import Draft, template

AREA = "parameters"

NAME_PAIRS = (("alpha", "beta"), ("a", "b"), ("theta", "phi"), ("x", "y"))


@template("bind_parameters", area=AREA)
def bind_parameters(rng: random.Random) -> Draft:
    """Two named Parameters, bound to numbers with assign_parameters."""
    n = rng.randint(2, 3)
    first, second = rng.choice(NAME_PAIRS)
    i, j = choose(rng, range(n), 2)
    gate = rng.choice(["ry", "rx"])
    values = (pick_float(rng, 0.2, 2.9), pick_float(rng, -2.9, -0.2))
    bind_line = f"bound = qc.assign_parameters({{{first}: {values[0]}, {second}: {values[1]}}})"
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter

        {first} = Parameter("{first}")
        {second} = Parameter("{second}")
        qc = QuantumCircuit({n})
        qc.{gate}({first}, {i})
        qc.cx({i}, {j})
        qc.rz({second}, {j})
        {bind_line}
        """)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Operator


        def _expected(first, second):
            circuit = QuantumCircuit({n})
            circuit.{gate}(first, {i})
            circuit.cx({i}, {j})
            circuit.rz(second, {j})
            return Operator(circuit)


        class TestBindParameters(unittest.TestCase):
            def test_parameters(self):
                self.assertEqual(sorted(p.name for p in qc.parameters), sorted([{first!r}, {second!r}]))

            def test_template_for_any_values(self):
                for values in ((0.3, 1.1), (2.0, -0.7)):
                    named = dict(zip(({first!r}, {second!r}), values))
                    circuit = qc.assign_parameters({{p: named[p.name] for p in qc.parameters}})
                    self.assertTrue(Operator(circuit).equiv(_expected(*values)))

            def test_bound(self):
                self.assertEqual(bound.num_parameters, 0)
                self.assertTrue(Operator(bound).equiv(_expected({values[0]}, {values[1]})))
        """)
    return Draft(
        prompts=prompts([
            f"Create two Parameters named \"{first}\" and \"{second}\" and a {n}-qubit circuit that applies "
            f"{gate.upper()}({first}) on qubit {i}, a CNOT from qubit {i} to qubit {j} and RZ({second}) on qubit {j}. "
            f"Then bind {first} = {values[0]} and {second} = {values[1]}.",
            f"Write a parameterized Qiskit circuit on {n} qubits: {gate.upper()}({first}) on qubit {i}, CX({i}, {j}), "
            f"RZ({second}) on qubit {j}, with Parameter objects named \"{first}\" and \"{second}\". Produce a copy "
            f"with {first}={values[0]}, {second}={values[1]} assigned.",
            f"Using qiskit.circuit.Parameter, build a template circuit ({n} qubits; {gate.upper()}({first}) on "
            f"{i}, CNOT {i}->{j}, RZ({second}) on {j}) and assign the values {values[0]} and {values[1]} to "
            f"\"{first}\" and \"{second}\".",
        ], "Name the parameterized circuit `qc` (it must keep its two free parameters) and the bound circuit "
           "`bound`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", bind_line,
                   f"bound = qc.assign_parameters({{{first}: {values[1]}, {second}: {values[0]}}})"),
            mutate(reference, "wrong_gate", f"qc.{gate}({first}, {i})",
                   f"qc.{'rx' if gate == 'ry' else 'ry'}({first}, {i})"),
            mutate(reference, "missing_step", bind_line, "bound = qc.copy()"),
        ],
        features={"num_qubits": n, "gate_count": 3, "concepts": ["Parameter", "assign_parameters"]},
    )


@template("parameter_vector_ansatz", area=AREA)
def parameter_vector_ansatz(rng: random.Random) -> Draft:
    """Rotation layer, CNOT entangler, rotation layer, with one ParameterVector."""
    n = rng.randint(3, 5)
    gate = rng.choice(["ry", "rx"])
    circular = rng.random() < 0.5
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import ParameterVector

        theta = ParameterVector("theta", {2 * n})
        qc = QuantumCircuit({n})
        for q in range({n}):
            qc.{gate}(theta[q], q)
        for q in range({n - 1}):
            qc.cx(q, q + 1)
        {f"qc.cx({n - 1}, 0)" if circular else ""}
        for q in range({n}):
            qc.ry(theta[{n} + q], q)
        """)
    samples = [[pick_float(rng, -3.1, 3.1) for _ in range(2 * n)] for _ in range(2)]
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Statevector


        def _expected(values):
            circuit = QuantumCircuit({n})
            for q in range({n}):
                circuit.{gate}(values[q], q)
            for q in range({n - 1}):
                circuit.cx(q, q + 1)
            if {circular}:
                circuit.cx({n - 1}, 0)
            for q in range({n}):
                circuit.ry(values[{n} + q], q)
            return Statevector(circuit)


        def _index(parameter):
            return int(parameter.name.split("[")[1].rstrip("]"))


        class TestParameterVectorAnsatz(unittest.TestCase):
            def test_parameter_count(self):
                self.assertEqual(qc.num_qubits, {n})
                self.assertEqual(qc.num_parameters, {2 * n})

            def test_states(self):
                for values in {samples!r}:
                    bound = qc.assign_parameters({{p: values[_index(p)] for p in qc.parameters}})
                    self.assertTrue(Statevector(bound).equiv(_expected(values)))
        """)
    entangler = (f"a ring of CNOTs (q → q+1 for q = 0..{n - 2}, then {n - 1} → 0)" if circular
                 else f"a chain of CNOTs from qubit q to q+1 for q = 0..{n - 2}")
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit ansatz with a ParameterVector named \"theta\" of length {2 * n}: "
            f"{gate.upper()}(theta[q]) on every qubit q, then {entangler}, then RY(theta[{n} + q]) on every qubit q.",
            f"Write a hardware-efficient ansatz in Qiskit on {n} qubits. Layer 1: {gate.upper()} rotations with "
            f"angles theta[0..{n - 1}] on qubits 0..{n - 1}. Entangler: {entangler}. Layer 2: RY rotations with "
            f"theta[{n}..{2 * n - 1}] on qubits 0..{n - 1}. Use ParameterVector(\"theta\", {2 * n}).",
            f"Using qiskit.circuit.ParameterVector(\"theta\", {2 * n}), create a circuit where qubit q first gets "
            f"{gate.upper()}(theta[q]), then the qubits are entangled by {entangler}, and finally qubit q gets "
            f"RY(theta[{n} + q]).",
        ], "Store the unbound circuit in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"qc.{gate}(theta[q], q)", f"qc.{gate}(theta[q], {n - 1} - q)"),
            mutate(reference, "wrong_gate", f"qc.{gate}(theta[q], q)", "qc.rz(theta[q], q)"),
            mutate(reference, "missing_step", f"for q in range({n - 1}):\n    qc.cx",
                   f"for q in range({n - 2}):\n    qc.cx"),
        ],
        features={"num_qubits": n, "gate_count": 3 * n - 1 + circular,
                  "concepts": ["ParameterVector", "ansatz", "entanglement"], "circular": circular},
    )


EXPRESSIONS = ("{k} * t", "t + {c}", "t / {k}", "-t")
EXPRESSION_GATES = {"rz": 1, "rx": 1, "ry": 1, "crx": 2, "cry": 2}


def _expression(rng: random.Random) -> str:
    return rng.choice(EXPRESSIONS).format(k=rng.randint(2, 3), c=pick_float(rng, 0.3, 1.5, 1))


@template("parameter_expression", area=AREA)
def parameter_expression(rng: random.Random) -> Draft:
    """One Parameter used in several gates through arithmetic expressions."""
    n = rng.randint(2, 3)
    steps = []
    for _ in range(rng.randint(2, 3)):
        gate = rng.choice(sorted(EXPRESSION_GATES))
        steps.append((gate, _expression(rng), choose(rng, range(n), EXPRESSION_GATES[gate])))
    calls = [f"qc.{gate}({expr}, {', '.join(map(str, qubits))})" for gate, expr, qubits in steps]
    reference = source(f"from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter\n\n"
                       f"t = Parameter(\"t\")\nqc = QuantumCircuit({n})\n" + "\n".join(calls))
    described = "; ".join(f"{gate.upper()}({expr.replace(' ', '')}) on {'qubits' if len(qs) > 1 else 'qubit'} "
                          f"{', '.join(map(str, qs))}" for gate, expr, qs in steps)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Operator


        def _expected(value):
            circuit = QuantumCircuit({n})
            for gate, expression, qubits in {steps!r}:
                getattr(circuit, gate)(eval(expression, {{"t": value}}), *qubits)
            return Operator(circuit)


        class TestParameterExpression(unittest.TestCase):
            def test_single_parameter(self):
                self.assertEqual([p.name for p in qc.parameters], ["t"])

            def test_values(self):
                for value in (0.37, 1.9, -2.4):
                    self.assertTrue(Operator(qc.assign_parameters([value])).equiv(_expected(value)))
        """)
    gate, expr, qubits = steps[0]
    wrong_expr = expr.replace("t", "(t + 0.25)", 1) if expr != "-t" else "t"
    moved = [(q + 1) % n for q in qubits]
    return Draft(
        prompts=prompts([
            f"Create a Parameter named \"t\" and a {n}-qubit circuit applying, in order: {described} "
            "(controlled gates list the control first).",
            f"Write a Qiskit circuit on {n} qubits with a single free Parameter \"t\" that is used through "
            f"expressions: {described} (control qubit first).",
            f"With qiskit.circuit.Parameter(\"t\"), build a {n}-qubit QuantumCircuit containing {described}, "
            "where the first qubit of a controlled gate is its control.",
        ], "Store the circuit, with `t` still unbound, in a variable named `qc`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", calls[0], f"qc.{gate}({wrong_expr}, {', '.join(map(str, qubits))})"),
            mutate(reference, "wrong_qubit", calls[0], f"qc.{gate}({expr}, {', '.join(map(str, moved))})"),
            drop_line(reference, "missing_step", calls[-1]),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["Parameter", "ParameterExpression"]},
    )


@template("ramsey_sweep", area=AREA)
def ramsey_sweep(rng: random.Random) -> Draft:
    """A Ramsey sequence H-P(φ)-H, swept over φ; the probabilities of reading 1."""
    n = rng.randint(1, 3)
    target = rng.randrange(n)
    phis = sorted({pick_float(rng, 0.1, 6.2) for _ in range(rng.randint(3, 5))})
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.quantum_info import Statevector

        phi = Parameter("phi")
        qc = QuantumCircuit({n})
        qc.h({target})
        qc.p(phi, {target})
        qc.h({target})

        probabilities = []
        for value in {phis!r}:
            state = Statevector(qc.assign_parameters([value]))
            probabilities.append(float(state.probabilities([{target}])[1]))
        """)
    checks = tests(f"""
        from qiskit.quantum_info import Statevector


        class TestRamseySweep(unittest.TestCase):
            def test_circuit(self):
                self.assertEqual(qc.num_qubits, {n})
                self.assertEqual(qc.num_parameters, 1)
                for value in (0.5, 2.5):
                    state = Statevector(qc.assign_parameters([value]))
                    self.assertAlmostEqual(state.probabilities([{target}])[1], np.sin(value / 2) ** 2, places=7)

            def test_probabilities(self):
                expected = np.sin(np.array({phis!r}) / 2) ** 2
                self.assertEqual(len(probabilities), {len(phis)})
                np.testing.assert_allclose(np.asarray(probabilities, dtype=float), expected, atol=1e-7)
        """)
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit Ramsey circuit on qubit {target}: H, then a phase gate P(phi) with a Parameter "
            f"\"phi\", then H. Compute, for phi in {phis}, the exact probability that qubit {target} reads 1.",
            f"Write a parameterized Qiskit circuit ({n} qubits) that applies H, P(phi), H to qubit {target}, and "
            f"sweep phi over the values {phis}, recording the probability of outcome 1 on qubit {target} "
            "(exact, from the statevector).",
            f"Using a Parameter named \"phi\", make the interferometer H · P(phi) · H on qubit {target} of a "
            f"{n}-qubit circuit. For each phi in {phis} (in this order) compute P(qubit {target} = 1) exactly.",
        ], "Name the unbound circuit `qc` and the list of probabilities (floats, one per phi, same order) "
           "`probabilities`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", f"qc.h({target})\n\nprobabilities", "\nprobabilities"),
            mutate(reference, "wrong_parameter", f"qc.p(phi, {target})", f"qc.p(2 * phi, {target})"),
            mutate(reference, "wrong_gate", f"qc.p(phi, {target})", f"qc.rx(phi, {target})"),
        ],
        features={"num_qubits": n, "gate_count": 3, "concepts": ["Parameter", "parameter sweep", "Statevector"]},
    )


@template("parameterized_inverse", area=AREA)
def parameterized_inverse(rng: random.Random) -> Draft:
    """A parameterized circuit and its inverse, which must keep the same free parameters."""
    n = rng.randint(2, 3)
    i, j = choose(rng, range(n), 2)
    first_gate, second_gate = rng.choice([("ry", "rz"), ("rx", "ry"), ("ry", "rx")])
    lines = [f"qc.{first_gate}(a, {i})", f"qc.cx({i}, {j})", f"qc.{second_gate}(b, {j})", f"qc.s({i})"]
    reference = source(f"from qiskit import QuantumCircuit\nfrom qiskit.circuit import Parameter\n\n"
                       f"a = Parameter(\"a\")\nb = Parameter(\"b\")\nqc = QuantumCircuit({n})\n"
                       + "\n".join(lines) + "\nqc_inverse = qc.inverse()\n")
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Operator


        def _forward(alpha, beta):
            circuit = QuantumCircuit({n})
            circuit.{first_gate}(alpha, {i})
            circuit.cx({i}, {j})
            circuit.{second_gate}(beta, {j})
            circuit.s({i})
            return Operator(circuit)


        def _bind(circuit, alpha, beta):
            return circuit.assign_parameters({{p: {{"a": alpha, "b": beta}}[p.name] for p in circuit.parameters}})


        class TestParameterizedInverse(unittest.TestCase):
            def test_parameters_kept(self):
                self.assertEqual(sorted(p.name for p in qc.parameters), ["a", "b"])
                self.assertEqual(sorted(p.name for p in qc_inverse.parameters), ["a", "b"])

            def test_forward(self):
                self.assertTrue(Operator(_bind(qc, 0.4, -1.3)).equiv(_forward(0.4, -1.3)))

            def test_inverse(self):
                for alpha, beta in ((0.4, -1.3), (2.2, 0.9)):
                    self.assertTrue(Operator(_bind(qc_inverse, alpha, beta)).equiv(_forward(alpha, beta).adjoint()))
        """)
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit with Parameters \"a\" and \"b\": {first_gate.upper()}(a) on qubit {i}, "
            f"CNOT {i}->{j}, {second_gate.upper()}(b) on qubit {j}, S on qubit {i}. Also build its inverse, "
            "still parameterized by a and b.",
            f"Write Qiskit code for the parameterized circuit U(a, b) = S(q{i}) · {second_gate.upper()}(b, q{j}) · "
            f"CX(q{i} → q{j}) · {first_gate.upper()}(a, q{i}) (rightmost factor applied first) on {n} qubits, and for U(a, b)† "
            "with the same free parameters.",
            f"Create a parameterized circuit on {n} qubits (apply {first_gate.upper()}(a) to qubit {i}, then CX "
            f"from {i} to {j}, then {second_gate.upper()}(b) to qubit {j}, then S to qubit {i}) and the circuit "
            "that undoes it for any values of the Parameters \"a\" and \"b\".",
        ], "Name the circuit `qc` and its inverse `qc_inverse`; both keep `a` and `b` unbound. Do not add "
           "measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", "qc_inverse = qc.inverse()", "qc_inverse = qc.copy()"),
            mutate(reference, "wrong_gate", f"qc.s({i})", f"qc.sdg({i})"),
            mutate(reference, "wrong_qubit", lines[0], f"qc.{first_gate}(a, {j})"),
        ],
        features={"num_qubits": n, "gate_count": 4, "concepts": ["Parameter", "inverse"]},
    )
