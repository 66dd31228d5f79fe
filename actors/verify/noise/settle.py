"""Settling a verdict that lies within the noise band: the same job again, in fresh sandbox
children (fresh draws), until the Clopper-Pearson interval of its pass probability clears the
threshold or the budget is spent."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from actors.contracts import Task, Verdict
from actors.verify.noise.band import DRAWS, in_noise_band
from actors.verify.noise.config import NoiseConfig
from actors.verify.noise.interval import decision
from actors.verify.noise.stochastic import remeasurable

RunOnce = Callable[[], tuple[Verdict, Any]]
"""One run of the job in a fresh child: its verdict and the child's (untrusted) result record."""


def settle(task: Task, code: str | None, run_once: RunOnce, config: NoiseConfig, at_least: int = 1) -> Verdict:
    """The job's verdict, re-measured where it lies within the noise band (see
    :func:`~actors.verify.noise.band.in_noise_band`) and its job is :func:`remeasurable`: after
    each run the interval at ``config.confidence`` decides; at ``config.max_runs`` runs (or
    ``at_least``, the flaky-reference check's k, whichever is more) the pass rate decides. A later
    run that is no draw (a timeout, a kill, an infrastructure error) ends the re-measurement and is
    not counted: it says nothing of the program. Other verdicts come back as they were (``runs`` 1)."""
    first, record = run_once()
    budget = max(config.max_runs, at_least)
    if budget <= 1 or not remeasurable(task, code) or not in_noise_band(first, record):
        return first
    draws = [first]
    while len(draws) < budget:
        passes = sum(draw.status == "passed" for draw in draws)
        if len(draws) >= at_least and decision(passes, len(draws), config.confidence, config.threshold):
            break
        verdict, _ = run_once()
        if verdict.status not in DRAWS:
            break
        draws.append(verdict)
    return combine(draws, config)


def combine(draws: list[Verdict], config: NoiseConfig) -> Verdict:
    """One verdict of several runs: the settled status (the interval's decision, else the pass rate
    against the threshold), the first run with that status for the rest (its tests, outcomes,
    measures, provenance), its reward or the runs' mean (``config.reward``), the runs' seconds."""
    runs = len(draws)
    passes = sum(draw.status == "passed" for draw in draws)
    decided = decision(passes, runs, config.confidence, config.threshold)
    status = decided or ("passed" if passes / runs > config.threshold else "failed")
    chosen = next((draw for draw in draws if draw.status == status), draws[0])
    reward, parts = chosen.reward, chosen.reward_parts
    if config.reward == "probability":
        reward = sum(draw.reward for draw in draws) / runs
        names = sorted({name for draw in draws for name in draw.reward_parts})
        parts = {name: sum(draw.reward_parts.get(name, 0.0) for draw in draws) / runs for name in names}
    return dataclasses.replace(
        chosen, status=status, reward=reward, reward_parts=parts, runs=runs, pass_rate=passes / runs,
        settled=decided is not None, duration_s=sum(draw.duration_s for draw in draws),
        qpu_wait_s=sum(draw.qpu_wait_s for draw in draws), qpu_s=sum(draw.qpu_s for draw in draws))
