"""Which jobs are draws rather than functions of the program (never cached; re-measured)."""

from __future__ import annotations

import re

from actors.contracts import Task

STOCHASTIC = re.compile(r"Fake\w+|NoiseModel|noise_model|from_backend|QiskitRuntimeService|least_busy|random")
"""Names that make a run a draw rather than a function of the program: qiskit-ibm-runtime's fake
backends and noise models (noisy simulation), a runtime service (the QPU), unseeded randomness.
Sampling an ideal simulator without any of them is taken as a fact: tests compare its counts with
tolerances a correct program meets with near certainty."""


def stochastic(task: Task, code: str | None) -> bool:
    """Whether a run of ``code`` on ``task`` is a draw on a simulator: a noisy backend, a noise model
    or randomness is named in the task (prompt, tests, reference) or the program. (A task that
    needs the QPU is a draw as well, whatever it names: see :func:`remeasurable`.)"""
    text = "\n".join(part or "" for part in (task.prompt, task.tests, code, task.reference_solution))
    return STOCHASTIC.search(text) is not None


def remeasurable(task: Task, code: str | None) -> bool:
    """Whether a verdict of the job may be settled by running it again: a draw on a simulator, never
    a task that needs the QPU (re-measurement must not spend QPU seconds)."""
    return not task.requires_qpu and stochastic(task, code)
