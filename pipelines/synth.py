"""`qvr synth`: verified synthetic tasks of one task family, each proven by the verifier.

The family (``family``) and its settings section come from the task-family registry
(pipelines/tasks/families/): each family registers the section of this config that holds its
settings and the function that runs the job for it (the template-based Qiskit tasks:
pipelines/tasks/synthetic.py; the others: their own package). This module names none of them.

With ``--sample N --model PATH`` it then samples N completions per task from the rollout
workers and writes them, verified, as bucket A (passed) and bucket B (failed) for SFT and DPO
(:func:`sample_buckets`, which a family's job calls with its accepted tasks and its pool).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.job import JobConfig
from pipelines.runs import Run
from pipelines.tasks.families.registry import synth_family, synth_sections

log = logging.getLogger("qvr.synth")


class SampleConfig(Config):
    n: int = Field(0, ge=0, le=1024)
    """Completions sampled per accepted task from the rollout workers (0: none). Verified, they
    are written as bucket A (passed: SFT data) and bucket B (failed: DPO's rejected side), as in
    the IBM paper."""

    rollout: RolloutConfig = RolloutConfig()
    """The model and engine that sample (``--model PATH`` sets rollout.model)."""

    sampling: SamplingConfig = SamplingConfig(max_tokens=512, temperature=1.0)
    """How they sample (``n`` is taken from sample.n)."""


class Config(synth_sections(JobConfig)):
    # ``family`` and one settings section per task family come from the family registry
    # (pipelines/tasks/families/, synth_sections).

    pool: PoolConfig = PoolConfig(slots_per_worker=2, cpus_per_slot=0.5, batch_size=8)
    """The verifier workers (references and mutants, then the sampled completions): keep their
    CPUs below the machine's so that Ray Data's render tasks still run."""

    verifier: VerifierConfig = VerifierConfig(timeout_s=60)
    """How references and mutants are verified."""

    output: str = "tasks.parquet"
    """File name of the accepted tasks, inside the run directory."""

    sample: SampleConfig = SampleConfig()
    """Optionally, completions from a model for every accepted task, sorted into buckets A and B."""


def add_arguments(parser: Any) -> None:
    parser.add_argument("--sample", type=int, metavar="N", help="N completions per task from the model (sets sample.n)")
    parser.add_argument("--model", metavar="PATH", help="model directory or hub id that samples (sets sample.rollout.model)")


def overrides_from(args: Any) -> list[str]:
    overrides = []
    if getattr(args, "sample", None) is not None:
        overrides.append(f"sample.n={args.sample}")
    if getattr(args, "model", None):
        overrides.append(f"sample.rollout.model={args.model}")
    return overrides


def run(config: Config, run: Run) -> dict[str, Any]:
    """The job of the family ``config.family`` (its registration's ``run``)."""
    return synth_family(config.family).run(config, run)


def sample_buckets(config: Config, run: Run, tasks: list[Any], pool: Any) -> dict[str, Any]:
    """N completions per task from the rollout workers, verified by the pool, split into
    bucket A (passed) and bucket B (the rest), each a Parquet of completion + verdict rows with the
    task's prompt, so bucket A is SFT data as it is (`qvr sft data.train=.../bucket_a.parquet
    data.completion_field=text`)."""
    from dataclasses import asdict

    import pyarrow as pa
    import pyarrow.parquet as pq

    from actors.rollout.group import RolloutGroup
    from actors.rollout.prompts import Prompt

    sampling = config.sample.sampling.model_copy(update={"n": config.sample.n})
    started = time.monotonic()
    with RolloutGroup(config.sample.rollout) as group:
        completions = group.generate([Prompt(task_id=task.task_id, text=task.prompt) for task in tasks], sampling)
    log.info("sampled %d completions for %d tasks in %.1f s", len(completions), len(tasks), time.monotonic() - started)
    verdicts = pool.verify(tasks, [completion.to_completion() for completion in completions])
    prompts = {task.task_id: task.prompt for task in tasks}
    buckets: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    unjudged = 0
    for completion, verdict in zip(completions, verdicts):  # the pool answers in completion order
        if not verdict.judged:  # over the QPU budget: neither a pass nor a failure to learn from
            unjudged += 1
            continue
        row = {"prompt": prompts[completion.task_id], **asdict(completion.to_completion()), "status": verdict.status,
               "tests_passed": verdict.tests_passed, "tests_total": verdict.tests_total, "reward": verdict.reward}
        buckets["a" if verdict.status == "passed" else "b"].append(row)
    paths = {}
    for name, rows in buckets.items():
        paths[name] = run.path / f"bucket_{name}.parquet"
        table = pa.Table.from_pylist(rows) if rows else pa.table({key: [] for key in BUCKET_COLUMNS})
        pq.write_table(table, paths[name])
    print(f"samples: {len(completions)}; bucket A (passed) {len(buckets['a'])}, bucket B {len(buckets['b'])}"
          + (f"; {unjudged} over the QPU budget, in neither" if unjudged else ""))
    return {"samples": len(completions), "bucket_a": len(buckets["a"]), "bucket_b": len(buckets["b"]),
            "over_budget": unjudged,
            "bucket_a_path": str(paths["a"]), "bucket_b_path": str(paths["b"])}


BUCKET_COLUMNS = ("prompt", "task_id", "sample_idx", "text", "token_ids", "logprobs", "policy_version", "finish_reason",
                  "status", "tests_passed", "tests_total", "reward")


