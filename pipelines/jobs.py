"""The registry of jobs: one entry per job that exists. A new job is one module plus one line here.

A job module defines ``Config`` (a
:class:`pipelines.job.JobConfig`), ``run(config, run) -> dict`` (the summary, printed as JSON with
``--json``) and optionally ``add_arguments(parser)`` / ``overrides_from(args)`` for flags that are
shorthands of config fields.

The registry carries each job's one-line help (its only copy) so that ``qvr --help`` imports no
job module, and a job module (with the config modules it imports) imports only pydantic/yaml at
top level: ray, torch, transformers, qiskit, vllm and deepspeed are imported inside the functions
that use them, so that ``qvr <job> --help`` and a config error answer at once (tests/test_cli.py
checks this).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple


class Job(NamedTuple):
    module: str
    """The job's module (imported only when the job is chosen)."""

    help: str
    """One line for ``qvr --help``."""


JOBS: dict[str, Job] = {
    "verify": Job("pipelines.verify",
                  "verify completions (or the tasks' reference solutions) against their hidden unit tests"),
    "synth": Job("pipelines.synth",
                 "generate verified synthetic Qiskit tasks (prompt, hidden unit tests, reference) with Ray Data"),
    "grpo": Job("pipelines.grpo",
                "GRPO: sample with the rollout workers, reward in the sandbox, learn with Ray Train + DeepSpeed"),
    "pairs": Job("pipelines.pairs",
                 "preference pairs from buckets A/B: a seeded accepted sample vs its most similar rejected one (Ray Data)"),
    "sft": Job("pipelines.sft",
               "SFT: supervised fine-tuning on prompt/completion rows with Ray Data + Ray Train + DeepSpeed"),
    "dpo": Job("pipelines.dpo",
               "DPO (sigmoid loss, beta) on prompt/chosen/rejected pairs with Ray Data + Ray Train + DeepSpeed"),
    "orpo": Job("pipelines.orpo",
                "ORPO (NLL + lambda * log odds ratio, no reference) on prompt/chosen/rejected pairs"),
    "eval": Job("pipelines.eval",
                "pass@k of models (or completions, or the references) on QHE, QHE-hard, HumanEval and task files"),
    "recipe": Job("pipelines.recipe",
                  "a recipe: jobs chained from one YAML (synth -> sft/pairs -> dpo -> grpo -> eval), resumable by stage"),
    "bench": Job("pipelines.bench",
                 "benchmarks, printed as ratios measured side by side (targets: verifier, pool, qpu, rollout, rewards, "
                 "templates, noise)"),
}


def job_module(name: str) -> ModuleType:
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    return importlib.import_module(JOBS[name].module)
