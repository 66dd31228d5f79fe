"""`qvr bench noise`: how often one run's verdict disagrees with the settled one, before and after
noise-aware verdicts (issue 30, part 2; actors/verify/noise).

The programs: the canonical solutions of the QHE tasks whose tests, prompt or solution name a
noisy fake backend or noise model (``Fake...``, ``NoiseModel``, ``noise_model``, ``from_backend``:
23 tasks; those that cannot pass offline and those whose reference runs longer than ``max_run_s``
are left out), plus wrong-but-close variants of them made by rules on their text: fewer shots,
a coarser estimator precision, seeds removed. Each program is run ``singles`` times, one run per
verdict (re-measurement off): the majority of those runs is its *settled* verdict, and each single
run that disagrees with it counts (*before*). Then it is verified ``repeats`` times with
re-measurement on (``noise``, the verifier's defaults unless set): each noise-aware verdict that
disagrees with the settled one counts (*after*), and the runs each verdict spent are reported.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.verify.noise.config import NoiseConfig

NOISY = re.compile(r"Fake\w+|NoiseModel|noise_model|from_backend")
"""What marks a QHE task as running on a noisy fake backend (or building a noise model)."""

VARIANTS: dict[str, tuple[str, Any]] = {
    "fewer_shots": (r"shots\s*=\s*(\d+)", lambda match: f"shots={max(int(match.group(1)) // 100, 2)}"),
    "coarser_precision": (r"(estimator\.run\(\[.*?\])\)", r"\1, precision=0.05)"),
    "unseeded": (r",\s*seed(?:_transpiler|_simulator)?\s*=\s*\d+", ""),
}
"""Wrong-but-close programs: rule name -> (pattern, replacement) applied to a canonical solution."""


class NoiseBenchConfig(Config):
    tasks: str = "../shared/data/qhe/dataset_qiskit_test_human_eval.json"
    """Qiskit HumanEval (a task source)."""

    singles: int = Field(12, ge=3, le=1000)
    """Single runs per program: their majority is the settled verdict, each one a *before* verdict."""

    repeats: int = Field(3, ge=1, le=100)
    """Noise-aware verdicts per program (the *after* verdicts)."""

    variants: bool = True
    """Add the wrong-but-close programs (``VARIANTS``) to the canonical solutions."""

    left_out: list[str] = ["qiskitHumanEval/34", "qiskitHumanEval/96"]
    """Tasks left out for time: these two take 4-12 s a run on 2 cores (the others under 1.5 s);
    ``[]`` includes them."""

    only: list[str] | None = None
    """Task ids to measure (of the noisy ones); None: all."""

    slots: int = Field(2, ge=1, le=64)
    """Verifier slots (one warm zygote each)."""

    noise: NoiseConfig = NoiseConfig()
    """The settings of the noise-aware verdicts."""


def variants(solution: str) -> dict[str, str]:
    """The wrong-but-close programs a canonical solution yields, by rule (rules that change nothing
    yield none)."""
    made = {}
    for name, (pattern, replacement) in VARIANTS.items():
        changed = re.sub(pattern, replacement, solution)
        if changed != solution:
            made[name] = changed
    return made


def run(config: NoiseBenchConfig) -> dict[str, Any]:
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks
    from pipelines.tasks.qhe import passes_offline

    started = time.monotonic()
    noisy = [task for task in load_tasks(TaskSourceConfig(source=config.tasks))
             if NOISY.search("\n".join((task.prompt, task.tests, task.reference_solution or "")))]
    offline = [task for task in noisy if passes_offline(task.task_id)]
    once = NoiseConfig(max_runs=1, reference_runs=1)
    verifier_config = VerifierConfig(timeout_s=120, qpu_gateway=False, noise=once)
    with Verifier(verifier_config, slots=config.slots) as verifier:
        tasks = [task for task in offline if task.task_id not in config.left_out
                 and (config.only is None or task.task_id in config.only)]
        modes, _ = verifier.calibrate(tasks)
        for task in tasks:
            task.metadata["isolation"] = modes[task.task_id]
        programs = [(task, "canonical", task.reference_solution) for task in tasks]
        if config.variants:
            programs += [(task, name, code) for task in tasks for name, code in variants(task.reference_solution).items()]
        jobs = [VerificationJob(task, code, index) for index, (task, _, code) in enumerate(programs)]
        singles = verifier.run([job for _ in range(config.singles) for job in jobs])
        verifier.config.noise = config.noise
        aware = verifier.run([job for _ in range(config.repeats) for job in jobs])
    return figures(programs, singles, aware, config, len(noisy), time.monotonic() - started)


def figures(programs: list[tuple[Any, str, str]], singles: list[Any], aware: list[Any], config: NoiseBenchConfig,
            noisy: int, seconds: float) -> dict[str, Any]:
    """The disagreement rates, over every program and over the flaky ones (single runs that both
    pass and fail), measured and expected; prints three lines."""
    count = len(programs)
    rows = []
    for index, (task, kind, _) in enumerate(programs):
        draws = [verdict.status for verdict in singles[index::count]]
        passes = draws.count("passed")
        settled = "passed" if passes / len(draws) > config.noise.threshold else "failed"
        verdicts = aware[index::count]
        rows.append({"task_id": task.task_id, "program": kind, "single_pass_rate": round(passes / len(draws), 3),
                     "settled": settled, "before_disagree": sum(status != settled for status in draws),
                     "after_disagree": sum(verdict.status != settled for verdict in verdicts),
                     "after_runs": [verdict.runs for verdict in verdicts],
                     "after_expected": settle_disagreement(passes / len(draws), settled, config.noise)})
    flaky = [row for row in rows if 0 < row["single_pass_rate"] < 1]
    results = {"noisy_tasks": noisy, "tasks": len({row["task_id"] for row in rows}),
               "left_out": config.left_out, "programs": count,
               "singles": config.singles, "repeats": config.repeats,
               "noise": config.noise.model_dump(), "all": _rates(rows, config), "flaky": _rates(flaky, config),
               "flaky_programs": [{key: row[key] for key in ("task_id", "program", "single_pass_rate", "settled",
                                                             "before_disagree", "after_disagree", "after_expected")}
                                  for row in flaky],
               "seconds": round(seconds, 1)}
    for name in ("all", "flaky"):
        figure = results[name]
        print(f"{name} ({figure['programs']} programs): one run disagrees with the settled verdict "
              f"{figure['before']:.1%}, a noise-aware verdict {figure['after']:.1%} "
              f"(expected {figure['after_expected']:.1%}) "
              f"({figure['runs_per_verdict']:.2f} runs per verdict)")
    print(f"{count} programs of {results['tasks']} tasks in {seconds:.0f} s; flaky: "
          + (", ".join(f"{row['task_id']} {row['program']} ({row['single_pass_rate']:.2f})" for row in flaky) or "none"))
    return results


def _rates(rows: list[dict[str, Any]], config: NoiseBenchConfig) -> dict[str, Any]:
    singles = len(rows) * config.singles
    aware = len(rows) * config.repeats
    runs = sum(sum(row["after_runs"]) for row in rows)
    return {"programs": len(rows),
            "before": sum(row["before_disagree"] for row in rows) / singles if singles else 0.0,
            "after": sum(row["after_disagree"] for row in rows) / aware if aware else 0.0,
            "after_expected": sum(row["after_expected"] for row in rows) / len(rows) if rows else 0.0,
            "runs_per_verdict": runs / aware if aware else 0.0}


def settle_disagreement(pass_rate: float, settled: str, config: NoiseConfig) -> float:
    """The probability that a noise-aware verdict of a program passing with ``pass_rate`` is not
    ``settled``, by the exact law of the settling rule (actors/verify/noise/settle.py) over its
    run sequences: the measured *after* rate of a few repeats is itself a noisy figure. Every run
    is taken to lie in the noise band (a pass or an assertion failure)."""
    from actors.verify.noise.interval import decision

    if pass_rate in (0.0, 1.0):
        return float(("passed" if pass_rate == 1.0 else "failed") != settled)
    wrong, states = 0.0, {(1, 1): pass_rate, (1, 0): 1 - pass_rate}  # (runs, passes) -> probability
    while states:
        following: dict[tuple[int, int], float] = {}
        for (runs, passes), chance in states.items():
            decided = decision(passes, runs, config.confidence, config.threshold)
            if decided is None and runs < config.max_runs:
                for passed, odds in ((1, pass_rate), (0, 1 - pass_rate)):
                    key = (runs + 1, passes + passed)
                    following[key] = following.get(key, 0.0) + chance * odds
                continue
            status = decided or ("passed" if passes / runs > config.threshold else "failed")
            wrong += chance * (status != settled)
        states = following
    return wrong
