"""`qvr bench verifier`: verifications per second through three executors, side by side.

(a) ``subprocess``: a fresh ``python -I`` per job (the baseline), (b) ``forked``: the zygote
fork-server with full isolation, tests in the candidate's child (``shared``), (b') ``split``: the
same with the tests in a second, clean checker child, (c) ``inprocess``: the warm zygote running
the job itself, with no fork and no isolation (the floor), and (c') ``bare``: a plain fork of the
warm zygote per job with no isolation, the floor of any fork-server, which splits what
``forked`` costs over ``inprocess`` into the fork itself and the isolation. Same jobs, same slots,
one run, the executors taking turns over several rounds (each one's rate is its median); zygote
start-up is excluded from the rates and reported apart.

Workloads: ``small``, many short Qiskit unit tests (build, transpile for a fake backend,
simulate, assert: the shape of GRPO's synthetic tasks); ``qhe``, QHE's canonical solutions that
pass offline; ``qasm``, QUASAR tasks' full reward (parse, distributions, energy, COBYLA) in seconds
per sample by qubit count, one at a time on one forked split slot. The subprocess baseline runs a
fixed prefix of each workload (it is 20-100x slower) and the forked/subprocess ratio compares the
two on that same prefix; the JSON says which jobs each ratio used.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from actors.config import Config
from actors.contracts import Task
from actors.verify.config import VerifierConfig

if TYPE_CHECKING:  # the sandbox (qiskit) is imported when a benchmark runs, not by `qvr bench --help`
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier

log = logging.getLogger("qvr.bench")


class VerifierBenchConfig(Config):
    small_jobs: int = Field(60, ge=2, le=100_000)
    """Jobs of the ``small`` workload through every executor but the subprocess baseline."""

    subprocess_jobs: int = Field(8, ge=2, le=10_000)
    """Jobs of each workload through the (slow) subprocess baseline: a fixed prefix."""

    qhe_source: str | None = None
    """Qiskit HumanEval JSON (or any task source) for the ``qhe`` workload; None skips it."""

    slots: int = Field(2, ge=1, le=512)
    """Slots of every executor."""

    timeout_s: float = Field(90.0, gt=0)
    """Per-verification timeout (QHE's task 100 needs about 40 s on 2 cores)."""

    rounds: int = Field(3, ge=1, le=100)
    """Rounds of the ``small`` workload: the executors take turns each round and each one's rate
    is its median, so that noise from a shared machine (seen here: +-20% between runs) does not
    land on one executor alone."""

    qhe_rounds: int = Field(1, ge=1, le=100)
    """Rounds of the ``qhe`` workload (about 25 s per executor per round on 2 cores)."""

    workloads: list[Literal["small", "qhe", "qasm"]] = ["small", "qhe", "qasm"]
    """Which workloads run (``qhe`` also needs ``qhe_source``)."""

    qasm_qubits: list[int] = [4, 6, 10]
    """``qasm`` workload: one generated QUASAR task (vertex cover, 2 layers) per qubit count."""

    qasm_samples: int = Field(4, ge=1, le=1000)
    """``qasm`` workload: candidates per task (the reference, then copies with shifted angles),
    each scored in full (parse, distributions, energy, COBYLA), one at a time on one slot."""


SMALL_TESTS = """import unittest

class TestGHZ(unittest.TestCase):
    def test_shots(self):
        self.assertEqual(sum(counts.values()), 256)

    def test_outcomes(self):
        self.assertLessEqual(set(counts), {"0" * n, "1" * n})

    def test_native(self):
        self.assertLessEqual(set(transpiled.count_ops()), set(backend.target.operation_names) | {"barrier", "measure"})
"""


def small_jobs(count: int) -> list[VerificationJob]:
    from actors.verify.executor import VerificationJob

    jobs = []
    for index in range(count):
        qubits, seed = 2 + index % 4, index
        code = (
            "from qiskit import QuantumCircuit, transpile\nfrom qiskit_aer import AerSimulator\n"
            "from qiskit_ibm_runtime.fake_provider import FakeManilaV2\n"
            f"n = {qubits}\nqc = QuantumCircuit(n)\nqc.h(0)\nfor q in range(n - 1):\n    qc.cx(q, q + 1)\n"
            "qc.measure_all()\nbackend = FakeManilaV2()\n"
            f"transpiled = transpile(qc, backend=backend, optimization_level=1, seed_transpiler={seed})\n"
            f"counts = AerSimulator().run(transpiled, shots=256, seed_simulator={seed}).result().get_counts()\n")
        task = Task(task_id=f"small/{index}", family="bench", harness="unittest", prompt="", tests=SMALL_TESTS)
        jobs.append(VerificationJob(task, code, 0))
    return jobs


def qhe_jobs(source: str) -> list[VerificationJob]:
    from actors.verify.verifier import reference_jobs
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks
    from pipelines.tasks.qhe import passes_offline

    return reference_jobs([task for task in load_tasks(TaskSourceConfig(source=source)) if passes_offline(task.task_id)])


EXECUTORS = {"forked": ("forked", "shared"), "split": ("forked", "split"), "inprocess": ("inprocess", "shared"),
             "bare": ("bare", "shared")}
"""Name -> (executor, isolation) of what runs every job of a workload."""


def _verifier(executor: str, isolation: str, config: VerifierBenchConfig) -> tuple[Verifier, float]:
    from actors.verify.verifier import Verifier

    started = time.monotonic()
    verifier = Verifier(VerifierConfig(isolation=isolation, timeout_s=config.timeout_s), slots=config.slots,
                        executor=executor)
    return verifier, time.monotonic() - started


def _timed_run(name: str, verifier: Verifier, jobs: list[VerificationJob]) -> dict[str, Any]:
    started = time.monotonic()
    verdicts = verifier.run(jobs)
    wall_s = time.monotonic() - started
    passed = sum(verdict.status == "passed" for verdict in verdicts)
    log.info("%-10s %4d jobs in %6.1f s: %7.2f/s (%d passed)", name, len(jobs), wall_s, len(jobs) / wall_s, passed)
    return {"jobs": len(jobs), "passed": passed, "wall_s": round(wall_s, 3), "per_s": len(jobs) / wall_s}


def measure(executor: str, jobs: list[VerificationJob], config: VerifierBenchConfig) -> dict[str, Any]:
    """One executor on ``jobs``, once (zygote start-up reported apart, not in the rate)."""
    verifier, startup_s = _verifier(executor, "shared", config)
    with verifier:
        figures = _timed_run(executor, verifier, jobs)
    return {**figures, "startup_s": round(startup_s, 3)}


def interleaved(jobs: list[VerificationJob], config: VerifierBenchConfig, rounds: int) -> dict[str, dict[str, Any]]:
    """Every executor of :data:`EXECUTORS` on the same jobs, round after round with the executors
    taking turns, so that a slow spell of a shared machine hits them alike; each executor's rate
    is its median over the rounds. Zygotes start once, before the first round."""
    verifiers, startup = {}, {}
    try:
        for name, (executor, isolation) in EXECUTORS.items():
            verifiers[name], startup[name] = _verifier(executor, isolation, config)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in EXECUTORS}
        for round_index in range(rounds):
            log.info("round %d of %d (%d jobs)", round_index + 1, rounds, len(jobs))
            for name, verifier in verifiers.items():
                runs[name].append(_timed_run(name, verifier, jobs))
    finally:
        for verifier in verifiers.values():
            verifier.close()
    results = {}
    for name, figures in runs.items():
        median = statistics.median(run["per_s"] for run in figures)
        results[name] = {"jobs": len(jobs), "passed": min(run["passed"] for run in figures), "per_s": median,
                         "per_s_rounds": [round(run["per_s"], 3) for run in figures], "startup_s": round(startup[name], 3)}
    return results


def workload(jobs: list[VerificationJob], config: VerifierBenchConfig, rounds: int) -> dict[str, Any]:
    """Forked against subprocess on the same prefix (the baseline is slow); the other executors
    against each other on every job, interleaved over ``rounds``."""
    prefix = jobs[: config.subprocess_jobs]
    runs = {"subprocess": measure("subprocess", prefix, config), "forked_prefix": measure("forked", prefix, config),
            **interleaved(jobs, config, rounds)}
    rate = {name: figures["per_s"] for name, figures in runs.items()}
    return {
        "subprocess_per_s": round(rate["subprocess"], 3), "forked_per_s": round(rate["forked"], 3),
        "inprocess_per_s": round(rate["inprocess"], 3),
        "forked_over_subprocess": round(rate["forked_prefix"] / rate["subprocess"], 2),
        "forked_over_inprocess": round(rate["forked"] / rate["inprocess"], 3),
        "split_per_s": round(rate["split"], 3), "split_over_forked": round(rate["split"] / rate["forked"], 3),
        "bare_per_s": round(rate["bare"], 3), "bare_over_inprocess": round(rate["bare"] / rate["inprocess"], 3),
        "forked_over_bare": round(rate["forked"] / rate["bare"], 3),
        "subprocess_subset": f"first {len(prefix)} of {len(jobs)} jobs (forked measured on the same ones for the ratio)",
        "rounds": rounds, "runs": runs,
    }


def qasm_workload(config: VerifierBenchConfig) -> dict[str, Any]:
    """Seconds per ``qasm`` verification (QUASAR's full reward, COBYLA included) by qubit count,
    one job at a time on one forked split slot; task generation is timed apart."""
    import re

    from actors.contracts import Completion
    from actors.verify.verifier import Verifier
    from pipelines.tasks.quasar.generate import generate_task

    started = time.monotonic()
    tasks = [generate_task("vertex_cover", seed=0, qubits=qubits, layers=2) for qubits in config.qasm_qubits]
    generate_s = time.monotonic() - started
    per_sample: dict[str, float] = {}
    rewards: dict[str, list[float]] = {}
    with Verifier(VerifierConfig(isolation="split", timeout_s=config.timeout_s), slots=1) as verifier:
        for task in tasks:
            texts = [f"```qasm\n{task.reference_solution}```"] + [
                "```qasm\n" + re.sub(r"(rx|rz)\(([-0-9.e]+)\)", lambda m, s=shift: f"{m.group(1)}({float(m.group(2)) + s})",
                                      task.reference_solution) + "```"
                for shift in (0.05 * i for i in range(1, config.qasm_samples))]
            completions = [Completion(task_id=task.task_id, sample_idx=i, text=text) for i, text in enumerate(texts)]
            verdicts = [verifier.verify([task], [completion])[0] for completion in completions]  # one at a time
            key = f"{task.metadata['n_qubits']}q"
            per_sample[key] = round(statistics.median(verdict.duration_s for verdict in verdicts), 3)
            rewards[key] = [round(verdict.reward, 4) for verdict in verdicts]
            log.info("qasm %s: %.3f s per sample, rewards %s", key, per_sample[key], rewards[key])
    return {"per_sample_s": per_sample, "rewards": rewards, "samples_per_task": config.qasm_samples,
            "generate_s": round(generate_s, 2)}


def run(config: VerifierBenchConfig) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "small" in config.workloads:
        results["small"] = workload(small_jobs(config.small_jobs), config, config.rounds)
    if "qhe" in config.workloads and config.qhe_source:
        results["qhe"] = workload(qhe_jobs(config.qhe_source), config, config.qhe_rounds)
    elif "qhe" in config.workloads:
        log.warning("qhe workload skipped: set bench.verifier.qhe_source (see configs/bench-verifier.yaml)")
    qasm = qasm_workload(config) if "qasm" in config.workloads else None
    for name, figures in results.items():
        print(f"{name:6s} subprocess {figures['subprocess_per_s']:8.2f}/s  forked {figures['forked_per_s']:8.2f}/s  "
              f"in-process {figures['inprocess_per_s']:8.2f}/s  forked/subprocess {figures['forked_over_subprocess']:6.1f}x  "
              f"forked/in-process {figures['forked_over_inprocess']:.2f}  split {figures['split_per_s']:8.2f}/s  "
              f"split/forked {figures['split_over_forked']:.2f}  bare fork {figures['bare_per_s']:8.2f}/s  "
              f"bare/in-process {figures['bare_over_inprocess']:.2f}  forked/bare {figures['forked_over_bare']:.2f}")
    if qasm is not None:
        results["qasm"] = qasm
        print("qasm   " + "  ".join(f"{key} {value:.3f} s/sample" for key, value in qasm["per_sample_s"].items())
              + "  (QUASAR's full reward, COBYLA included, one slot, split)")
    return results
