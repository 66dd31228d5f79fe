"""`qvr bench qpu`: many concurrent callers against one fake backend with IBM-style limits, in
scaled time, with transient failures injected at the backend (and retried by the gateway).

The backend is a RecordingBackend: it keeps its own record of every submission it received,
retries included. ``backend_violations`` (rolling minutes that held more submissions than allowed,
submissions that arrived while max_pending others were pending, rolling windows over the QPU
seconds) and the achieved rate come from that record; ``violations`` and ``max_in_flight`` are
the gateway's own view, kept beside them.

``tiers``: what cheaper simulator tiers (``verifier.tiers``) save on the QPU. A few GRPO steps of
QPU tasks (:data:`TIER_TASKS`: a Bell pair and a 3-qubit GHZ state sampled with ``SamplerV2``, a
Bell pair's ZZ with ``EstimatorV2``, all on ``ibm_manila`` through the runtime primitives), one
group of candidates per task, each candidate right or wrong with its task's chance (a policy that
has learnt one task, half of another, none of the third) and then one of the task's right or
wrong programs, drawn with a seed. Every step's candidates are verified by real sandboxes once
QPU-only (``verifier.tiers=[]``) and once under each tier set, each run on a fresh fake QPU with
noise behind a gateway of its own (a RecordingBackend whose record gives the submissions and QPU
seconds per step: evidence from the backend's side). The GHZ test's threshold (0.85 of the
shots in 000 or 111) lies near what the noisy device reaches, so hardware noise splits right
candidates that the ideal simulator always passes (the noisy tier, a draw of the same noise model,
sometimes stops one). Reported per tier set: QPU submissions and seconds per
step against QPU-only, groups that spent no QPU time, and how often a candidate's tiered reward
differs from its QPU-only one (``disagreement_rate``), split into the tier's own doing (stopped
by a tier, passed on the QPU-only run: ``stopped_but_passed_on_qpu``) and the QPU's run-to-run
noise (reached the QPU both times, rewards differ: ``qpu_rerun_disagreement``)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Literal

from pydantic import Field

from actors.config import Config
from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.evidence import RecordingBackend, rate_under_backlog, rate_violations
from actors.verify.qpu.gateway import QpuGateway


class TiersBenchConfig(Config):
    steps: int = Field(4, ge=0)
    """GRPO steps (0: no tiers figure). Each step has one group per task of TIER_TASKS."""

    group_size: int = Field(8, ge=1)
    """Candidates per group (GRPO's samples per prompt)."""

    right_shares: list[float] = [0.75, 0.5, 0.0]
    """Per task (bell, ghz, zz), the chance that a candidate is a right program: one task learnt,
    one half learnt, one not at all (its groups fail every tier)."""

    tier_sets: list[list[Literal["ideal", "noisy"]]] = [["ideal"], ["ideal", "noisy"]]
    """The ``verifier.tiers`` compared with QPU-only, each on its own fake QPU."""

    run_s: float = Field(2.0, gt=0)
    """QPU seconds each submission holds the fake device and is billed (a small sampler job on IBM
    hardware is billed a few seconds), so QPU seconds count what a device would bill, not how long
    this machine takes to simulate."""

    shots: int = Field(400, ge=1)
    """Shots of every sampler job."""

    slots: int = Field(2, ge=1)
    """Sandbox slots of each verifier."""

    time_scale: float = Field(30.0, gt=0)
    """Gateway seconds per real second."""

    seed: int = 0
    """Seed of the candidates drawn."""


class QpuBenchConfig(Config):
    jobs: int = Field(200, ge=2)
    """Jobs in all."""

    callers: int = Field(16, ge=1)
    """Concurrent callers (verifications waiting on the QPU)."""

    max_pending: int = Field(3, ge=1)
    """IBM's pending-job limit."""

    jobs_per_minute: float = Field(30.0, gt=0)
    """The rate limit (submissions per rolling minute, retries included)."""

    time_scale: float = Field(30.0, gt=0)
    """Gateway seconds per real second."""

    failure_rate: float = Field(0.25, ge=0, lt=1)
    """Chance that the backend fails a submission transiently (the gateway retries it)."""

    seed: int = 0
    """Seed of the injected failures."""

    max_retries: int = Field(8, ge=0, le=20)
    """Retries per job before the gateway gives up."""

    tiers: TiersBenchConfig = TiersBenchConfig()
    """The tiers figure: QPU submissions and seconds per GRPO step with and without simulator
    tiers, and how often the tiered reward differs from the QPU-only one."""


def run(config: QpuBenchConfig) -> dict[str, Any]:
    from qiskit import QuantumCircuit

    from actors.verify.sandbox.codecs.registry import encode

    qpu = QpuConfig(time_scale=config.time_scale, noise=False, max_retries=config.max_retries, backoff_s=1.0,
                    limits={"max_pending": config.max_pending, "jobs_per_minute": config.jobs_per_minute})
    backend = RecordingBackend(qpu, fail_probability=config.failure_rate, seed=config.seed)
    gateway = QpuGateway(qpu, runner=backend)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    pubs = encode([circuit])

    async def caller(index: int, count: int) -> None:
        for _ in range(count):
            await gateway.run(f"caller-{index}", "ibm_manila", "sampler", pubs, {"shots": 32})

    async def everyone() -> None:
        shares = [config.jobs // config.callers + (1 if i < config.jobs % config.callers else 0)
                  for i in range(config.callers)]
        await asyncio.gather(*(caller(i, n) for i, n in enumerate(shares)))

    started = time.monotonic()
    asyncio.run(everyone())
    report = gateway.report()
    checked = backend.violations(qpu.limits)
    seen = checked["backends"]["ibm_manila"]
    received = [submission.at for submission in backend.submissions]
    achieved = rate_under_backlog(received, report["backlog"]["ibm_manila"])
    result = {"jobs": report["stats"].get("completed", 0), "callers": config.callers, "max_pending": config.max_pending,
              "limit_per_min": config.jobs_per_minute, "achieved_per_min": round(achieved, 3),
              "utilisation": round(achieved / config.jobs_per_minute, 3),
              "submissions": seen["submissions"], "retries": report["stats"].get("retried", 0),
              "failed_jobs": report["stats"].get("failed", 0),
              "max_in_flight": report["max_in_flight"]["ibm_manila"], "backend_max_pending": seen["max_pending"],
              "violations": rate_violations(report["starts"]["ibm_manila"], config.jobs_per_minute),
              "backend_violations": checked["violations"], "backend": seen,
              "real_s": round(time.monotonic() - started, 2)}
    print(f"qpu    {result['jobs']} jobs from {config.callers} callers, {result['submissions']} submissions at the "
          f"backend ({result['retries']} retries): {achieved:.2f}/min under backlog against a limit of "
          f"{config.jobs_per_minute:g}/min (utilisation {result['utilisation']:.3f}), at most "
          f"{result['backend_max_pending']} pending at the backend (limit {config.max_pending}), "
          f"{result['backend_violations']} violations in the backend's record ({result['violations']} in the gateway's)")
    if config.tiers.steps:
        result["tiers"] = run_tiers(config.tiers)
    return result


# ---------------------------------------------------------------- the tiers figure

_SAMPLE = ("from qiskit import QuantumCircuit, transpile\n"
           "from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2\n"
           "backend = QiskitRuntimeService().backend({backend!r})\n"
           "qc = QuantumCircuit({qubits})\n{gates}qc.measure_all()\n"
           "counts = SamplerV2(mode=backend).run([transpile(qc, backend, seed_transpiler=1)], shots={shots})"
           ".result()[0].data.meas.get_counts()\n")
_ESTIMATE = ("from qiskit import QuantumCircuit, transpile\n"
             "from qiskit.quantum_info import SparsePauliOp\n"
             "from qiskit_ibm_runtime import QiskitRuntimeService, EstimatorV2\n"
             "backend = QiskitRuntimeService().backend('ibm_manila')\n"
             "qc = QuantumCircuit(2)\n{gates}isa = transpile(qc, backend, seed_transpiler=1)\n"
             "zz = float(EstimatorV2(mode=backend).run([(isa, SparsePauliOp('ZZ').apply_layout(isa.layout))])"
             ".result()[0].data.evs)\n")


def _share_test(states: tuple[str, ...], least: float) -> str:
    return ("import unittest\n\nclass TestCounts(unittest.TestCase):\n    def test_share(self):\n"
            "        total = sum(counts.values())\n"
            f"        self.assertGreaterEqual(sum(counts.get(state, 0) for state in {states!r}) / total, {least})\n")


TIER_TASKS: dict[str, dict[str, Any]] = {
    "bell": {"tests": _share_test(("00", "11"), 0.85), "right": [
        _SAMPLE.format(backend="ibm_manila", qubits=2, gates="qc.h(0)\nqc.cx(0, 1)\n", shots="{shots}")],
        "wrong": [_SAMPLE.format(backend="ibm_manila", qubits=2, gates="qc.h(0)\n", shots="{shots}"),
                  _SAMPLE.format(backend="ibm_nowhere", qubits=2, gates="qc.h(0)\nqc.cx(0, 1)\n", shots="{shots}")]},
    "ghz": {"tests": _share_test(("000", "111"), 0.85), "right": [
        _SAMPLE.format(backend="ibm_manila", qubits=3, gates="qc.h(0)\nqc.cx(0, 1)\nqc.cx(1, 2)\n", shots="{shots}")],
        "wrong": [_SAMPLE.format(backend="ibm_manila", qubits=3, gates="qc.h(0)\nqc.cx(0, 1)\n", shots="{shots}"),
                  _SAMPLE.format(backend="ibm_manila", qubits=3, gates="qc.h([0, 1, 2])\n", shots="{shots}")]},
    "zz": {"tests": ("import unittest\n\nclass TestZZ(unittest.TestCase):\n    def test_zz(self):\n"
                     "        self.assertGreater(zz, 0.8)\n"),
           "right": [_ESTIMATE.format(gates="qc.h(0)\nqc.cx(0, 1)\n")],
           "wrong": [_ESTIMATE.format(gates="qc.h(0)\n"), _ESTIMATE.format(gates="qc.x(0)\n")]},
}
"""QPU tasks for the tiers figure: the hidden tests, right programs and wrong ones. ``{shots}`` in
a program is the bench's shots."""


def tier_steps(config: TiersBenchConfig) -> list[list[Any]]:
    """Per step, the candidates' VerificationJobs (one group of ``group_size`` per task, in task
    order), drawn with the seed: right with the task's chance, then one of its programs."""
    from actors.contracts import Task
    from actors.verify.executor import VerificationJob

    draw = random.Random(config.seed)
    shares = (list(config.right_shares) + [0.0] * len(TIER_TASKS))[:len(TIER_TASKS)]
    tasks = [(Task(task_id=f"tiers/{name}", family="qpu_bench", harness="unittest", prompt=name, tests=spec["tests"],
                   requires_qpu=True), spec, share) for (name, spec), share in zip(TIER_TASKS.items(), shares)]
    steps = []
    for step in range(config.steps):
        jobs = []
        for task, spec, share in tasks:
            for index in range(config.group_size):
                program = draw.choice(spec["right"] if draw.random() < share else spec["wrong"])
                jobs.append(VerificationJob(task, program.replace("{shots}", str(config.shots)),
                                            step * config.group_size + index, qpu_step=step))
        steps.append(jobs)
    return steps


def _verify_steps(config: TiersBenchConfig, steps: list[list[Any]], tiers: list[str]) -> dict[str, Any]:
    """Every step's jobs through a verifier with ``tiers``, against a fresh fake QPU with noise:
    the verdicts per step, and the backend's own record of submissions and QPU seconds per step."""
    from actors.verify.config import VerifierConfig
    from actors.verify.qpu.config import QpuConfig
    from actors.verify.qpu.evidence import RecordingBackend, in_process
    from actors.verify.qpu.gateway import QpuGateway, gateway_handler
    from actors.verify.verifier import Verifier

    qpu = QpuConfig(time_scale=config.time_scale, noise=True, run_id=f"bench-tiers-{'-'.join(tiers) or 'qpu'}",
                    limits={"jobs_per_minute": 600})
    backend = RecordingBackend(qpu, run_s=config.run_s)
    gateway = QpuGateway(qpu, runner=backend)
    verdicts, submissions, seconds = [], [], []
    with in_process(gateway) as call, Verifier(VerifierConfig(timeout_s=120, qpu=qpu, tiers=tiers), slots=config.slots,
                                               qpu_handler=gateway_handler(qpu, call)) as verifier:
        started = time.monotonic()
        for jobs in steps:
            before = len(backend.submissions)
            verdicts.append(verifier.run(jobs))
            mine = backend.submissions[before:]
            submissions.append(len(mine))
            seconds.append(round(sum(submission.qpu_s for submission in mine), 3))
    return {"verdicts": verdicts, "submissions": submissions, "qpu_s": seconds,
            "verify_s": round(time.monotonic() - started, 2)}


def _flat_groups(verdicts: list[Any], group_size: int) -> int:
    """Groups whose rewards are all equal (zero advantages in GRPO)."""
    groups = [verdicts[start:start + group_size] for start in range(0, len(verdicts), group_size)]
    return sum(len({round(verdict.reward, 9) for verdict in group}) <= 1 for group in groups)


def run_tiers(config: TiersBenchConfig) -> dict[str, Any]:
    """The tiers figure (see the module docstring)."""
    import statistics

    steps = tier_steps(config)
    candidates = sum(len(jobs) for jobs in steps)
    baseline = _verify_steps(config, steps, [])
    figures: dict[str, Any] = {
        "steps": config.steps, "groups_per_step": len(TIER_TASKS), "group_size": config.group_size,
        "candidates": candidates, "run_s": config.run_s,
        "qpu_only": {"qpu_submissions_per_step": baseline["submissions"], "qpu_s_per_step": baseline["qpu_s"],
                     "qpu_submissions_mean": statistics.fmean(baseline["submissions"]),
                     "qpu_s_mean": round(statistics.fmean(baseline["qpu_s"]), 3),
                     "pass_rate": round(sum(v.status == "passed" for vs in baseline["verdicts"] for v in vs) / candidates, 3),
                     "flat_groups": sum(_flat_groups(vs, config.group_size) for vs in baseline["verdicts"]),
                     "verify_s": baseline["verify_s"]}}
    lines = [f"tiers  {config.steps} GRPO steps of {len(TIER_TASKS)} groups x {config.group_size} QPU candidates, "
             f"fake QPU with noise, {config.run_s:g} QPU s a submission:",
             f"  qpu only     {figures['qpu_only']['qpu_submissions_mean']:5.1f} submissions/step "
             f"{figures['qpu_only']['qpu_s_mean']:6.1f} QPU s/step"]
    for tiers in config.tier_sets:
        tiered = _verify_steps(config, steps, list(tiers))
        pairs = [(mine, theirs) for step_mine, step_theirs in zip(tiered["verdicts"], baseline["verdicts"])
                 for mine, theirs in zip(step_mine, step_theirs)]
        differ = [abs(mine.reward - theirs.reward) > 1e-9 for mine, theirs in pairs]
        stopped = [mine.tier not in ("qpu", "") for mine, _ in pairs]
        both_qpu = [(mine, theirs) for mine, theirs in pairs if mine.tier == "qpu"]
        name = "+".join(tiers)
        figures[name] = {
            "tiers": list(tiers), "qpu_submissions_per_step": tiered["submissions"], "qpu_s_per_step": tiered["qpu_s"],
            "qpu_submissions_mean": statistics.fmean(tiered["submissions"]),
            "qpu_s_mean": round(statistics.fmean(tiered["qpu_s"]), 3),
            "qpu_s_saved": round(1 - sum(tiered["qpu_s"]) / sum(baseline["qpu_s"]), 3) if sum(baseline["qpu_s"]) else 0.0,
            "stopped_by_tier": {tier: sum(mine.tier == tier for mine, _ in pairs) for tier in tiers},
            "groups_without_qpu": sum(all(verdict.tier != "qpu" for verdict in group)
                                      for step in tiered["verdicts"]
                                      for group in (step[start:start + config.group_size]
                                                    for start in range(0, len(step), config.group_size))),
            "flat_groups": sum(_flat_groups(vs, config.group_size) for vs in tiered["verdicts"]),
            "disagreement_rate": round(sum(differ) / len(pairs), 3),
            "stopped_but_passed_on_qpu": sum(stop and theirs.status == "passed"
                                             for stop, (_, theirs) in zip(stopped, pairs)),
            "qpu_rerun_disagreement": round(sum(abs(mine.reward - theirs.reward) > 1e-9 for mine, theirs in both_qpu)
                                            / len(both_qpu), 3) if both_qpu else 0.0,
            "verify_s": tiered["verify_s"]}
        row = figures[name]
        lines.append(f"  {name:<12} {row['qpu_submissions_mean']:5.1f} submissions/step {row['qpu_s_mean']:6.1f} QPU s/step "
                     f"({row['qpu_s_saved']:.0%} saved; {row['groups_without_qpu']} groups without QPU time), "
                     f"reward differs from QPU-only for {row['disagreement_rate']:.1%} of candidates "
                     f"({row['stopped_but_passed_on_qpu']} stopped by a tier that passed on the QPU; "
                     f"{row['qpu_rerun_disagreement']:.1%} of those on the QPU both times: its own noise)")
    print("\n".join(lines))
    return figures
