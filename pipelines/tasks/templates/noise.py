"""Aer noise models: depolarizing, Pauli, thermal relaxation and readout errors, and backend noise.

Tests judge a noise model by what it does: they simulate probe circuits (density matrices, exact)
with the candidate's model and with a model they build from the stated parameters, and compare.
Two models that act the same on every gate the task names pass alike, however they were built.
"""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import block, choose, drop_line, mutate, pick_float, prompts, source, tests
from pipelines.tasks.templates.registry import Draft, template
from pipelines.tasks.templates.transpilation import FAKE_BACKENDS

AREA = "noise"
# The tests simulate with the candidate's NoiseModel, and noise models do not cross to the
# verifier's separate checker process (a Kraus-based model does not round-trip through its dict
# form), so these tasks run their tests next to the program.
SHARED = "shared"

DENSITY_MATRIX_HELPER = '''
def _density_matrix(model, steps, num_qubits=2):
    """Final density matrix of the probe circuit (gate, qubits) steps under ``model`` (exact)."""
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator
    probe = QuantumCircuit(num_qubits)
    for gate, qubits in steps:
        getattr(probe, gate)(*qubits)
    probe.save_density_matrix()
    simulator = AerSimulator(method="density_matrix", noise_model=model)
    return np.asarray(simulator.run(probe).result().data()["density_matrix"])


def _assert_same_noise(case, model, expected, probes, num_qubits=2):
    for steps in probes:
        np.testing.assert_allclose(_density_matrix(model, steps, num_qubits),
                                   _density_matrix(expected, steps, num_qubits), atol=1e-9, err_msg=str(steps))
'''


@template("depolarizing_noise_model", area=AREA)
def depolarizing_noise_model(rng: random.Random) -> Draft:
    """Depolarizing errors on named one-qubit gates and on CX."""
    one_qubit_gates = sorted(choose(rng, ["x", "h", "sx"], 2))
    p1 = pick_float(rng, 0.01, 0.05, 3)
    p2 = pick_float(rng, 0.05, 0.15, 3)
    one_line = f"noise_model.add_all_qubit_quantum_error(depolarizing_error({p1}, 1), {one_qubit_gates!r})"
    two_line = f"noise_model.add_all_qubit_quantum_error(depolarizing_error({p2}, 2), ['cx'])"
    reference = source(f"""
        from qiskit_aer.noise import NoiseModel, depolarizing_error

        noise_model = NoiseModel()
        {one_line}
        {two_line}
        """)
    g1, g2 = one_qubit_gates
    probes = [[(g1, [0]), (g2, [1])], [("h", [0]), ("cx", [0, 1])], [(g2, [0]), ("cx", [1, 0]), (g1, [1])]]
    checks = tests(f"""
        from qiskit_aer.noise import NoiseModel, depolarizing_error


        class TestDepolarizingModel(unittest.TestCase):
            def test_behaves_like_the_specification(self):
                expected = NoiseModel()
                expected.add_all_qubit_quantum_error(depolarizing_error({p1}, 1), {one_qubit_gates!r})
                expected.add_all_qubit_quantum_error(depolarizing_error({p2}, 2), ["cx"])
                _assert_same_noise(self, noise_model, expected, {probes!r})
        """, DENSITY_MATRIX_HELPER)
    other = next(g for g in ["x", "h", "sx"] if g not in one_qubit_gates)
    return Draft(
        isolation=SHARED,
        prompts=prompts([
            f"Create an Aer noise model in which every {g1} and {g2} gate, on any qubit, is followed by a "
            f"depolarizing error with probability {p1}, and every CX by a two-qubit depolarizing error with "
            f"probability {p2}.",
            f"Write qiskit_aer code for a NoiseModel with single-qubit depolarizing noise (parameter {p1}) on the "
            f"gates {one_qubit_gates} of all qubits and two-qubit depolarizing noise (parameter {p2}) on all cx "
            "gates.",
            f"Using qiskit_aer.noise, model a device whose one-qubit gates {g1} and {g2} depolarize with "
            f"p = {p1} and whose CNOTs depolarize with p = {p2} (depolarizing_error semantics).",
        ], "Name the model `noise_model` (a qiskit_aer.noise.NoiseModel); no other errors."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"depolarizing_error({p2}, 2)", f"depolarizing_error({p1}, 2)"),
            mutate(reference, "wrong_gate", f"{one_qubit_gates!r}", f"{[g1, other]!r}"),
            drop_line(reference, "missing_step", two_line),
        ],
        features={"num_qubits": 2, "gate_count": 3, "concepts": ["NoiseModel", "depolarizing error"]},
    )


@template("readout_error_model", area=AREA)
def readout_error_model(rng: random.Random) -> Draft:
    """Asymmetric readout error, on every qubit or on one qubit only."""
    n = rng.randint(2, 3)
    p01 = pick_float(rng, 0.01, 0.05)
    p10 = pick_float(rng, 0.12, 0.2)
    target = rng.choice([None] + list(range(n)))
    add = ("noise_model.add_all_qubit_readout_error(error)" if target is None
           else f"noise_model.add_readout_error(error, [{target}])")
    reference = source(f"""
        from qiskit_aer.noise import NoiseModel, ReadoutError

        error = ReadoutError([[{1 - p01:.2f}, {p01}], [{p10}, {1 - p10:.2f}]])
        noise_model = NoiseModel()
        {add}
        """)
    noisy = list(range(n)) if target is None else [target]
    wrong_target = 0 if target is None else (target + 1) % n  # one qubit only, or the wrong one
    shots = 4000
    checks = tests(f"""
        from qiskit import QuantumCircuit
        from qiskit_aer import AerSimulator


        def _flip_rates(prepared_ones):
            probe = QuantumCircuit({n}, {n})
            for qubit in prepared_ones:
                probe.x(qubit)
            probe.measure(range({n}), range({n}))
            result = AerSimulator(noise_model=noise_model).run(probe, shots={shots}, seed_simulator=7).result()
            rates = [0.0] * {n}
            for key, number in result.get_counts().items():
                for qubit in range({n}):
                    if key[{n} - 1 - qubit] != ("1" if qubit in prepared_ones else "0"):
                        rates[qubit] += number / {shots}
            return rates


        class TestReadoutError(unittest.TestCase):
            def check(self, prepared_ones):
                for qubit, rate in enumerate(_flip_rates(prepared_ones)):
                    p = ({p10} if qubit in prepared_ones else {p01}) if qubit in {noisy!r} else 0.0
                    self.assertAlmostEqual(rate, p, delta=5 * (p * (1 - p) / {shots}) ** 0.5 + 0.01, msg=qubit)

            def test_prepared_zero(self):
                self.check([])

            def test_prepared_one(self):
                self.check(list(range({n})))
        """)
    where = "on every qubit" if target is None else f"on qubit {target} only (the other qubits read out perfectly)"
    return Draft(
        isolation=SHARED,
        prompts=prompts([
            f"Build an Aer noise model with a readout error {where}: a qubit in |0⟩ is read as 1 with probability "
            f"{p01}, and a qubit in |1⟩ is read as 0 with probability {p10}.",
            f"Write qiskit_aer code for a NoiseModel whose measurement misassigns |0⟩ → 1 with probability {p01} "
            f"and |1⟩ → 0 with probability {p10}, applied {where}. Use ReadoutError.",
            f"Model asymmetric measurement noise with qiskit_aer.noise.ReadoutError: P(1|0) = {p01}, "
            f"P(0|1) = {p10}, {where} of a {n}-qubit device.",
        ], "Name the model `noise_model`; it has no gate errors."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"[[{1 - p01:.2f}, {p01}], [{p10}, {1 - p10:.2f}]]",
                   f"[[{1 - p10:.2f}, {p10}], [{p01}, {1 - p01:.2f}]]"),
            drop_line(reference, "missing_step", add),
            mutate(reference, "wrong_qubit", add, f"noise_model.add_readout_error(error, [{wrong_target}])"),
        ],
        features={"num_qubits": n, "gate_count": n, "concepts": ["NoiseModel", "readout error"]},
    )


@template("pauli_channel_model", area=AREA)
def pauli_channel_model(rng: random.Random) -> Draft:
    """A bit-flip channel after X gates and a phase-flip channel after H gates."""
    p_bit = pick_float(rng, 0.05, 0.2)
    p_phase = pick_float(rng, 0.05, 0.2)
    only = rng.choice([None, 0, 1])
    scope = "on every qubit" if only is None else f"on qubit {only} only"

    def add(error: str, gate: str) -> str:
        if only is None:
            return f"noise_model.add_all_qubit_quantum_error({error}, ['{gate}'])"
        return f"noise_model.add_quantum_error({error}, ['{gate}'], [{only}])"

    bit_line, phase_line = add("bit_flip", "x"), add("phase_flip", "h")
    reference = source(f"""
        from qiskit_aer.noise import NoiseModel, pauli_error

        bit_flip = pauli_error([("X", {p_bit}), ("I", {1 - p_bit:.2f})])
        phase_flip = pauli_error([("Z", {p_phase}), ("I", {1 - p_phase:.2f})])
        noise_model = NoiseModel()
        {bit_line}
        {phase_line}
        """)
    # entangled probes show the phase of a flip on either qubit (an X and a Y flip differ only there)
    probes = [[("x", [0]), ("h", [1])], [("h", [0]), ("x", [1]), ("h", [1])],
              [("h", [0]), ("cx", [0, 1]), ("x", [0])], [("h", [1]), ("cx", [1, 0]), ("x", [1])]]
    expected_add = (["expected.add_all_qubit_quantum_error(bit_flip, ['x'])",
                     "expected.add_all_qubit_quantum_error(phase_flip, ['h'])"] if only is None else
                    [f"expected.add_quantum_error(bit_flip, ['x'], [{only}])",
                     f"expected.add_quantum_error(phase_flip, ['h'], [{only}])"])
    checks = tests(f"""
        from qiskit_aer.noise import NoiseModel, pauli_error


        class TestPauliChannels(unittest.TestCase):
            def test_behaves_like_the_specification(self):
                bit_flip = pauli_error([("X", {p_bit}), ("I", {1 - p_bit:.2f})])
                phase_flip = pauli_error([("Z", {p_phase}), ("I", {1 - p_phase:.2f})])
                expected = NoiseModel()
                {expected_add[0]}
                {expected_add[1]}
                _assert_same_noise(self, noise_model, expected, {probes!r})
        """, DENSITY_MATRIX_HELPER)
    return Draft(
        isolation=SHARED,
        prompts=prompts([
            f"Create an Aer noise model where, {scope}, every X gate is followed by a bit flip (Pauli X) with "
            f"probability {p_bit} and every H gate by a phase flip (Pauli Z) with probability {p_phase}.",
            f"Write qiskit_aer code that attaches a bit-flip channel (p = {p_bit}) to x gates and a phase-flip "
            f"channel (p = {p_phase}) to h gates, {scope}, using pauli_error.",
            f"Using qiskit_aer.noise.pauli_error, model X errors of probability {p_bit} after x and Z errors of "
            f"probability {p_phase} after h ({scope}).",
        ], "Name the model `noise_model` (NoiseModel); no other errors."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_gate", f'("X", {p_bit})', f'("Y", {p_bit})'),
            mutate(reference, "wrong_parameter", f'("Z", {p_phase}), ("I", {1 - p_phase:.2f})',
                   f'("Z", {1 - p_phase:.2f}), ("I", {p_phase})'),
            drop_line(reference, "missing_step", phase_line),
        ],
        features={"num_qubits": 2, "gate_count": 2, "concepts": ["NoiseModel", "Pauli channels"]},
    )


@template("thermal_relaxation_model", area=AREA)
def thermal_relaxation_model(rng: random.Random) -> Draft:
    """T1/T2 thermal relaxation on one-qubit gates with a given gate duration."""
    t1 = float(rng.randint(20, 80))
    # T2 <= T1 keeps the error a mixture of resets and Z flips, which every NoiseModel serializer
    # round-trips (T2 > T1 makes it a Kraus channel, which NoiseModel.from_dict cannot rebuild).
    t2 = float(round(t1 * rng.uniform(0.5, 1.0)))
    gate_time = pick_float(rng, 1.0, 4.0, 1)
    gates = sorted(choose(rng, ["x", "sx", "h"], 2))
    error_line = f"error = thermal_relaxation_error({t1}, {t2}, {gate_time})"
    reference = source(f"""
        from qiskit_aer.noise import NoiseModel, thermal_relaxation_error

        {error_line}
        noise_model = NoiseModel()
        noise_model.add_all_qubit_quantum_error(error, {gates!r})
        """)
    g1, g2 = gates
    probes = [[(g1, [0]), (g2, [1])], [(g2, [0]), (g1, [0]), (g1, [1])], [("h", [0]), ("x", [1]), ("cx", [0, 1])]]
    checks = tests(f"""
        from qiskit_aer.noise import NoiseModel, thermal_relaxation_error


        class TestThermalRelaxation(unittest.TestCase):
            def test_behaves_like_the_specification(self):
                expected = NoiseModel()
                expected.add_all_qubit_quantum_error(thermal_relaxation_error({t1}, {t2}, {gate_time}), {gates!r})
                _assert_same_noise(self, noise_model, expected, {probes!r})
        """, DENSITY_MATRIX_HELPER)
    return Draft(
        isolation=SHARED,
        prompts=prompts([
            f"Model T1/T2 decay with Aer: every {g1} and {g2} gate (on any qubit) lasts {gate_time} time units "
            f"and suffers thermal relaxation with T1 = {t1} and T2 = {t2} (same units).",
            f"Write qiskit_aer code that builds a NoiseModel with thermal_relaxation_error(T1={t1}, T2={t2}, "
            f"time={gate_time}) attached to the {g1} and {g2} gates of all qubits.",
            f"Create a noise model for a device with T1 = {t1} µs and T2 = {t2} µs whose {g1} and {g2} gates take "
            f"{gate_time} µs each; the only noise is the relaxation during those gates.",
        ], "Name the model `noise_model` (NoiseModel)."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", error_line,
                   f"error = thermal_relaxation_error({t1}, {t2}, {round(gate_time * 2, 1)})"),
            mutate(reference, "wrong_gate", f"error, {gates!r}", f"error, {[g1]!r}"),
            mutate(reference, "wrong_parameter", error_line,
                   f"error = thermal_relaxation_error({t1}, {round(t2 / 2, 1)}, {gate_time})"),
        ],
        features={"num_qubits": 2, "gate_count": 2, "concepts": ["NoiseModel", "thermal relaxation"]},
    )


@template("noisy_backend_simulator", area=AREA)
def noisy_backend_simulator(rng: random.Random) -> Draft:
    """AerSimulator.from_backend: a fake device's noise, checked by its error outcomes."""
    n = rng.randint(3, 4)
    backend = rng.choice(FAKE_BACKENDS)
    shots = rng.choice([512, 1000, 1024])
    seed = rng.randint(1, 9999)
    chain = [f"qc.cx({q - 1}, {q})" for q in range(1, n)]
    reference = source(f"""
        from qiskit import QuantumCircuit, transpile
        from qiskit_aer import AerSimulator
        from qiskit_ibm_runtime.fake_provider import {backend}

        simulator = AerSimulator.from_backend({backend}())
        qc = QuantumCircuit({n})
        qc.h(0)
        {block(chain)}
        qc.measure_all()
        compiled = transpile(qc, simulator, seed_transpiler={seed})
        counts = simulator.run(compiled, shots={shots}, seed_simulator={seed}).result().get_counts()
        """)
    zeros, ones = "0" * n, "1" * n
    checks = tests(f"""
        class TestNoisySimulator(unittest.TestCase):
            def test_shots(self):
                self.assertEqual(sum(counts.values()), {shots})

            def test_mostly_ghz(self):
                self.assertGreater((counts.get({zeros!r}, 0) + counts.get({ones!r}, 0)) / {shots}, 0.6)
                self.assertGreater(counts.get({zeros!r}, 0) / {shots}, 0.25)
                self.assertGreater(counts.get({ones!r}, 0) / {shots}, 0.25)

            def test_noise_is_present(self):
                errors = sum(number for key, number in counts.items() if key not in ({zeros!r}, {ones!r}))
                self.assertGreater(errors / {shots}, 0.01)
        """)
    return Draft(
        prompts=prompts([
            f"Simulate a {n}-qubit GHZ circuit (measured with measure_all) with the noise of the fake device "
            f"{backend}: build an AerSimulator from the backend, transpile for it (seed_transpiler={seed}) and run "
            f"{shots} shots with seed_simulator={seed}.",
            f"Write Qiskit code that creates a noisy AerSimulator mirroring {backend}() (qiskit_ibm_runtime "
            f"fake provider), compiles a {n}-qubit GHZ circuit with measure_all for it (seed {seed}), and "
            f"collects the counts of {shots} shots (seed_simulator={seed}).",
            f"Use AerSimulator.from_backend with the fake backend {backend} to see how device noise spreads the "
            f"outcomes of a {n}-qubit GHZ state: {shots} shots, transpiler and simulator seeds {seed}.",
        ], "Name the circuit `qc` (with measure_all) and the counts dict `counts`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "missing_step", f"AerSimulator.from_backend({backend}())", "AerSimulator()"),
            mutate(reference, "wrong_gate", "qc.h(0)", "qc.x(0)"),
            mutate(reference, "wrong_parameter", f"shots={shots}", f"shots={shots // 2}"),
        ],
        features={"num_qubits": n, "gate_count": 2 * n,
                  "concepts": ["AerSimulator", "fake backend", "noise"], "backend": backend},
    )
