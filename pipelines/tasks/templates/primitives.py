"""Primitives V2: StatevectorSampler/StatevectorEstimator, and qiskit_ibm_runtime's SamplerV2/EstimatorV2
in local mode (a fake backend as ``mode``), checked with tolerances that noise cannot break."""

from __future__ import annotations

import math
import random

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
from pipelines.tasks.templates.transpilation import FAKE_BACKENDS

AREA = "primitives"

FREQUENCY_CHECK = '''
def _assert_frequencies(case, observed, probabilities, shots):
    """Every observed frequency within 5 standard deviations (+0.01) of its probability."""
    case.assertEqual(sum(observed.values()), shots)
    for key in set(observed) | set(probabilities):
        p = probabilities.get(key, 0.0)
        tolerance = 5 * (p * (1 - p) / shots) ** 0.5 + 0.01
        case.assertAlmostEqual(observed.get(key, 0) / shots, p, delta=tolerance, msg=key)
'''


def _distribution(thetas: list[float], control: int, target: int) -> dict[int, float]:
    """Outcome probabilities of ⊗ RY(θ_q)|0⟩ followed by CX(control, target), by basis index."""
    result: dict[int, float] = {}
    for index in range(2 ** len(thetas)):
        weight = 1.0
        for qubit, theta in enumerate(thetas):
            p_one = math.sin(theta / 2) ** 2
            weight *= p_one if index >> qubit & 1 else 1 - p_one
        flipped = index ^ (1 << target) if index >> control & 1 else index
        result[flipped] = result.get(flipped, 0.0) + weight
    return result


@template("statevector_sampler_counts", area=AREA)
def statevector_sampler_counts(rng: random.Random) -> Draft:
    """Sample a small entangled circuit with StatevectorSampler and return the counts."""
    n = rng.randint(2, 3)
    a, b = choose(rng, range(n), 2)
    while True:  # the reversed-CNOT mutant must move some probability by more than the tolerance
        thetas = [pick_float(rng, 0.4, 1.2) for _ in range(n)]
        reference_dist, reversed_dist = _distribution(thetas, a, b), _distribution(thetas, b, a)
        if max(abs(reference_dist[k] - reversed_dist[k]) for k in reference_dist) > 0.1:
            break
    shots = rng.choice([512, 1024, 2048])
    seed = rng.randint(1, 9999)
    gates = [f"qc.ry({thetas[q]}, {q})" for q in range(n)] + [f"qc.cx({a}, {b})", "qc.measure_all()"]
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.primitives import StatevectorSampler

        qc = QuantumCircuit({n})
        {block(gates)}
        sampler = StatevectorSampler(seed={seed})
        result = sampler.run([qc], shots={shots}).result()
        counts = result[0].data.meas.get_counts()
        """)
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import Statevector


        class TestSamplerCounts(unittest.TestCase):
            def test_counts(self):
                circuit = QuantumCircuit({n})
                for qubit, theta in enumerate({thetas!r}):
                    circuit.ry(theta, qubit)
                circuit.cx({a}, {b})
                _assert_frequencies(self, dict(counts), Statevector(circuit).probabilities_dict(), {shots})
        """, FREQUENCY_CHECK)
    rotations = ", ".join(f"RY({thetas[q]}) on qubit {q}" for q in range(n))
    shifted = round(thetas[0] + 0.9, 2)
    return Draft(
        prompts=prompts([
            f"Build a {n}-qubit circuit ({rotations}, then CNOT {a}->{b}), measure all qubits with measure_all, "
            f"and sample it {shots} times with qiskit.primitives.StatevectorSampler(seed={seed}).",
            f"Write Qiskit code that runs the circuit [{rotations}; CX({a}, {b}); measure_all] on the "
            f"StatevectorSampler primitive (seed {seed}) with {shots} shots and extracts the counts.",
            f"Use the V2 sampler StatevectorSampler(seed={seed}) to sample {shots} shots from a {n}-qubit circuit "
            f"that applies {rotations} and CX {a}->{b} and then measures everything (measure_all).",
        ], "Name the circuit `qc` and the counts dict (bitstring -> number of shots) `counts`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"shots={shots}", f"shots={shots // 2}"),
            mutate(reference, "wrong_gate", gates[0], f"qc.ry({shifted}, 0)"),
            mutate(reference, "wrong_qubit", f"qc.cx({a}, {b})", f"qc.cx({b}, {a})"),
        ],
        features={"num_qubits": n, "gate_count": n + 1 + n, "concepts": ["SamplerV2", "counts"]},
    )


@template("statevector_estimator_sweep", area=AREA)
def statevector_estimator_sweep(rng: random.Random) -> Draft:
    """One pub, many parameter values: StatevectorEstimator broadcasting."""
    n = rng.randint(2, 3)
    xs, zs = "X" * n, "Z" + "I" * (n - 1)
    c_x, c_z = pick_float(rng, 0.5, 1.5), pick_float(rng, -1.5, -0.3)
    values = sorted({pick_float(rng, 0.2, 3.0) for _ in range(rng.randint(3, 5))})
    entangle = [f"qc.cx({q - 1}, {q})" for q in range(1, n)]
    observable_text = linear_combination([(xs, c_x), (zs, c_z)])
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.primitives import StatevectorEstimator
        from qiskit.quantum_info import SparsePauliOp

        theta = Parameter("theta")
        qc = QuantumCircuit({n})
        qc.ry(theta, 0)
        {block(entangle)}
        observable = SparsePauliOp.from_list([("{xs}", {c_x}), ("{zs}", {c_z})])
        values = [[value] for value in {values!r}]
        result = StatevectorEstimator().run([(qc, observable, values)]).result()
        evs = result[0].data.evs
        """)
    checks = tests(f"""
        class TestEstimatorSweep(unittest.TestCase):
            def test_expectation_values(self):
                thetas = np.array({values!r})
                # the state is cos(θ/2)|0…0⟩ + sin(θ/2)|1…1⟩: <X…X> = sin θ and <Z on the last qubit> = cos θ
                expected = {c_x} * np.sin(thetas) + {c_z} * np.cos(thetas)
                np.testing.assert_allclose(np.asarray(evs, dtype=float).ravel(), expected, atol=1e-6)
        """)
    return Draft(
        prompts=prompts([
            f"Prepare cos(θ/2)|{'0' * n}⟩ + sin(θ/2)|{'1' * n}⟩ with RY(theta) on qubit 0 followed by a CNOT "
            f"chain, where theta is a Parameter. Estimate the observable {observable_text} for theta in "
            f"{values} using StatevectorEstimator in a single pub.",
            f"Write Qiskit code that sweeps a parameterized {n}-qubit circuit (RY(theta) on qubit 0, then CX "
            f"from qubit q-1 to q for q = 1..{n - 1}) over theta ∈ {values}, computing the expectation of "
            f"SparsePauliOp.from_list([('{xs}', {c_x}), ('{zs}', {c_z})]) with StatevectorEstimator.",
            f"Using the V2 estimator StatevectorEstimator, compute ⟨H⟩ with H = {observable_text} "
            f"(Qiskit label order) for the states RY(theta)|0⟩ on qubit 0 entangled by a CNOT chain over {n} "
            f"qubits, for each theta in {values} (one pub with all parameter values).",
        ], "Name the parameterized circuit `qc`, the observable `observable` and the expectation values `evs` "
           "(one per theta, in the given order)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", "qc.ry(theta, 0)", "qc.rx(theta, 0)"),
            mutate(reference, "wrong_parameter", f'("{xs}", {c_x})', f'("{"Y" * n}", {c_x})'),
            drop_line(reference, "missing_step", entangle[-1]),
        ],
        features={"num_qubits": n, "gate_count": n, "concepts": ["EstimatorV2", "Parameter", "broadcasting"]},
    )


@template("runtime_sampler_fake_backend", area=AREA)
def runtime_sampler_fake_backend(rng: random.Random) -> Draft:
    """qiskit_ibm_runtime.SamplerV2 in local mode on a noisy fake backend."""
    n = rng.randint(2, 4)
    backend = rng.choice(FAKE_BACKENDS)
    shots = rng.choice([512, 1000, 1024])
    seed = rng.randint(1, 9999)
    chain = [f"qc.cx({q - 1}, {q})" for q in range(1, n)]
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_ibm_runtime import SamplerV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        qc = QuantumCircuit({n})
        qc.h(0)
        {block(chain)}
        qc.measure_all()
        isa_circuit = generate_preset_pass_manager(optimization_level=1, backend=backend).run(qc)
        sampler = SamplerV2(mode=backend)
        sampler.options.simulator.seed_simulator = {seed}
        counts = sampler.run([isa_circuit], shots={shots}).result()[0].data.meas.get_counts()
        """)
    zeros, ones = "0" * n, "1" * n
    checks = tests(f"""
        class TestRuntimeSampler(unittest.TestCase):
            def test_shots(self):
                self.assertEqual(sum(counts.values()), {shots})

            def test_ghz_outcomes_dominate(self):
                share = {{key: number / {shots} for key, number in counts.items()}}
                self.assertGreater(share.get({zeros!r}, 0) + share.get({ones!r}, 0), 0.65)
                self.assertGreater(share.get({zeros!r}, 0), 0.3)
                self.assertGreater(share.get({ones!r}, 0), 0.3)
        """)
    return Draft(
        prompts=prompts([
            f"Run a {n}-qubit GHZ circuit (H on qubit 0, CNOT chain, measure_all) on the fake backend {backend} "
            f"with qiskit_ibm_runtime's SamplerV2 in local mode: transpile it to the backend's ISA first, set "
            f"the simulator seed to {seed} and take {shots} shots.",
            f"Write Qiskit code that samples a GHZ state on {n} qubits using SamplerV2(mode={backend}()) from "
            f"qiskit_ibm_runtime (local testing mode). Compile with a preset pass manager, use "
            f"options.simulator.seed_simulator = {seed} and {shots} shots.",
            f"Use the IBM Runtime V2 sampler against the local fake device {backend} to measure a {n}-qubit GHZ "
            f"state {shots} times (ISA circuit via generate_preset_pass_manager; simulator seed {seed}).",
        ], "Name the backend `backend`, the logical circuit `qc` (with measure_all) and the counts dict `counts`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", "qc.h(0)", "qc.x(0)"),
            mutate(reference, "wrong_parameter", f"shots={shots}", f"shots={shots + 100}"),
            mutate(reference, "missing_step", "sampler.run([isa_circuit]", "sampler.run([qc]"),
        ],
        features={"num_qubits": n, "gate_count": n + n, "concepts": ["SamplerV2", "fake backend", "transpile"],
                  "backend": backend},
    )


BELL_EXPECTATIONS = {  # state -> {observable: ideal value}
    "Φ+": {"ZZ": 1.0, "XX": 1.0, "YY": -1.0},
    "Φ-": {"ZZ": 1.0, "XX": -1.0, "YY": 1.0},
}


@template("runtime_estimator_fake_backend", area=AREA)
def runtime_estimator_fake_backend(rng: random.Random) -> Draft:
    """qiskit_ibm_runtime.EstimatorV2 in local mode: an ISA circuit and a laid-out observable."""
    backend = rng.choice(FAKE_BACKENDS)
    state = rng.choice(sorted(BELL_EXPECTATIONS))
    label = rng.choice(sorted(BELL_EXPECTATIONS[state]))
    ideal = BELL_EXPECTATIONS[state][label]
    seed = rng.randint(1, 9999)
    prep = ["qc.h(0)", "qc.cx(0, 1)"] + (["qc.z(0)"] if state == "Φ-" else [])
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.quantum_info import SparsePauliOp
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_ibm_runtime import EstimatorV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        qc = QuantumCircuit(2)
        {block(prep)}
        isa_circuit = generate_preset_pass_manager(optimization_level=1, backend=backend).run(qc)
        observable = SparsePauliOp("{label}").apply_layout(isa_circuit.layout)
        estimator = EstimatorV2(mode=backend)
        estimator.options.simulator.seed_simulator = {seed}
        expectation = float(estimator.run([(isa_circuit, observable)]).result()[0].data.evs)
        """)
    checks = tests(f"""
        class TestRuntimeEstimator(unittest.TestCase):
            def test_expectation(self):
                # ideal value {ideal}; the fake backend's noise shrinks it by roughly 10-20 percent
                self.assertAlmostEqual(float(expectation), {ideal}, delta=0.35)
        """)
    return Draft(
        prompts=prompts([
            f"Prepare the Bell state |{state}⟩ on 2 qubits and estimate ⟨{label}⟩ with qiskit_ibm_runtime's "
            f"EstimatorV2 in local mode on the fake backend {backend}: compile the circuit with a preset pass "
            f"manager, lay the observable out on the compiled circuit, and set the simulator seed to {seed}.",
            f"Write Qiskit code that measures the expectation value of the Pauli observable {label} on "
            f"|{state}⟩ using EstimatorV2(mode={backend}()) (local testing mode). Remember that the observable "
            f"must match the ISA circuit's layout. Use options.simulator.seed_simulator = {seed}.",
            f"Use the IBM Runtime V2 estimator with the local fake device {backend} to estimate {label} for the "
            f"Bell state |{state}⟩ (ISA circuit from generate_preset_pass_manager, observable mapped with "
            f"apply_layout, simulator seed {seed}).",
        ], "Name the backend `backend`, the logical circuit `qc` and the estimated value `expectation` (a float)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_layout", ".apply_layout(isa_circuit.layout)", ""),
            mutate(reference, "wrong_parameter", f'SparsePauliOp("{label}")', 'SparsePauliOp("ZI")'),
            drop_line(reference, "missing_step", "qc.cx(0, 1)"),
        ],
        features={"num_qubits": 2, "gate_count": len(prep), "concepts": ["EstimatorV2", "fake backend", "layout"],
                  "backend": backend},
    )


@template("sampler_parameter_sweep", area=AREA)
def sampler_parameter_sweep(rng: random.Random) -> Draft:
    """StatevectorSampler with a parameterized pub: one BitArray per parameter value."""
    values = sorted({pick_float(rng, 0.3, 2.9) for _ in range(rng.randint(3, 4))})
    shots = rng.choice([1024, 2048])
    seed = rng.randint(1, 9999)
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.primitives import StatevectorSampler

        theta = Parameter("theta")
        qc = QuantumCircuit(1)
        qc.ry(theta, 0)
        qc.measure_all()
        values = [[value] for value in {values!r}]
        result = StatevectorSampler(seed={seed}).run([(qc, values)], shots={shots}).result()
        bits = result[0].data.meas
        probabilities = [bits[index].get_counts().get("1", 0) / {shots} for index in range(len(values))]
        """)
    expected = [math.sin(v / 2) ** 2 for v in values]
    checks = tests(f"""
        class TestSamplerSweep(unittest.TestCase):
            def test_probabilities(self):
                self.assertEqual(len(probabilities), {len(values)})
                for observed, p in zip(probabilities, {expected!r}):
                    self.assertAlmostEqual(float(observed), p, delta=5 * (p * (1 - p) / {shots}) ** 0.5 + 0.01)
        """)
    return Draft(
        prompts=prompts([
            f"Sweep a one-qubit circuit RY(theta)·|0⟩ followed by measure_all over theta ∈ {values} in a single "
            f"StatevectorSampler(seed={seed}) pub with {shots} shots, and compute the fraction of shots that "
            "returned 1 for each theta.",
            f"Write Qiskit code that samples RY(theta)|0⟩ ({shots} shots, StatevectorSampler with seed {seed}) "
            f"for every theta in {values}, using one parameterized pub, and reports the observed probability of "
            "outcome '1' per theta.",
            f"Using parameter broadcasting in the V2 sampler (StatevectorSampler(seed={seed}), {shots} shots), "
            f"estimate P(1) of a qubit rotated by RY(theta) and measured, for theta = {values}.",
        ], "Name the circuit `qc` (Parameter \"theta\", measured with measure_all) and the list of observed "
           "probabilities of '1' (one float per theta, same order) `probabilities`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", "qc.ry(theta, 0)", "qc.rz(theta, 0)"),
            mutate(reference, "wrong_parameter", '.get("1", 0)', '.get("0", 0)'),
            drop_line(reference, "missing_step", "qc.ry(theta, 0)"),
        ],
        features={"num_qubits": 1, "gate_count": 2, "concepts": ["SamplerV2", "Parameter", "BitArray"]},
    )
