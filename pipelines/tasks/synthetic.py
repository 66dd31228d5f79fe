"""`qvr synth`'s ``qiskit`` family: synthetic Qiskit tasks from templates, each proven by the verifier.

Recipe: template x seed specs -> render (prompt, hidden tests, reference, mutants) with Ray Data
-> stream each rendered task's reference and mutants through the verifier pool (the one
verification service: it calibrates each task's isolation mode on its reference, hides the run
directory from the sandbox, and reads the rendered tasks only as fast as its workers drain them)
-> quality gates -> Parquet of Tasks. A task is kept only when its reference passes and at least
``min_mutants_killed`` of its mutants fail (the tests discriminate), and its prompt is not a
duplicate. Every spec that fails to render or whose reference fails is reported with its template
and seed (``rejected.jsonl``), never dropped silently. A summary table per area closes the run.
With ``sample.n`` the accepted tasks are then sampled into buckets A and B (pipelines/synth.py).

Registered as the ``qiskit`` family in pipelines/tasks/families/qiskit.py. Like every config
module of a job, this imports only pydantic at top level (Ray, the templates and Qiskit inside the
functions that use them).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import Any

from pydantic import Field

from actors.config import Config

log = logging.getLogger("qvr.synth")


class SynthSpec(Config):
    """What ``qvr synth`` renders when ``family`` is ``qiskit`` (pipelines/tasks/templates)."""

    templates: list[str] | None = None
    """Templates to render (names from pipelines/tasks/templates); None = all."""

    areas: list[str] | None = None
    """Keep only templates of these areas; None = all."""

    seeds_per_template: int = Field(4, ge=1, le=100_000)
    """Seeds rendered per template (the seed varies qubits, angles, targets and phrasing)."""

    first_seed: int = Field(0, ge=0)
    """Seeds are first_seed, first_seed + 1, ..."""

    min_mutants_killed: int = Field(2, ge=0)
    """Mutants of the reference that the tests must reject for the task to be kept; 0 runs no
    mutant (only each reference is verified: a quarter of the sandbox work, tests unjudged)."""

    disjoint_from: list[str] = []
    """Task sources (files or hub ids) whose prompts this set must not repeat: a held-out split of
    seeds no stage trains on is then also free of the training split's prompts (a template with few
    variants renders one prompt from several seeds). Qiskit templates only."""


def render_batch(batch: dict[str, Any]) -> dict[str, list]:
    """Ray Data stage 1: (template, seed) -> the Task (as JSON) and its mutants, or the error."""
    from dataclasses import asdict

    from pipelines.tasks.templates import TEMPLATES, render

    rows: dict[str, list] = collections.defaultdict(list)
    for name, seed in zip(_plain(batch["template"]), _plain(batch["seed"])):
        task_json, mutants_json, area, error = "", "[]", TEMPLATES[name].area if name in TEMPLATES else "", ""
        try:
            task, mutants = render(name, seed)
            task_json, mutants_json = json.dumps(asdict(task)), json.dumps([asdict(mutant) for mutant in mutants])
        except Exception as error_:  # noqa: BLE001 - reported with template and seed, then excluded
            error = f"render failed: {type(error_).__name__}: {error_}"
        for key, value in (("template", name), ("seed", seed), ("area", area), ("task", task_json),
                           ("mutants", mutants_json), ("error", error)):
            rows[key].append(value)
    return dict(rows)


def _plain(values: Any) -> list:
    """Ray Data hands numpy columns; the verifier wants Python values."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


async def verify_rendered(rows: Any, pool: Any, mutants: bool = True) -> list[dict[str, Any]]:
    """Each rendered row's reference (sample 0) and mutants (samples 1..n; none if not ``mutants``) through the pool, read
    from ``rows`` (Ray Data's iterator, pulled on a thread) only as fast as the pool takes them.
    The pool fixes each task's isolation mode on its reference (split unless it needs shared) and
    answers the reference with that verdict; the mutants run in the chosen mode. Returns the rows
    with ``reference_status``, ``mutants_killed``, ``mutants_total`` and the task (marked)."""
    from dataclasses import asdict

    from actors.contracts import Task
    from actors.verify.executor import VerificationJob

    loop = asyncio.get_running_loop()
    iterator = iter(rows)
    out: list[dict[str, Any]] = []
    rendered: dict[str, tuple[dict[str, Any], Task]] = {}

    async def jobs() -> Any:
        while (row := await loop.run_in_executor(None, next, iterator, None)) is not None:
            row = {key: _scalar(value) for key, value in row.items()}
            row.update(reference_status="", mutants_killed=0, mutants_total=0)
            out.append(row)
            if row["error"]:
                continue
            task = Task(**json.loads(row["task"]))
            rendered[task.task_id] = (row, task)
            yield VerificationJob(task, task.reference_solution, 0)
            for number, mutant in enumerate(json.loads(row["mutants"]) if mutants else [], 1):
                yield VerificationJob(task, mutant["code"], number)

    async for verdict in pool.submit(jobs()):
        row, _ = rendered[verdict.task_id]
        if verdict.sample_idx == 0:
            row["reference_status"] = verdict.status
            if verdict.status != "passed":
                row["error"] = f"reference {verdict.status}: {verdict.stderr_tail[-300:]}"
        elif verdict.judged:  # a mutant the QPU budget kept from running is neither killed nor alive
            row["mutants_total"] += 1
            row["mutants_killed"] += verdict.status != "passed"
    for row, task in rendered.values():
        task.metadata.setdefault("isolation", "split")  # a task the pool did not calibrate (QPU) runs split
        row["task"] = json.dumps(asdict(task))
    return out


def prompts_of(sources: list[str]) -> set[str]:
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    return {task.prompt for source in sources for task in load_tasks(TaskSourceConfig(source=source))}


def _scalar(value: Any) -> Any:
    """Ray Data hands numpy scalars; JSON and the Task contract want Python values."""
    return value.item() if hasattr(value, "item") else value


def synthesize(config: Any, run: Any) -> dict[str, Any]:
    """The ``qiskit`` family of `qvr synth` (``config``: pipelines.synth.Config, its section ``spec``)."""
    from actors.verify.pool.pool import VerifierPool
    from pipelines.cluster import pool_demand, rollout_demand
    from pipelines.job import connect_ray
    from pipelines.tasks.templates import TEMPLATES

    names = [name for name, template in sorted(TEMPLATES.items())
             if (config.spec.templates is None or name in config.spec.templates)
             and (config.spec.areas is None or template.area in config.spec.areas)]
    unknown = sorted(set(config.spec.templates or []) - set(TEMPLATES))
    if unknown or not names:
        raise ValueError(f"unknown templates {unknown}" if unknown else "no template matches spec.templates/areas")
    seeds = range(config.spec.first_seed, config.spec.first_seed + config.spec.seeds_per_template)
    specs = [{"template": name, "seed": seed} for name in names for seed in seeds]
    log.info("%d specs: %d templates x %d seeds", len(specs), len(names), len(seeds))
    taken = prompts_of(config.spec.disjoint_from)  # a bad source fails before Ray starts

    # With --sample N the rollout workers sample beside the pool (it verifies their completions).
    connect_ray(config.ray, needs=[pool_demand(config.pool), *([rollout_demand(config.sample.rollout, "sample.rollout")]
                                                                if config.sample.n else [])])
    pool = VerifierPool(config.verifier, config.pool, hidden_paths=[run.path])
    try:
        return _synthesize(config, run, specs, pool, taken)
    finally:
        pool.close()


def _synthesize(config: Any, run: Any, specs: list[dict[str, Any]], pool: Any,
                taken: set[str]) -> dict[str, Any]:
    """``taken``: prompts the kept tasks must not repeat (``spec.disjoint_from``)."""
    import ray

    from actors.contracts import Task
    from pipelines.synth import sample_buckets
    from pipelines.tasks.loader import write_task_set

    started = time.monotonic()
    dataset = ray.data.from_items(specs).map_batches(render_batch, batch_size=16, num_cpus=0.25)
    rows = sorted(asyncio.run(verify_rendered(dataset.iter_rows(), pool, mutants=config.spec.min_mutants_killed > 0)),
                  key=lambda row: (row["template"], row["seed"]))
    wall_s = time.monotonic() - started

    accepted: list[Task] = []
    rejected: list[dict[str, Any]] = []
    seen_prompts: set[str] = set()
    for row in rows:
        reason = row["error"]
        if not reason and row["mutants_killed"] < config.spec.min_mutants_killed:
            reason = f"only {row['mutants_killed']} of {row['mutants_total']} mutants fail the tests"
        task = Task(**json.loads(row["task"])) if not reason else None
        if task is not None and task.prompt in seen_prompts:
            reason = "duplicate prompt"
        elif task is not None and task.prompt in taken:
            reason = "prompt of a task in spec.disjoint_from"
        if reason or task is None:
            rejected.append({"template": row["template"], "seed": row["seed"], "reason": reason})
            continue
        seen_prompts.add(task.prompt)
        task.metadata.update(mutants_killed=row["mutants_killed"], mutants_total=row["mutants_total"])
        accepted.append(task)
    output = write_task_set(run.path, config.output, accepted, rejected, "template")

    rendered = [row for row in rows if not row["error"].startswith("render failed")]
    references_passed = sum(row["reference_status"] == "passed" for row in rendered)
    killed = sum(row["mutants_killed"] for row in rendered if row["reference_status"] == "passed")
    mutants = sum(row["mutants_total"] for row in rendered if row["reference_status"] == "passed")
    print(summary_table(rows, accepted))
    result = {"tasks": len(accepted), "areas": len({task.area for task in accepted}),
              "templates": len({task.metadata.get("template") for task in accepted}),
              "reference_pass_rate": round(references_passed / max(1, len(rendered)), 4),
              "mutant_kill_rate": round(killed / max(1, mutants), 4),
              "tasks_per_s": round(len(accepted) / wall_s, 3), "output": str(output), "rejected": len(rejected),
              **pool.cache_figures()}
    if config.sample.n and accepted:
        result.update(sample_buckets(config, run, accepted, pool))
    run.log_metrics({key: float(value) for key, value in result.items() if isinstance(value, (int, float))}, step=0)
    return result


def summary_table(rows: list[dict[str, Any]], accepted: list[Any]) -> str:
    kept = collections.Counter(task.area for task in accepted)
    by_area: dict[str, list] = collections.defaultdict(list)
    for row in rows:
        by_area[row["area"] or "?"].append(row)
    lines = [f"{'area':<28} {'specs':>6} {'kept':>6} {'ref pass':>9} {'mutants killed':>15}"]
    for area, group in sorted(by_area.items()):
        passed = [row for row in group if row["reference_status"] == "passed"]
        killed = sum(row["mutants_killed"] for row in passed)
        total = sum(row["mutants_total"] for row in passed)
        lines.append(f"{area[:28]:<28} {len(group):>6} {kept[area]:>6} {len(passed) / len(group):>9.0%} "
                     f"{f'{killed}/{total}':>15}")
    return "\n".join(lines)
