"""The registry of jobs: one entry per job that exists. A new job is one module plus one line here.

A job module defines ``HELP`` (one line), ``Config`` (a :class:`pipelines.job.JobConfig`),
``run(config, run) -> dict`` (the summary, printed as JSON with ``--json``) and optionally
``add_arguments(parser)`` / ``overrides_from(args)`` for flags that are shorthands of config fields.
"""

from __future__ import annotations

import importlib
from types import ModuleType

JOBS: dict[str, str] = {
    "verify": "pipelines.verify",
    "synth": "pipelines.synth",
    "grpo": "pipelines.grpo",
    "bench": "pipelines.bench",
}


def job_module(name: str) -> ModuleType:
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    return importlib.import_module(JOBS[name])
