"""Runtime options on qiskit_ibm_runtime's EstimatorV2/SamplerV2: resilience levels, ZNE, twirling,
dynamical decoupling, measurement mitigation.

Nothing is submitted to hardware: the primitives run in local mode on small fake backends. Tests
read the option values back from the primitive the program built (however they were set:
constructor dict, attribute assignment, options object) and, where local mode honours an option
(shots, precision), check its effect on a real run. The tests inspect the primitive object itself,
which cannot cross to a separate checker process, so these tasks ask for ``shared`` isolation.
"""

from __future__ import annotations

import random

from pipelines.tasks.templates.common import drop_line, mutate, prompts, source, tests
from pipelines.tasks.templates.registry import Draft, template
from pipelines.tasks.templates.transpilation import FAKE_BACKENDS

AREA = "runtime_options"
SHARED = "shared"

BELL_RUN_HELPER = '''
def _run_bell_zz(primitive):
    """Run <ZZ> of a Bell state through ``primitive`` on its own backend; return the pub result."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp
    from qiskit.transpiler import generate_preset_pass_manager
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    isa = generate_preset_pass_manager(optimization_level=1, backend=primitive.backend()).run(bell)
    return primitive.run([(isa, SparsePauliOp("ZZ").apply_layout(isa.layout))]).result()[0]
'''


def _primitive_check(kind: str, backend: str) -> str:
    """Test source: the program built the right primitive class on the right fake backend."""
    return f"""
            def test_primitive(self):
                from qiskit_ibm_runtime import {kind}
                from qiskit_ibm_runtime.fake_provider import {backend}
                self.assertIsInstance({"estimator" if kind == "EstimatorV2" else "sampler"}, {kind})
                self.assertEqual({"estimator" if kind == "EstimatorV2" else "sampler"}.backend().name, {backend}().name)
"""


@template("estimator_resilience_level", area=AREA)
def estimator_resilience_level(rng: random.Random) -> Draft:
    """Resilience level and default precision, and the precision's effect on a local run."""
    backend = rng.choice(FAKE_BACKENDS)
    level = rng.randint(0, 2)
    precision = rng.choice([0.015, 0.02, 0.03, 0.05])
    precision_line = f"estimator.options.default_precision = {precision}"
    reference = source(f"""
        from qiskit_ibm_runtime import EstimatorV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        estimator = EstimatorV2(mode=backend)
        estimator.options.resilience_level = {level}
        {precision_line}
        """)
    checks = tests(f"""
        class TestResilienceOptions(unittest.TestCase):
            {_primitive_check("EstimatorV2", backend).strip()}

            def test_options(self):
                self.assertEqual(estimator.options.resilience_level, {level})
                self.assertAlmostEqual(float(estimator.options.default_precision), {precision})

            def test_precision_reaches_the_run(self):
                result = _run_bell_zz(estimator)
                self.assertAlmostEqual(float(result.metadata["target_precision"]), {precision})
                self.assertAlmostEqual(float(result.data.evs), 1.0, delta=0.35)
        """, BELL_RUN_HELPER)
    return Draft(
        prompts=prompts([
            f"Create a qiskit_ibm_runtime EstimatorV2 in local testing mode on the fake backend {backend} "
            f"with resilience level {level} and a default precision of {precision}.",
            f"Write code that configures an IBM Runtime V2 estimator for local testing with {backend}() as its "
            f"mode: set its resilience_level option to {level} and its default_precision option to {precision}.",
            f"Set up EstimatorV2(mode={backend}()) so that jobs use error-mitigation resilience level {level} "
            f"and target a precision of {precision} unless a pub says otherwise. Do not run anything.",
        ], "Name the backend `backend` and the estimator `estimator`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"resilience_level = {level}",
                   f"resilience_level = {(level + 1) % 3}"),
            mutate(reference, "wrong_precision", precision_line,
                   f"estimator.options.default_precision = {precision * 2}"),
            drop_line(reference, "missing_step", precision_line),
        ],
        features={"num_qubits": 2, "gate_count": 2, "concepts": ["EstimatorV2", "resilience level", "precision"],
                  "backend": backend},
        isolation=SHARED,
    )


NOISE_FACTORS = ((1, 3, 5), (1, 2, 3), (1, 1.5, 2), (1, 3, 5, 7))
EXTRAPOLATORS = ("linear", "exponential", "polynomial_degree_2")
AMPLIFIERS = ("gate_folding", "gate_folding_front", "gate_folding_back")


@template("zne_options", area=AREA)
def zne_options(rng: random.Random) -> Draft:
    """Zero-noise extrapolation: enabling it, noise factors, extrapolator and amplifier."""
    backend = rng.choice(FAKE_BACKENDS)
    factors = rng.choice(NOISE_FACTORS)
    extrapolator = rng.choice(EXTRAPOLATORS)
    amplifier = rng.choice(AMPLIFIERS)
    other_factors = rng.choice([f for f in NOISE_FACTORS if f != factors])
    other_extrapolator = rng.choice([e for e in EXTRAPOLATORS if e != extrapolator])
    enable_line = "estimator.options.resilience.zne_mitigation = True"
    reference = source(f"""
        from qiskit_ibm_runtime import EstimatorV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        estimator = EstimatorV2(mode={backend}())
        {enable_line}
        estimator.options.resilience.zne.noise_factors = {factors!r}
        estimator.options.resilience.zne.extrapolator = "{extrapolator}"
        estimator.options.resilience.zne.amplifier = "{amplifier}"
        """)
    checks = tests(f"""
        class TestZneOptions(unittest.TestCase):
            {_primitive_check("EstimatorV2", backend).strip()}

            def test_zne_enabled(self):
                self.assertIs(estimator.options.resilience.zne_mitigation, True)

            def test_zne_settings(self):
                zne = estimator.options.resilience.zne
                self.assertEqual(tuple(float(f) for f in zne.noise_factors), {tuple(float(f) for f in factors)!r})
                extrapolator = zne.extrapolator
                self.assertEqual([extrapolator] if isinstance(extrapolator, str) else list(extrapolator),
                                 [{extrapolator!r}])
                self.assertEqual(zne.amplifier, {amplifier!r})
        """)
    return Draft(
        prompts=prompts([
            f"Configure a qiskit_ibm_runtime EstimatorV2 (local mode, fake backend {backend}) for zero-noise "
            f"extrapolation: enable ZNE, use noise factors {factors}, the \"{extrapolator}\" extrapolator and "
            f"the \"{amplifier}\" noise amplifier.",
            f"Write code that turns on zero-noise extrapolation in the options of EstimatorV2(mode={backend}()): "
            f"noise_factors={factors}, extrapolator='{extrapolator}', amplifier='{amplifier}'. Do not submit jobs.",
            f"Set up an IBM Runtime V2 estimator on {backend} whose resilience options enable ZNE with "
            f"amplification by {amplifier.replace('_', ' ')} at noise factors {', '.join(map(str, factors))}, "
            f"extrapolated with '{extrapolator}'.",
        ], "Name the estimator `estimator`."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", enable_line),
            mutate(reference, "wrong_parameter", f"noise_factors = {factors!r}", f"noise_factors = {other_factors!r}"),
            mutate(reference, "wrong_extrapolator", f'extrapolator = "{extrapolator}"',
                   f'extrapolator = "{other_extrapolator}"'),
        ],
        features={"num_qubits": 0, "gate_count": 0, "concepts": ["EstimatorV2", "ZNE", "options"],
                  "backend": backend},
        isolation=SHARED,
    )


STRATEGIES = ("active", "active-accum", "active-circuit", "all")


@template("twirling_options", area=AREA)
def twirling_options(rng: random.Random) -> Draft:
    """Pauli twirling on a sampler or an estimator: gates, measurements, randomizations, strategy."""
    backend = rng.choice(FAKE_BACKENDS)
    kind = rng.choice(["EstimatorV2", "SamplerV2"])
    name = "estimator" if kind == "EstimatorV2" else "sampler"
    randomizations = rng.choice([8, 16, 32, 64])
    shots_each = rng.choice([64, 100, 128, 256])
    strategy = rng.choice(STRATEGIES)
    measure = rng.random() < 0.5
    other_strategy = rng.choice([s for s in STRATEGIES if s != strategy])
    enable_line = f"{name}.options.twirling.enable_gates = True"
    reference = source(f"""
        from qiskit_ibm_runtime import {kind}
        from qiskit_ibm_runtime.fake_provider import {backend}

        {name} = {kind}(mode={backend}())
        {enable_line}
        {name}.options.twirling.enable_measure = {measure}
        {name}.options.twirling.num_randomizations = {randomizations}
        {name}.options.twirling.shots_per_randomization = {shots_each}
        {name}.options.twirling.strategy = "{strategy}"
        """)
    checks = tests(f"""
        class TestTwirlingOptions(unittest.TestCase):
            {_primitive_check(kind, backend).strip()}

            def test_twirling(self):
                twirling = {name}.options.twirling
                self.assertIs(twirling.enable_gates, True)
                self.assertIs(bool(twirling.enable_measure), {measure})
                self.assertEqual(twirling.num_randomizations, {randomizations})
                self.assertEqual(twirling.shots_per_randomization, {shots_each})
                self.assertEqual(twirling.strategy, {strategy!r})
        """)
    return Draft(
        prompts=prompts([
            f"Create a qiskit_ibm_runtime {kind} in local mode on {backend} and configure Pauli twirling: twirl "
            f"the gates{' and the measurements' if measure else ' but not the measurements'}, with {randomizations} "
            f"randomizations of {shots_each} shots each and the \"{strategy}\" twirling strategy.",
            f"Write code that sets the twirling options of {kind}(mode={backend}()): enable_gates=True, "
            f"enable_measure={measure}, num_randomizations={randomizations}, "
            f"shots_per_randomization={shots_each}, strategy='{strategy}'.",
            f"Set up an IBM Runtime V2 {'estimator' if name == 'estimator' else 'sampler'} for {backend} that "
            f"applies gate twirling ({'with' if measure else 'without'} measurement twirling) using "
            f"{randomizations} random instances × {shots_each} shots and strategy {strategy}. Do not run it.",
        ], f"Name the primitive `{name}`."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", enable_line),
            mutate(reference, "wrong_parameter", f"num_randomizations = {randomizations}",
                   f"num_randomizations = {randomizations * 2}"),
            mutate(reference, "wrong_strategy", f'strategy = "{strategy}"', f'strategy = "{other_strategy}"'),
        ],
        features={"num_qubits": 0, "gate_count": 0, "concepts": [kind, "twirling", "options"], "backend": backend},
        isolation=SHARED,
    )


SEQUENCES = ("XX", "XpXm", "XY4")


@template("sampler_shots_and_dd", area=AREA)
def sampler_shots_and_dd(rng: random.Random) -> Draft:
    """SamplerV2 default shots (honoured locally) and dynamical decoupling settings."""
    backend = rng.choice(FAKE_BACKENDS)
    shots = rng.choice([300, 500, 800, 1200])
    sequence = rng.choice(SEQUENCES)
    other_sequence = rng.choice([s for s in SEQUENCES if s != sequence])
    dd_line = "sampler.options.dynamical_decoupling.enable = True"
    reference = source(f"""
        from qiskit import QuantumCircuit
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_ibm_runtime import SamplerV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        backend = {backend}()
        sampler = SamplerV2(mode=backend)
        sampler.options.default_shots = {shots}
        {dd_line}
        sampler.options.dynamical_decoupling.sequence_type = "{sequence}"

        qc = QuantumCircuit(2)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure_all()
        isa_circuit = generate_preset_pass_manager(optimization_level=1, backend=backend).run(qc)
        counts = sampler.run([isa_circuit]).result()[0].data.meas.get_counts()
        """)
    checks = tests(f"""
        class TestSamplerOptions(unittest.TestCase):
            {_primitive_check("SamplerV2", backend).strip()}

            def test_options(self):
                self.assertEqual(sampler.options.default_shots, {shots})
                self.assertIs(sampler.options.dynamical_decoupling.enable, True)
                self.assertEqual(sampler.options.dynamical_decoupling.sequence_type, {sequence!r})

            def test_default_shots_used(self):
                self.assertEqual(sum(counts.values()), {shots})
                self.assertGreater((counts.get("00", 0) + counts.get("11", 0)) / {shots}, 0.7)
        """)
    return Draft(
        prompts=prompts([
            f"Create a qiskit_ibm_runtime SamplerV2 in local mode on {backend} whose default is {shots} shots per "
            f"pub and which enables dynamical decoupling with the \"{sequence}\" sequence. Then run a 2-qubit Bell "
            "circuit (H, CNOT, measure_all), compiled for the backend, without passing shots explicitly.",
            f"Write code that configures SamplerV2(mode={backend}()) with options default_shots={shots}, "
            f"dynamical_decoupling.enable=True and dynamical_decoupling.sequence_type='{sequence}', and samples "
            "an ISA Bell-state circuit with measure_all using the default number of shots.",
            f"Set up the IBM Runtime V2 sampler for the fake device {backend}: {shots} default shots, DD on with "
            f"sequence {sequence}. Sample the Bell state (measure_all, transpiled with a preset pass manager) "
            "relying on the default shot count.",
        ], "Name the backend `backend`, the sampler `sampler`, the Bell circuit `qc` and the counts dict "
           "`counts`."),
        tests=checks,
        reference=reference,
        mutants=[
            mutate(reference, "wrong_parameter", f"default_shots = {shots}", f"default_shots = {shots + 100}"),
            drop_line(reference, "missing_step", dd_line),
            mutate(reference, "wrong_sequence", f'sequence_type = "{sequence}"', f'sequence_type = "{other_sequence}"'),
        ],
        features={"num_qubits": 2, "gate_count": 3, "concepts": ["SamplerV2", "dynamical decoupling", "shots"],
                  "backend": backend},
        isolation=SHARED,
    )


@template("measure_mitigation_options", area=AREA)
def measure_mitigation_options(rng: random.Random) -> Draft:
    """TREX-style measurement mitigation settings plus default shots, whose effect shows in a local run."""
    backend = rng.choice(FAKE_BACKENDS)
    randomizations = rng.choice([4, 8, 16, 32])
    shots_each = rng.choice([128, 256, 512])
    shots = rng.choice([1000, 2000, 4000])
    mitigation_line = "estimator.options.resilience.measure_mitigation = True"
    reference = source(f"""
        from qiskit_ibm_runtime import EstimatorV2
        from qiskit_ibm_runtime.fake_provider import {backend}

        estimator = EstimatorV2(mode={backend}())
        estimator.options.default_shots = {shots}
        {mitigation_line}
        estimator.options.resilience.measure_noise_learning.num_randomizations = {randomizations}
        estimator.options.resilience.measure_noise_learning.shots_per_randomization = {shots_each}
        """)
    checks = tests(f"""
        class TestMeasureMitigation(unittest.TestCase):
            {_primitive_check("EstimatorV2", backend).strip()}

            def test_mitigation(self):
                resilience = estimator.options.resilience
                self.assertIs(resilience.measure_mitigation, True)
                self.assertEqual(resilience.measure_noise_learning.num_randomizations, {randomizations})
                self.assertEqual(resilience.measure_noise_learning.shots_per_randomization, {shots_each})

            def test_default_shots_used(self):
                self.assertEqual(estimator.options.default_shots, {shots})
                result = _run_bell_zz(estimator)
                self.assertAlmostEqual(int(result.metadata["shots"]), {shots}, delta=1)
        """, BELL_RUN_HELPER)
    return Draft(
        prompts=prompts([
            f"Configure a qiskit_ibm_runtime EstimatorV2 on the fake backend {backend} (local mode) for "
            f"measurement-error mitigation: turn on measure_mitigation and learn the readout noise with "
            f"{randomizations} randomizations of {shots_each} shots each. Also make it use {shots} shots per "
            "pub by default.",
            f"Write code that sets these options on EstimatorV2(mode={backend}()): default_shots={shots}, "
            f"resilience.measure_mitigation=True, resilience.measure_noise_learning.num_randomizations="
            f"{randomizations}, resilience.measure_noise_learning.shots_per_randomization={shots_each}.",
            f"Set up an IBM Runtime V2 estimator for {backend} with TREX measurement mitigation enabled (noise "
            f"learning: {randomizations} randomizations × {shots_each} shots) and a default of {shots} shots.",
        ], "Name the estimator `estimator`."),
        tests=checks,
        reference=reference,
        mutants=[
            drop_line(reference, "missing_step", mitigation_line),
            mutate(reference, "wrong_parameter", f"num_randomizations = {randomizations}",
                   f"num_randomizations = {randomizations + 1}"),
            mutate(reference, "wrong_shots", f"default_shots = {shots}", f"default_shots = {shots // 2}"),
        ],
        features={"num_qubits": 2, "gate_count": 2,
                  "concepts": ["EstimatorV2", "measurement mitigation", "shots"], "backend": backend},
        isolation=SHARED,
    )
