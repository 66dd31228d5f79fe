"""Transpilation: basis translation, preset pass managers on fake backends, layouts, routing, optimization.

Tests compare unitaries with ``Operator.from_circuit``, which undoes the layout and routing
permutations the transpiler recorded (even without a coupling map, levels 2-3 may elide a final
SWAP into the layout), so any valid compilation passes.
"""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import (
    STEPS_HELPER,
    Step,
    block,
    choose,
    moved,
    mutate,
    other_gate,
    pick_float,
    prompts,
    random_steps,
    source,
    tests,
)
from pipelines.tasks.templates.registry import Draft, template

AREA = "transpilation"
FAKE_BACKENDS = ("FakeManilaV2", "FakeLimaV2", "FakeBelemV2", "FakeQuitoV2")
"""Small (5-qubit) fake backends: fast to build and to simulate."""

BASIS_SETS = (("rz", "sx", "x", "cx"), ("u", "cx"), ("rx", "ry", "rz", "cz"))

MATCHES_ON_BACKEND = '''
def _assert_runs_on(case, circuit, device):
    """Every instruction is one the device's target supports on exactly those physical qubits."""
    target = device.target
    for instruction in circuit.data:
        name = instruction.operation.name
        if name == "barrier":
            continue
        qargs = tuple(circuit.find_bit(qubit).index for qubit in instruction.qubits)
        case.assertTrue(target.instruction_supported(name, qargs), f"{name} on {qargs}")


def _same_unitary(compiled, logical):
    """True when the compiled circuit (with its layout and routing) implements the logical one."""
    from qiskit.quantum_info import Operator
    extra = compiled.num_qubits - logical.num_qubits
    expected = Operator(logical)
    if extra:
        expected = Operator(np.eye(2 ** extra)).tensor(expected)
    return Operator.from_circuit(compiled).equiv(expected)
'''


def _logical_steps(rng: random.Random, n: int) -> list[Step]:
    """A random circuit that always entangles, so that two-qubit gates need placing."""
    steps = random_steps(rng, n, rng.randint(3, 5))
    pair = tuple(rng.sample(range(n), 2))
    return steps + [Step("cx", (), pair)]


def _described(steps: list[Step]) -> str:
    return "; ".join(step.text for step in steps)


@template("transpile_to_basis", area=AREA)
def transpile_to_basis(rng: random.Random) -> Draft:
    """Rewrite a circuit (with a Toffoli or controlled phase) into a given basis, no coupling map."""
    n = rng.randint(3, 4)
    steps = _logical_steps(rng, n)
    controls = rng.sample(range(n), 3)
    extra = rng.choice([Step("ccx", (), tuple(controls)), Step("cp", (pick_float(rng, 0.3, 2.5),), tuple(controls[:2]))])
    steps = steps + [extra]
    basis = list(rng.choice(BASIS_SETS))
    level = rng.randint(0, 3)
    calls = [step.code() for step in steps]
    compile_line = f"transpiled = transpile(qc, basis_gates={basis!r}, optimization_level={level})"
    reference = source(f"from qiskit import QuantumCircuit, transpile\n\nqc = QuantumCircuit({n})\n"
                       + "\n".join(calls + [compile_line]))
    wrong_basis = [("cz" if g == "cx" else "cx" if g == "cz" else g) for g in basis]
    checks = tests(f"""
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}


        class TestTranspileToBasis(unittest.TestCase):
            def test_only_basis_gates(self):
                self.assertLessEqual(set(transpiled.count_ops()), set({basis!r}) | {{"barrier"}})

            def test_same_unitary(self):
                self.assertEqual(transpiled.num_qubits, {n})
                self.assertTrue(Operator.from_circuit(transpiled).equiv(Operator(_circuit_from({n}, _STEPS))))
        """, STEPS_HELPER)
    return Draft(
        prompts=prompts([
            f"Build the {n}-qubit circuit [{_described(steps)}] and transpile it to the basis gates {basis} with "
            f"optimization level {level} (no coupling map).",
            f"Write Qiskit code that constructs a circuit on {n} qubits ({_described(steps)}) and rewrites it "
            f"using only the gates {', '.join(basis)}, via transpile at optimization_level={level}.",
            f"Compile the following {n}-qubit circuit to the native gate set {basis} (optimization level {level}, "
            f"all-to-all connectivity): {_described(steps)}.",
        ], "Name the original circuit `qc` and the result `transpiled`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", f"basis_gates={basis!r}", f"basis_gates={wrong_basis!r}"),
            mutate(reference, "missing_step", compile_line, "transpiled = qc.copy()"),
            mutate(reference, "wrong_qubit", calls[0], moved(steps[0], n, rng).code()),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["transpile", "basis gates"]},
    )


@template("preset_pass_manager", area=AREA)
def preset_pass_manager(rng: random.Random) -> Draft:
    """generate_preset_pass_manager for a fake backend, producing an ISA circuit."""
    n = rng.randint(3, 4)
    backend = rng.choice(FAKE_BACKENDS)
    level = rng.randint(1, 3)
    seed = rng.randint(1, 999)
    steps = _logical_steps(rng, n)
    calls = [step.code() for step in steps]
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        qc = QuantumCircuit({n})
        {block(calls)}
        pass_manager = generate_preset_pass_manager(optimization_level={level}, backend=backend, seed_transpiler={seed})
        isa_circuit = pass_manager.run(qc)
        """)
    checks = tests(f"""
        from qiskit_ibm_runtime import fake_provider

        _STEPS = {[step.spec for step in steps]!r}


        class TestPresetPassManager(unittest.TestCase):
            def test_isa(self):
                _assert_runs_on(self, isa_circuit, fake_provider.{backend}())

            def test_same_unitary(self):
                self.assertTrue(_same_unitary(isa_circuit, _circuit_from({n}, _STEPS)))
        """, STEPS_HELPER + MATCHES_ON_BACKEND)
    return Draft(
        prompts=prompts([
            f"Create the {n}-qubit circuit [{_described(steps)}] and compile it for the fake backend {backend} "
            f"(qiskit_ibm_runtime.fake_provider) with a preset pass manager at optimization level {level} and "
            f"seed_transpiler={seed}.",
            f"Write Qiskit code that turns the circuit ({n} qubits: {_described(steps)}) into an ISA circuit for "
            f"{backend}() using generate_preset_pass_manager(optimization_level={level}, seed_transpiler={seed}).",
            f"Use a preset staged pass manager (level {level}, seed {seed}) targeting the fake device {backend} "
            f"to compile this {n}-qubit circuit: {_described(steps)}.",
        ], "Name the backend `backend`, the logical circuit `qc`, the pass manager `pass_manager` and the "
           "compiled circuit `isa_circuit`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", "isa_circuit = pass_manager.run(qc)", "isa_circuit = qc"),
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "wrong_qubit", calls[0], moved(steps[0], n, rng).code()),
        ],
        features={"num_qubits": n, "gate_count": len(steps),
                  "concepts": ["transpile", "preset pass manager", "fake backend"], "backend": backend},
    )


@template("initial_layout", area=AREA)
def initial_layout(rng: random.Random) -> Draft:
    """Transpile onto a fake backend with a prescribed virtual -> physical initial layout."""
    n = rng.randint(2, 4)
    backend = rng.choice(FAKE_BACKENDS)
    layout = choose(rng, range(5), n)
    seed = rng.randint(1, 999)
    steps = _logical_steps(rng, n)
    calls = [step.code() for step in steps]
    reference = source(f"""
        from qiskit import QuantumCircuit, transpile
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        qc = QuantumCircuit({n})
        {block(calls)}
        transpiled = transpile(qc, backend=backend, initial_layout={layout!r}, optimization_level=1, seed_transpiler={seed})
        """)
    checks = tests(f"""
        from qiskit_ibm_runtime import fake_provider

        _STEPS = {[step.spec for step in steps]!r}


        class TestInitialLayout(unittest.TestCase):
            def test_layout(self):
                self.assertEqual(list(transpiled.layout.initial_index_layout(filter_ancillas=True)), {layout!r})

            def test_isa(self):
                _assert_runs_on(self, transpiled, fake_provider.{backend}())

            def test_same_unitary(self):
                self.assertTrue(_same_unitary(transpiled, _circuit_from({n}, _STEPS)))
        """, STEPS_HELPER + MATCHES_ON_BACKEND)
    placement = ", ".join(f"virtual qubit {v} on physical qubit {p}" for v, p in enumerate(layout))
    return Draft(
        prompts=prompts([
            f"Transpile the {n}-qubit circuit [{_described(steps)}] for {backend} (from "
            f"qiskit_ibm_runtime.fake_provider) with the initial layout {placement}; use optimization level 1 and "
            f"seed_transpiler={seed}.",
            f"Write Qiskit code that maps a {n}-qubit circuit ({_described(steps)}) onto the fake backend "
            f"{backend}, forcing the initial placement {layout} (index = virtual qubit, value = physical qubit), "
            f"with optimization_level=1 and seed_transpiler={seed}.",
            f"Compile this circuit for {backend}() so that {placement}: {_described(steps)}. Use transpile with "
            f"optimization level 1 and seed {seed}.",
        ], "Name the backend `backend`, the logical circuit `qc` and the compiled circuit `transpiled`. Do not add "
           "measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_qubit", f"initial_layout={layout!r}", f"initial_layout={layout[::-1]!r}"),
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "missing_step", "\n".join(calls), "\n".join(calls[1:])),
        ],
        features={"num_qubits": n, "gate_count": len(steps),
                  "concepts": ["transpile", "layout", "fake backend"], "backend": backend},
    )


@template("coupling_map_routing", area=AREA)
def coupling_map_routing(rng: random.Random) -> Draft:
    """Route a circuit with a triangle of CNOTs (never embeddable) onto a line or ring."""
    n = rng.randint(4, 5)
    shape = rng.choice(["line", "ring"])
    a, b, c = choose(rng, range(n), 3)
    seed = rng.randint(1, 999)
    steps = random_steps(rng, n, rng.randint(2, 3), two_qubit_gates=("cx",))
    steps += [Step("cx", (), (a, b)), Step("cx", (), (b, c)), Step("cx", (), (c, a))]
    calls = [step.code() for step in steps]
    route_line = f"routed = transpile(qc, coupling_map=coupling_map, optimization_level=1, seed_transpiler={seed})"
    reference = source(f"""
        from qiskit import QuantumCircuit, transpile
        from qiskit.transpiler import CouplingMap

        coupling_map = CouplingMap.from_{shape}({n})
        qc = QuantumCircuit({n})
        {block(calls)}
        {route_line}
        """)
    edges = [(q, q + 1) for q in range(n - 1)] + ([(n - 1, 0)] if shape == "ring" else [])
    checks = tests(f"""
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}
        _EDGES = {{frozenset(edge) for edge in {edges!r}}}


        class TestRouting(unittest.TestCase):
            def test_two_qubit_gates_on_edges(self):
                for instruction in routed.data:
                    qubits = [routed.find_bit(qubit).index for qubit in instruction.qubits]
                    self.assertLessEqual(len(qubits), 2, instruction.operation.name)
                    if len(qubits) == 2:
                        self.assertIn(frozenset(qubits), _EDGES, instruction.operation.name)

            def test_same_unitary(self):
                self.assertEqual(routed.num_qubits, {n})
                self.assertTrue(Operator.from_circuit(routed).equiv(Operator(_circuit_from({n}, _STEPS))))
        """, STEPS_HELPER)
    topology = (f"a line (edges {', '.join(f'{x}-{y}' for x, y in edges)})" if shape == "line"
                else f"a ring (edges {', '.join(f'{x}-{y}' for x, y in edges)})")
    return Draft(
        prompts=prompts([
            f"Route the {n}-qubit circuit [{_described(steps)}] onto hardware whose qubits are connected as "
            f"{topology}: use CouplingMap.from_{shape}({n}) and transpile with optimization level 1 and "
            f"seed_transpiler={seed}.",
            f"Write Qiskit code that makes this circuit executable on a {shape}-shaped device of {n} qubits "
            f"(CouplingMap.from_{shape}, bidirectional): {_described(steps)}. Use transpile(optimization_level=1, "
            f"seed_transpiler={seed}).",
            f"The device connectivity is {topology}. Transpile the following {n}-qubit circuit for it (level 1, "
            f"seed {seed}), inserting SWAPs where needed: {_described(steps)}.",
        ], "Name the coupling map `coupling_map`, the logical circuit `qc` and the routed circuit `routed`. Do "
           "not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", route_line, "routed = qc.copy()"),
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "wrong_qubit", calls[0], moved(steps[0], n, rng).code()),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["transpile", "routing", "coupling map"],
                  "topology": shape},
    )


@template("optimization_level_reduction", area=AREA)
def optimization_level_reduction(rng: random.Random) -> Draft:
    """A circuit full of cancelling pairs, shrunk by an optimizing transpile."""
    n = rng.randint(2, 4)
    level = rng.randint(1, 3)
    basis = list(rng.choice(BASIS_SETS[:2]))
    steps = random_steps(rng, n, rng.randint(2, 3), two_qubit_gates=("cx",))
    a, b = choose(rng, range(n), 2)
    redundant = [Step("h", (), (a,)), Step("h", (), (a,)), Step("cx", (), (a, b)), Step("cx", (), (a, b)),
                 Step("rz", (0.4,), (b,)), Step("rz", (-0.4,), (b,)), Step("x", (), (b,)), Step("x", (), (b,))]
    steps = steps + redundant + [Step("cx", (), (b, a))]
    calls = [step.code() for step in steps]
    compile_line = f"optimized = transpile(qc, basis_gates={basis!r}, optimization_level={level})"
    reference = source(f"from qiskit import QuantumCircuit, transpile\n\nqc = QuantumCircuit({n})\n"
                       + "\n".join(calls + [compile_line]))
    checks = tests(f"""
        from qiskit import transpile
        from qiskit.quantum_info import Operator

        _STEPS = {[step.spec for step in steps]!r}


        class TestOptimization(unittest.TestCase):
            def test_basis_and_unitary(self):
                self.assertLessEqual(set(optimized.count_ops()), set({basis!r}) | {{"barrier"}})
                self.assertTrue(Operator.from_circuit(optimized).equiv(Operator(_circuit_from({n}, _STEPS))))

            def test_cancellations_happened(self):
                best = transpile(_circuit_from({n}, _STEPS), basis_gates={basis!r}, optimization_level={level})
                self.assertLessEqual(optimized.size(), best.size())
        """, STEPS_HELPER)
    return Draft(
        prompts=prompts([
            f"The {n}-qubit circuit [{_described(steps)}] contains many gates that cancel. Transpile it to the "
            f"basis {basis} with optimization level {level} so that the redundant gates disappear.",
            f"Write Qiskit code that builds this deliberately wasteful {n}-qubit circuit: {_described(steps)}. "
            f"Then simplify it with transpile(basis_gates={basis}, optimization_level={level}).",
            f"Build the circuit below on {n} qubits and let the transpiler (optimization level {level}, basis "
            f"{basis}) remove the gate pairs that undo each other: {_described(steps)}.",
        ], "Name the original circuit `qc` and the optimized one `optimized`. Do not add measurements."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"optimization_level={level})", "optimization_level=0)"),
            mutate(reference, "wrong_gate", calls[0], other_gate(steps[0], rng).code()),
            mutate(reference, "missing_step", compile_line, "optimized = qc.copy()"),
        ],
        features={"num_qubits": n, "gate_count": len(steps), "concepts": ["transpile", "optimization"]},
    )
