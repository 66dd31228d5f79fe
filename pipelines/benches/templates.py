"""`qvr bench templates`: how long each synthetic template's reference takes in the verifier.

GRPO verifies every sample of a synthetic task, so a template whose reference is slow makes every
step slow. Each template's reference is rendered for a few seeds and verified (forked, the
default isolation) in one run; per template the median seconds, and its ratio to the median
template's. ``slow_s`` names the templates above it (the library's aim: every reference under
3 s on 2 cores).
"""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import Field

from actors.config import Config


class TemplatesBenchConfig(Config):
    seeds: int = Field(3, ge=1, le=100)
    """Seeds rendered per template (each one verification of its reference)."""

    templates: list[str] | None = None
    """Which templates (names in pipelines/tasks/templates); None is every one."""

    slots: int = Field(2, ge=1, le=64)
    """Verifier slots (one warm zygote each)."""

    slow_s: float = Field(3.0, gt=0)
    """Seconds above which a template's median is reported as slow."""

    show: int = Field(10, ge=1)
    """How many of the slowest templates are listed."""


def run(config: TemplatesBenchConfig) -> dict[str, Any]:
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier
    from pipelines.tasks.templates import TEMPLATES, render

    names = sorted(config.templates or TEMPLATES)
    tasks = [(name, render(name, seed)[0]) for name in names for seed in range(config.seeds)]
    with Verifier(VerifierConfig(timeout_s=60), slots=config.slots) as verifier:
        verdicts = verifier.run([VerificationJob(task, task.reference_solution) for _, task in tasks])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    failed = []
    for (name, task), verdict in zip(tasks, verdicts):
        seconds[name].append(verdict.duration_s)
        if verdict.status != "passed":
            failed.append(task.task_id)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    overall = statistics.median(medians.values())
    slowest = sorted(medians, key=medians.get, reverse=True)
    results = {
        "templates": len(names), "seeds": config.seeds, "median_s": round(overall, 4),
        "slowest": [{"template": name, "s": round(medians[name], 4), "over_median": round(medians[name] / overall, 2)}
                    for name in slowest[: config.show]],
        "over_slow_s": [name for name in slowest if medians[name] > config.slow_s],
        "failed_references": failed,
    }
    print(f"{len(names)} templates x {config.seeds} seeds: median reference {overall:.2f} s; slowest: "
          + ", ".join(f"{row['template']} {row['s']:.2f} s (x{row['over_median']:.1f})" for row in results["slowest"][:5]))
    print(f"over {config.slow_s:g} s: {results['over_slow_s'] or 'none'}; failed references: {failed or 'none'}")
    return results
