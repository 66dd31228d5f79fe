"""`qvr bench verifier`: verifications per second through three executors, side by side.

(a) ``subprocess``: a fresh ``python -I`` per job (the baseline), (b) ``forked``: the zygote
fork-server with full isolation, tests in the candidate's child (``shared``), (b') ``split``: the
same with the tests in a second, clean checker child, (c) ``inprocess``: the warm zygote running
the job itself, with no fork and no isolation (the floor). Same jobs, same slots, one run; zygote start-up is
excluded from the rates and reported apart.

Workloads: ``small``, many short Qiskit unit tests (build, transpile for a fake backend,
simulate, assert: the shape of GRPO's synthetic tasks); ``qhe``, QHE's canonical solutions that
pass offline. The subprocess baseline runs a fixed prefix of each workload (it is 20-100x
slower) and the forked/subprocess ratio compares the two on that same prefix; the JSON says
which jobs each ratio used.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier, reference_jobs

log = logging.getLogger("qvr.bench")


class VerifierBenchConfig(Config):
    small_jobs: int = Field(60, ge=2, le=100_000)
    """Jobs of the ``small`` workload through forked and in-process."""

    subprocess_jobs: int = Field(8, ge=2, le=10_000)
    """Jobs of each workload through the (slow) subprocess baseline: a fixed prefix."""

    qhe_source: str | None = None
    """Qiskit HumanEval JSON (or any task source) for the ``qhe`` workload; None skips it."""

    slots: int = Field(2, ge=1, le=512)
    """Slots of every executor."""

    timeout_s: float = Field(90.0, gt=0)
    """Per-verification timeout (QHE's task 100 needs about 40 s on 2 cores)."""


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
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks
    from pipelines.tasks.qhe import passes_offline

    return reference_jobs([task for task in load_tasks(TaskSourceConfig(source=source)) if passes_offline(task.task_id)])


def measure(executor: str, jobs: list[VerificationJob], config: VerifierBenchConfig,
            isolation: str = "shared") -> dict[str, Any]:
    verifier_config = VerifierConfig(executor=executor, isolation=isolation, timeout_s=config.timeout_s)
    started = time.monotonic()
    with Verifier(verifier_config, slots=config.slots) as verifier:
        startup_s = time.monotonic() - started
        started = time.monotonic()
        verdicts = verifier.run(jobs)
        wall_s = time.monotonic() - started
    passed = sum(verdict.status == "passed" for verdict in verdicts)
    log.info("%-10s %-6s %4d jobs in %6.1f s: %7.2f/s (%d passed; start-up %.1f s)", executor, isolation, len(jobs),
             wall_s, len(jobs) / wall_s, passed, startup_s)
    return {"jobs": len(jobs), "passed": passed, "wall_s": round(wall_s, 3), "per_s": len(jobs) / wall_s,
            "startup_s": round(startup_s, 3)}


def workload(jobs: list[VerificationJob], config: VerifierBenchConfig) -> dict[str, Any]:
    """Forked against subprocess on the same prefix (the baseline is slow); forked against
    in-process on every job."""
    prefix = jobs[: config.subprocess_jobs]
    runs = {"subprocess": measure("subprocess", prefix, config), "forked_prefix": measure("forked", prefix, config),
            "forked": measure("forked", jobs, config), "split": measure("forked", jobs, config, isolation="split"),
            "inprocess": measure("inprocess", jobs, config)}
    rate = {name: figures["per_s"] for name, figures in runs.items()}
    return {
        "subprocess_per_s": round(rate["subprocess"], 3), "forked_per_s": round(rate["forked"], 3),
        "inprocess_per_s": round(rate["inprocess"], 3),
        "forked_over_subprocess": round(rate["forked_prefix"] / rate["subprocess"], 2),
        "forked_over_inprocess": round(rate["forked"] / rate["inprocess"], 3),
        "split_per_s": round(rate["split"], 3), "split_over_forked": round(rate["split"] / rate["forked"], 3),
        "subprocess_subset": f"first {len(prefix)} of {len(jobs)} jobs (forked measured on the same ones for the ratio)",
        "runs": runs,
    }


def run(config: VerifierBenchConfig) -> dict[str, Any]:
    results: dict[str, Any] = {"small": workload(small_jobs(config.small_jobs), config)}
    if config.qhe_source:
        results["qhe"] = workload(qhe_jobs(config.qhe_source), config)
    else:
        log.warning("qhe workload skipped: set bench.verifier.qhe_source (see configs/bench-verifier.yaml)")
    for name, figures in results.items():
        print(f"{name:6s} subprocess {figures['subprocess_per_s']:8.2f}/s  forked {figures['forked_per_s']:8.2f}/s  "
              f"in-process {figures['inprocess_per_s']:8.2f}/s  forked/subprocess {figures['forked_over_subprocess']:6.1f}x  "
              f"forked/in-process {figures['forked_over_inprocess']:.2f}  split {figures['split_per_s']:8.2f}/s  "
              f"split/forked {figures['split_over_forked']:.2f}")
    return results
