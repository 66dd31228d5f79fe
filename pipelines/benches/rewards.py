"""`qvr bench rewards`: what each reward set costs per sample, side by side (issue 17).

The same QSpark-style jobs (a GHZ circuit named ``qc`` on 2-5 qubits, with the task's reference;
some candidates deeper than the reference, one in four importing the removed
``qiskit.providers.aer``) verified in split mode under four reward sets, taking turns over several
rounds (each one's rate is its median):

- ``default``: the IBM paper's pass fraction + format (no measure is taken);
- ``deprecation``: the default + the deprecation penalty (flake8-qiskit-migration's visitor on
  the code, in the parent);
- ``qspark``: QSpark's five parts (the split checker also runs the reference, a statevector
  simulation, a 2048-shot Aer run and a fidelity per sample);
- ``qspark_paper``: pass fraction + the depth and qubit penalties (the same checker measures).

Printed: CPU seconds (this process, the zygotes and every child they reaped) and wall seconds
per sample of each set, each with its ratio to ``default`` (the CPU figure is the one to read on
a shared machine: wall time there moves with other load); and, apart, the parent's
cost of the deprecation lint alone per sample (it adds no child work) and the cost of the
``circuit`` measures alone, taken in-process (what the checker adds per sample, without the
sandbox's noise).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Task

if TYPE_CHECKING:
    from actors.verify.executor import VerificationJob

log = logging.getLogger("qvr.bench")

QSPARK = {"qspark_format": 1.0, "qspark_imports": 1.0, "qspark_compile": 1.0, "qspark_fidelity": 1.0,
          "qspark_efficiency": 1.0}
REWARD_SETS = {
    "default": {"pass_fraction": 1.0, "format": 0.1},
    "deprecation": {"pass_fraction": 1.0, "format": 0.1, "deprecation": 1.0},
    "qspark": QSPARK,
    "qspark_paper": {"pass_fraction": 0.7, "qspark_depth_penalty": 0.2, "qspark_qubit_penalty": 0.1},
}

TESTS = """import unittest
from qiskit.quantum_info import Statevector

class TestGHZ(unittest.TestCase):
    def test_width(self):
        self.assertEqual(qc.num_qubits, {n})

    def test_state(self):
        expected = [0] * {size}
        expected[0] = expected[-1] = 2 ** -0.5
        self.assertTrue(Statevector(qc.remove_final_measurements(inplace=False)).equiv(Statevector(expected)))
"""


class RewardsBenchConfig(Config):
    jobs: int = Field(24, ge=2, le=10_000)
    """Samples verified under each reward set, per round."""

    slots: int = Field(2, ge=1, le=512)
    """Slots of each verifier."""

    rounds: int = Field(3, ge=1, le=100)
    """Rounds: the reward sets take turns each round; each one's figure is its median."""

    timeout_s: float = Field(60.0, gt=0)
    """Per-verification timeout."""


def ghz(n: int, extra: int = 0, deprecated: bool = False) -> str:
    lines = ["from qiskit import QuantumCircuit"]
    lines += ["from qiskit.providers.aer import AerSimulator"] if deprecated else []
    lines += [f"qc = QuantumCircuit({n})", "qc.h(0)", f"for q in range({n} - 1):", "    qc.cx(q, q + 1)"]
    lines += [f"qc.z({n - 1})", f"qc.z({n - 1})"] * extra
    return "\n".join(lines) + "\n"


def jobs(count: int) -> list[VerificationJob]:
    from actors.verify.executor import VerificationJob

    made = []
    for index in range(count):
        n = 2 + index % 4
        task = Task(task_id=f"ghz/{n}", family="bench", harness="unittest", prompt=f"Prepare a {n}-qubit GHZ state in qc.",
                    tests=TESTS.format(n=n, size=2 ** n), reference_solution=ghz(n))
        code = ghz(n, extra=index % 3, deprecated=index % 4 == 3)
        made.append(VerificationJob(task, code, index, f"<reasoning>plan</reasoning><answer>```python\n{code}```</answer>"))
    return made


def lint_cost(samples: list[VerificationJob], repeats: int = 20) -> float:
    """Seconds per sample of the deprecation measures alone (parent side)."""
    from actors.verify.rewards.deprecation import code_measures

    started = time.perf_counter()
    for _ in range(repeats):
        for job in samples:
            code_measures(job.code, "", False, 0.1)
    return (time.perf_counter() - started) / (repeats * len(samples))


def circuit_measures_cost(samples: list[VerificationJob], repeats: int = 3) -> float:
    """Seconds per sample of the ``circuit`` measures alone, taken in this process on values of
    programs run here (no fork, no crossing): what the checker adds per sample, without noise
    from the sandbox."""
    from actors.verify.sandbox.harness import fresh_namespace
    from actors.verify.sandbox.harnesses.registry import Candidate
    from actors.verify.sandbox.measures.registry import PROVIDERS, Absent

    class Local(Candidate):
        def __init__(self, namespace: dict[str, Any]) -> None:
            self.namespace = namespace

        def bind(self, namespace: dict[str, Any], name: str) -> None:
            if name in self.namespace:
                namespace[name] = self.namespace[name]

    provider, prepared = PROVIDERS["circuit"], []
    for job in samples:
        namespace = fresh_namespace()
        try:
            exec(compile(job.code or "", "<sample>", "exec"), namespace)
            candidate: Candidate = Local(namespace)
        except Exception:  # noqa: BLE001 - the deprecated import fails here as in the sandbox
            candidate = Absent()
        prepared.append((provider.params(job.task), {"harness": job.task.harness, "prompt": job.task.prompt}, candidate))
    started = time.perf_counter()
    for _ in range(repeats):
        for params, payload, candidate in prepared:
            provider.measure(params, payload, candidate)
    return (time.perf_counter() - started) / (repeats * len(prepared))


def cpu_s(verifier: Any) -> float:
    """CPU seconds spent so far by this process and by the verifier's zygotes with every child
    they reaped (``/proc/PID/stat``: utime, stime, cutime, cstime): unlike wall time, hardly moved
    by other load on a shared machine."""
    import os

    total = time.process_time()
    for server in verifier.servers:
        with open(f"/proc/{server.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def run(config: RewardsBenchConfig) -> dict[str, Any]:
    from actors.verify.config import VerifierConfig
    from actors.verify.rewards.config import RewardConfig
    from actors.verify.verifier import Verifier

    samples = jobs(config.jobs)
    seconds: dict[str, list[float]] = {name: [] for name in REWARD_SETS}
    cpu: dict[str, list[float]] = {name: [] for name in REWARD_SETS}
    parts: dict[str, dict[str, float]] = {}
    base = VerifierConfig(isolation="split", timeout_s=config.timeout_s)
    # One verifier (the same warm zygotes) for every set: rewards, and the measures they ask the
    # checker for, are chosen in this process per job, from the verifier's config.
    with Verifier(base, slots=config.slots) as verifier:
        for round_index in range(config.rounds):
            log.info("round %d of %d (%d samples per reward set)", round_index + 1, config.rounds, len(samples))
            for name, weights in REWARD_SETS.items():
                verifier.config = base.model_copy(update={"rewards": RewardConfig(weights=weights)})
                started, cpu_started = time.monotonic(), cpu_s(verifier)
                verdicts = verifier.run(samples)
                seconds[name].append((time.monotonic() - started) / len(samples))
                cpu[name].append((cpu_s(verifier) - cpu_started) / len(samples))
                parts[name] = {part: round(statistics.mean(v.reward_parts.get(part, 0.0) for v in verdicts), 4)
                               for part in REWARD_SETS[name]}
    per_sample = {name: statistics.median(values) for name, values in seconds.items()}
    cpu_per_sample = {name: statistics.median(values) for name, values in cpu.items()}
    results: dict[str, Any] = {
        name: {"s_per_sample": round(per_sample[name], 4), "over_default": round(per_sample[name] / per_sample["default"], 3),
               "cpu_s_per_sample": round(cpu_per_sample[name], 4),
               "cpu_over_default": round(cpu_per_sample[name] / cpu_per_sample["default"], 3),
               "s_per_sample_rounds": [round(value, 4) for value in seconds[name]],
               "cpu_s_per_sample_rounds": [round(value, 4) for value in cpu[name]], "mean_parts": parts[name]}
        for name in REWARD_SETS}
    results["deprecation_lint_ms_per_sample"] = round(lint_cost(samples) * 1000, 4)
    results["circuit_measures_ms_per_sample"] = round(circuit_measures_cost(samples) * 1000, 3)
    results["samples"], results["slots"], results["rounds"] = len(samples), config.slots, config.rounds
    for name in REWARD_SETS:
        print(f"{name:13s} CPU {cpu_per_sample[name] * 1000:6.1f} ms/sample (x{results[name]['cpu_over_default']:.2f} of "
              f"default)  wall {per_sample[name] * 1000:6.1f} ms/sample (x{results[name]['over_default']:.2f})  "
              f"parts {parts[name]}")
    print(f"deprecation lint alone (parent): {results['deprecation_lint_ms_per_sample']:.3f} ms/sample; "
          f"circuit measures alone (in-process): {results['circuit_measures_ms_per_sample']:.1f} ms/sample")
    return results
