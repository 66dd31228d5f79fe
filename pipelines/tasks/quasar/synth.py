"""`qvr synth` with ``family: quasar``: QUASAR tasks generated locally, each reference verified.

Specs (problem type x qubits x layers x seed) -> :func:`generate_task` with Ray Data (the heavy
part: exact spectrum, QAOA optimisation, polishing) -> each task's reference circuit through the
verifier pool as an ordinary ``qasm`` completion; its reward is the task's
``reference_reward``. A task is kept when its reference passes and scores at least
``min_reference_reward``; the others are reported in ``rejected.jsonl`` with the reason. A table
per problem type closes the run.
"""

from __future__ import annotations

import collections
import json
import logging
import statistics
import time
from typing import Any

from pydantic import Field, field_validator

from actors.config import Config
from actors.verify.cache.figures import cache_figures

log = logging.getLogger("qvr.synth")


class QuasarCheckerConfig(Config):
    """The ``qasm`` checker's settings, written into each generated task's hidden tests (the
    checker has no config of its own: it reads its task). After arXiv 2510.00967's reward code."""

    cobyla_maxiter: int = Field(80, ge=3, le=10_000)
    """Optimisation progress (s4): COBYLA's evaluations from the candidate's angles (QUASAR: 80)."""

    cobyla_tol: float = Field(1e-6, gt=0, le=1)
    """Optimisation progress (s4): COBYLA's tolerance (QUASAR: 1e-6)."""

    progress_tol: float = Field(1e-3, gt=0, le=1)
    """Optimisation progress (s4): nfev is the evaluation at which COBYLA came within this share
    of the spectrum's width (Emax - Emin) of its best energy (1: the candidate was optimal)."""

    max_extra_qubits: int = Field(4, ge=0, le=16)
    """A candidate with more qubits than the task by more than this is not simulated (m is -1 anyway)."""

    max_angles: int = Field(256, ge=1, le=100_000)
    """A candidate with more distinct angles than this is not optimised (s4 = 0.2*s3)."""

    pass_s2: float = Field(0.9, ge=0, le=1)
    """The ``distribution`` test passes at this alignment (QUASAR's top tier: s2 > 0.9)."""


class QuasarSynthSpec(Config):
    """What ``qvr synth`` generates when ``family`` is ``quasar`` (arXiv 2510.00967's problems)."""

    problems: list[str] | None = None
    """Problem types (pipelines/tasks/quasar/problems.py: hypermaxcut, vertex_cover, edge_cover,
    matching, graph_coloring, kclique, min_cut, community_detection, connected_components); None = all."""

    qubits: list[int] = [4, 6]
    """Qubit counts drawn per task (3-16; graph_coloring rounds down to a multiple of its colours).
    CPU presets stay at or below 10."""

    layers: list[int] = [1, 2]
    """QAOA layers drawn per task (1-4)."""

    seeds_per_problem: int = Field(2, ge=1, le=100_000)
    """Tasks per problem type (seed s draws its qubits and layers from the lists above)."""

    first_seed: int = Field(0, ge=0)
    """Seeds are first_seed, first_seed + 1, ..."""

    min_reference_reward: float = Field(0.9, ge=-1, le=1)
    """A task is kept only when its reference circuit scores at least this (the quasar reward)."""

    checker: QuasarCheckerConfig = QuasarCheckerConfig()
    """The checker's settings each task carries."""

    @field_validator("qubits")
    @classmethod
    def _qubits_in_range(cls, qubits: list[int]) -> list[int]:
        if not qubits or any(not 3 <= q <= 16 for q in qubits):
            raise ValueError("qubit counts must be 3..16 (and the list not empty)")
        return qubits

    @field_validator("layers")
    @classmethod
    def _layers_in_range(cls, layers: list[int]) -> list[int]:
        if not layers or any(not 1 <= p <= 4 for p in layers):
            raise ValueError("layers must be 1..4 (and the list not empty)")
        return layers

    @field_validator("problems")
    @classmethod
    def _known_problems(cls, problems: list[str] | None) -> list[str] | None:
        from pipelines.tasks.quasar.problems import PROBLEMS

        unknown = sorted(set(problems or []) - set(PROBLEMS))
        if unknown:
            raise ValueError(f"unknown problems {unknown}; known: {sorted(PROBLEMS)}")
        return problems


def specs(spec: QuasarSynthSpec) -> list[dict[str, Any]]:
    """(problem, seed, qubits, layers) of every task; qubits and layers cycle with the seed."""
    from pipelines.tasks.quasar.problems import PROBLEMS

    problems = spec.problems or sorted(PROBLEMS)
    seeds = range(spec.first_seed, spec.first_seed + spec.seeds_per_problem)
    return [{"problem": problem, "seed": seed, "qubits": spec.qubits[seed % len(spec.qubits)],
             "layers": spec.layers[(seed // len(spec.qubits)) % len(spec.layers)]} for problem in problems for seed in seeds]


def generate_batch(batch: dict[str, Any], checker: dict[str, Any] | None = None) -> dict[str, list]:
    """Ray Data stage: specs -> the Task as JSON, or the error."""
    from dataclasses import asdict

    from pipelines.tasks.quasar.generate import generate_task

    rows: dict[str, list] = collections.defaultdict(list)
    columns = [list(getattr(batch[k], "tolist", lambda k=k: batch[k])()) for k in ("problem", "seed", "qubits", "layers")]
    for problem, seed, qubits, layers in zip(*columns):
        task_json, error = "", ""
        try:
            task_json = json.dumps(asdict(generate_task(problem, int(seed), int(qubits), int(layers), checker)))
        except Exception as error_:  # noqa: BLE001 - reported with the spec, then excluded
            error = f"generation failed: {type(error_).__name__}: {error_}"
        for key, value in (("problem", problem), ("seed", int(seed)), ("task", task_json), ("error", error)):
            rows[key].append(value)
    return dict(rows)


def synthesize(config: Any, run: Any) -> dict[str, Any]:
    """The quasar path of `qvr synth` (``config``: pipelines.synth.Config)."""
    import ray

    from actors.contracts import Task
    from actors.verify.executor import VerificationJob
    from actors.verify.pool.pool import VerifierPool
    from pipelines.cluster import pool_demand
    from pipelines.job import connect_ray
    from pipelines.tasks.loader import write_task_set

    todo = specs(config.quasar)
    log.info("%d QUASAR specs", len(todo))
    connect_ray(config.ray, needs=[pool_demand(config.pool)])
    started = time.monotonic()
    pool = VerifierPool(config.verifier, config.pool, hidden_paths=[run.path])
    try:
        rows = list(ray.data.from_items(todo).map_batches(
            generate_batch, batch_size=1, num_cpus=0.5, fn_kwargs={"checker": config.quasar.checker.model_dump()}
        ).iter_rows())
        generated = [row for row in rows if not row["error"]]
        tasks = [Task(**json.loads(row["task"])) for row in generated]
        verdicts = pool.run([VerificationJob(task, task.reference_solution, 0) for task in tasks]) if tasks else []
    finally:
        pool.close()
    wall_s = time.monotonic() - started

    accepted, rejected, rewards = [], [], {}
    for row in rows:
        if row["error"]:
            rejected.append({"problem": row["problem"], "seed": row["seed"], "reason": row["error"]})
    for task, verdict in zip(tasks, verdicts):
        rewards[task.task_id] = verdict.reward
        reason = ""
        if verdict.status != "passed":
            reason = f"reference {verdict.status}: {verdict.stderr_tail[-300:]}"
        elif verdict.reward < config.quasar.min_reference_reward:
            reason = f"reference reward {verdict.reward:.3f} < {config.quasar.min_reference_reward}"
        if reason:
            rejected.append({"problem": task.area, "seed": task.metadata["seed"], "reason": reason})
            continue
        task.metadata.update(reference_reward=round(verdict.reward, 6), isolation=task.metadata.get("isolation", "split"))
        accepted.append(task)
    output = write_task_set(run.path, config.output, accepted, rejected, "problem")
    per_problem = collections.Counter(task.area for task in accepted)
    print(summary_table(todo, accepted, rewards))
    result = {"tasks": len(accepted), "problem_types": dict(sorted(per_problem.items())),
              "reference_reward_mean": round(statistics.fmean(rewards[t.task_id] for t in accepted), 4) if accepted else None,
              "tasks_per_s": round(len(accepted) / wall_s, 3), "rejected": len(rejected), "output": str(output),
              **cache_figures(verdicts)}
    run.log_metrics({"tasks": float(len(accepted)), "reference_reward_mean": float(result["reference_reward_mean"] or 0.0),
                     "rejected": float(len(rejected))}, step=0)
    return result


def summary_table(todo: list[dict[str, Any]], accepted: list[Any], rewards: dict[str, float]) -> str:
    specs_per = collections.Counter(spec["problem"] for spec in todo)
    lines = [f"{'problem':<22} {'specs':>6} {'kept':>5} {'qubits':>8} {'ref reward':>11}"]
    for problem in sorted(specs_per):
        kept = [task for task in accepted if task.area == problem]
        qubits = sorted({task.metadata["n_qubits"] for task in kept})
        mean = statistics.fmean(rewards[task.task_id] for task in kept) if kept else float("nan")
        lines.append(f"{problem:<22} {specs_per[problem]:>6} {len(kept):>5} "
                     f"{','.join(map(str, qubits)) or '-':>8} {mean:>11.4f}")
    return "\n".join(lines)
