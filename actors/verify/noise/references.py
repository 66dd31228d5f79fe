"""Flaky references: a stochastic task's reference that does not pass k of k runs at calibration
(``verifier.noise.reference_runs``) has tests that fail correct code by chance. It is flagged in
its task's metadata, and the eval and verify jobs list the flagged tasks."""

from __future__ import annotations

from collections.abc import Iterable

from actors.contracts import Task, Verdict
from actors.verify.noise.config import NoiseConfig
from actors.verify.noise.stochastic import remeasurable

PASS_RATE = "reference_pass_rate"
"""The metadata key: the share of its reference's calibration runs that passed."""


def reference_runs(task: Task, config: NoiseConfig) -> int:
    """How many runs the task's reference takes at least when it is calibrated: k for a task whose
    runs are draws, 1 for the rest."""
    return config.reference_runs if remeasurable(task, task.reference_solution) else 1


def mark_reference(tasks: Task | Iterable[Task], verdict: Verdict) -> None:
    """Record, in place, the pass rate of the task's reference where it was re-measured (on each of
    ``tasks``: the copies of one task that jobs hold)."""
    if verdict.pass_rate is not None:
        for task in [tasks] if isinstance(tasks, Task) else tasks:
            task.metadata[PASS_RATE] = verdict.pass_rate


def flaky_line(flagged: list[str], shown: int = 8) -> str:
    """One console line naming the flagged tasks (the first ``shown`` of them)."""
    more = f" and {len(flagged) - shown} more" if len(flagged) > shown else ""
    return (f"{len(flagged)} flaky reference(s) (not passing every calibration run): "
            f"{', '.join(flagged[:shown])}{more}")


def flaky_references(tasks: Iterable[Task]) -> list[str]:
    """The ids of tasks whose reference did not pass every run at calibration, sorted."""
    return sorted({task.task_id for task in tasks if task.metadata.get(PASS_RATE, 1.0) < 1.0})
