"""Shot-noise-aware verdicts (actors/verify/noise): a verdict that may be another draw is settled
by running its job again in fresh sandbox children; deterministic and crashing jobs run once;
flaky references are flagged at calibration; the simulator runs are recorded (provenance) and a
forged record is sanitised. One Verifier for the module, no Ray."""

import contextlib
import re

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.noise.config import NoiseConfig
from actors.verify.noise.provenance import read_provenance
from actors.verify.noise.references import PASS_RATE, flaky_references
from actors.verify.rewards.config import RewardConfig
from actors.verify.verifier import Verifier


@pytest.fixture(scope="module")
def verifier():
    # Re-measurement on, as the evaluation presets set it (its default is off).
    config = VerifierConfig(timeout_s=30, qpu_gateway=False, rewards=RewardConfig(weights={"pass_fraction": 1.0}),
                            noise=NoiseConfig(max_runs=5))
    with Verifier(config, slots=2) as verifier:
        yield verifier


@contextlib.contextmanager
def noise(verifier, **settings):
    """The verifier's noise settings changed for the block."""
    kept = verifier.config.noise
    verifier.config.noise = NoiseConfig(**settings)
    try:
        yield
    finally:
        verifier.config.noise = kept


def draw_task(tests: str, reference: str | None = None, task_id: str = "noise/draw") -> Task:
    """A QHE-style task whose entry point returns a number the tests compare with a bound; its
    prompt names randomness, so every program for it is stochastic."""
    return Task(task_id=task_id, family="qhe", harness="qhe", entry_point="draw", reference_solution=reference,
                prompt='import numpy as np\ndef draw():\n    """A random number in [0, 1)."""\n', tests=tests)


COIN = "    return np.random.random()\n"
"""A uniform draw: ``< 0.5`` holds on about half of the runs."""


def below(bound: float) -> str:
    return f"def check(candidate):\n    assert candidate() < {bound}\n"


def runs_to_settle_unanimous(confidence: float, threshold: float) -> int:
    """Runs after which n passes of n settle as passed: the Clopper-Pearson lower bound of n of n
    is ((1 - confidence) / 2) ** (1 / n); the first n where it exceeds the threshold."""
    n = 1
    while ((1 - confidence) / 2) ** (1 / n) <= threshold:
        n += 1
    return n


def test_a_coin_flip_is_re_measured_and_reports_its_pass_rate(verifier):
    # Confidence so high that nothing settles within the budget: every run is spent, and a pass
    # rate strictly between 0 and 1 is then all but certain (10 equal draws: 2 in 1024).
    with noise(verifier, max_runs=10, confidence=0.999):
        verdicts = verifier.run([VerificationJob(draw_task(below(0.5)), COIN, index) for index in range(2)], "shared")
    assert [verdict.runs for verdict in verdicts] == [10, 10]
    assert any(0 < verdict.pass_rate < 1 for verdict in verdicts), [verdict.pass_rate for verdict in verdicts]
    for verdict in verdicts:
        assert verdict.status == ("passed" if verdict.pass_rate > 0.5 else "failed") and not verdict.settled
        assert verdict.reward == (1.0 if verdict.status == "passed" else 0.0)  # the settled status's run


def test_a_deterministic_pass_runs_once(verifier):
    task = Task(task_id="noise/fixed", family="qhe", harness="qhe", entry_point="one", tests=(
        "def check(candidate):\n    assert candidate() == 1\n"), prompt='def one():\n    """One."""\n')
    verdict = verifier.verify_one(VerificationJob(task, "    return 1\n"))
    assert (verdict.status, verdict.runs, verdict.pass_rate, verdict.settled) == ("passed", 1, None, False)


@pytest.mark.parametrize("isolation", ["shared", "split"])
def test_a_stochastic_program_that_always_passes_settles_after_the_runs_the_interval_needs(verifier, isolation):
    config = verifier.config.noise
    expected = runs_to_settle_unanimous(config.confidence, config.threshold)
    assert 1 < expected <= config.max_runs
    verdict = verifier.verify_one(VerificationJob(draw_task(below(1.0)), COIN), isolation=isolation)
    assert (verdict.status, verdict.runs, verdict.pass_rate, verdict.settled) == ("passed", expected, 1.0, True)
    assert verdict.isolation == isolation


def test_a_crash_is_not_re_measured(verifier):
    verdict = verifier.verify_one(VerificationJob(draw_task(below(0.5)), "    return undefined_name\n"))
    assert (verdict.status, verdict.runs, verdict.pass_rate) == ("failed", 1, None)
    assert "NameError" in verdict.stderr_tail


def test_reward_probability_is_the_mean_of_the_runs_rewards(verifier):
    with noise(verifier, max_runs=10, confidence=0.999, reward="probability"):
        verdict = verifier.verify_one(VerificationJob(draw_task(below(0.5)), COIN), isolation="shared")
    assert verdict.runs == 10
    assert verdict.reward == pytest.approx(verdict.pass_rate)  # pass_fraction alone: 1 per pass, 0 per failure
    assert verdict.reward_parts["pass_fraction"] == pytest.approx(verdict.pass_rate)


def test_a_flaky_reference_is_flagged_at_calibration(verifier):
    flaky = draw_task(below(0.5), COIN, "noise/flaky-reference")
    steady = draw_task(below(1.0), COIN, "noise/steady-reference")
    fixed = Task(task_id="noise/fixed-reference", family="qhe", harness="qhe", entry_point="one",
                 prompt='def one():\n    """One."""\n', tests="def check(candidate):\n    assert candidate() == 1\n",
                 reference_solution="    return 1\n")
    # 12 of 12 halves pass together once in 4096 calibrations.
    with noise(verifier, max_runs=12, reference_runs=12):
        _, verdicts = verifier.calibrate([flaky, steady, fixed])
    assert verdicts[0].runs >= 12 and 0 <= flaky.metadata[PASS_RATE] < 1
    assert steady.metadata[PASS_RATE] == 1.0 and verdicts[1].runs >= 12
    assert PASS_RATE not in fixed.metadata and verdicts[2].runs == 1
    assert flaky_references([flaky, steady, fixed]) == ["noise/flaky-reference"]


FAKE_RUN = ("    from qiskit import QuantumCircuit, transpile\n"
            "    from qiskit_ibm_runtime.fake_provider import FakeManilaV2\n"
            "    circuit = QuantumCircuit(2)\n    circuit.h(0)\n    circuit.cx(0, 1)\n    circuit.measure_all()\n"
            "    backend = FakeManilaV2()\n"
            "    return backend.run(transpile(circuit, backend, seed_transpiler=1), shots=200, seed_simulator=11)"
            ".result().get_counts()\n")


def test_provenance_records_the_backend_noise_shots_and_seed_of_a_fake_backend_run(verifier):
    task = Task(task_id="noise/provenance", family="qhe", harness="qhe", entry_point="counts", prompt=(
        'def counts():\n    """Bell counts on a noisy fake backend."""\n'), tests=(
        "def check(candidate):\n    assert sum(candidate().values()) == 200\n"))
    with noise(verifier, max_runs=1):
        shared = verifier.verify_one(VerificationJob(task, FAKE_RUN), isolation="shared")
        # Split: the checker writes the record; here the tests run the backend themselves (unseeded).
        checked = replace_tests(task, "from qiskit_ibm_runtime.fake_provider import FakeManilaV2\n"
                                      "from qiskit import transpile\n"
                                      "def check(candidate):\n    backend = FakeManilaV2()\n"
                                      "    backend.run(transpile(candidate(), backend), shots=300).result()\n")
        split = verifier.verify_one(VerificationJob(checked, BELL), isolation="split")
    assert shared.status == "passed" and shared.provenance == {
        "runs": [{"backend": "fake_manila", "noise": True, "shots": 200, "seed": 11}], "total": 1}
    assert split.status == "passed" and split.isolation == "split"
    assert split.provenance == {"runs": [{"backend": "fake_manila", "noise": True, "shots": 300, "seed": None}],
                                "total": 1}


BELL = ("    from qiskit import QuantumCircuit\n    circuit = QuantumCircuit(2)\n    circuit.h(0)\n"
        "    circuit.cx(0, 1)\n    circuit.measure_all()\n    return circuit\n")


def replace_tests(task: Task, tests: str) -> Task:
    return Task(**{**task.__dict__, "tests": tests, "metadata": {}})


def test_a_forged_provenance_record_is_sanitised(verifier):
    forger = ("    import sys\n    log = sys.modules['actors.verify.sandbox.provenance']._log\n"
              "    log['runs'] += [1, 'x', None, {'backend': 5, 'noise': True}, {'backend': 'b', 'noise': 'yes'},\n"
              "                    {'backend': 'b', 'noise': False, 'shots': -3, 'seed': None},\n"
              "                    {'backend': 'b', 'noise': False, 'shots': 2.5, 'seed': None},\n"
              "                    {'backend': 'kept', 'noise': False, 'shots': 8, 'seed': [1]},\n"
              "                    {'backend': 'kept', 'noise': True, 'shots': 8, 'seed': 3, 'extra': 'x' * 9}]\n"
              "    log['total'] = 'many'\n    return 1\n")
    task = Task(task_id="noise/forged", family="qhe", harness="qhe", entry_point="one",
                prompt='def one():\n    """One."""\n', tests="def check(candidate):\n    assert candidate() == 1\n")
    verdict = verifier.verify_one(VerificationJob(task, forger), isolation="shared")
    assert verdict.status == "passed"
    assert verdict.provenance == {"runs": [{"backend": "kept", "noise": True, "shots": 8, "seed": 3}], "total": 1}
    assert read_provenance({"provenance": ["not", "a", "dict"]}) == {}
    assert read_provenance({"provenance": {"runs": "x" * 10, "total": 10**12}}) == {}
    many = [{"backend": "b" * 500, "noise": False, "shots": None, "seed": "Generator"}] * 40
    read = read_provenance({"provenance": {"runs": many, "total": 40}})
    assert len(read["runs"]) == 16 and read["total"] == 40 and read["runs"][0]["backend"] == "b" * 100


def test_forked_children_draw_different_numpy_numbers(verifier):
    # Each child of the zygote starts from the zygote's numpy state unless it is reseeded at fork.
    program = Task(task_id="noise/numpy", family="test", harness="program", prompt="", tests="")
    code = "import sys\nimport numpy\nprint('draw', numpy.random.random_sample(), file=sys.stderr)\n"
    with noise(verifier, max_runs=1):
        verdicts = verifier.run([VerificationJob(program, code, index) for index in range(4)], "shared")
    draws = [re.search(r"draw (\S+)", verdict.stderr_tail).group(1) for verdict in verdicts]
    assert len(set(draws)) == 4, draws


def test_a_reference_that_passes_split_only_by_chance_is_calibrated_shared(verifier):
    """Its tests seed numpy in the checker (as QHE's task 63 does): shared, the candidate draws from
    that seed and always passes; split, its own draws pass 7 times in 10: more often than not, so
    the split verdict settles as a pass, but one that does not hold on every run is no evidence
    for split (30 of 30 by chance: twice in 100,000)."""
    tests = ("def check(candidate):\n    np.random.seed(7)\n    want = np.random.random()\n"
             "    np.random.seed(7)\n    got = candidate()\n    assert got == want or got < 0.7\n")
    task = draw_task(tests, COIN, "noise/seeded-by-the-tests")
    with noise(verifier, reference_runs=30):
        modes, [verdict] = verifier.calibrate([task])
    assert modes == {task.task_id: "shared"}
    assert (verdict.status, verdict.isolation, verdict.pass_rate) == ("passed", "shared", 1.0)
