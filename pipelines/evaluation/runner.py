"""One evaluation: samples from a rollout group (or a file, or the references), each verified by
the verifier pool as soon as it exists, scored per benchmark.

:func:`evaluate` is the one entry point of ``qvr eval`` and of the in-training hook
(:func:`evaluate_policy`): it takes a RolloutGroup (any object with ``stream(prompts, sampling)``
and its ``config``), a VerifierPool and benchmarks of tasks, and returns every sample as a row
(completion + verdict) with per-benchmark metrics. Sampling and verifying is the sample-and-verify
stream's (actors/rollout/stream.py): generation runs on a thread and hands each shard of samples to
the pool the moment it is sampled, so verification overlaps generation, and the time verification
adds after generation ends is measured (``verify_tail_s``). Completions from a file, the reference
solutions and prompts too long to sample go through its verification half alone.

Each request carries its sample (benchmark, mode, task, prompt mode) as context and every sample
comes back with its own verdict, so benchmarks whose task ids collide (QHE and QHE-hard both use
``qiskitHumanEval/N``) stay apart under their own task ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from actors.contracts import Completion, Task
from pipelines.evaluation.benchmarks import (
    BenchmarkConfig,
    EvalPlan,
    render_prompt,
    resolve_prompt_mode,
    stop_strings,
)
from pipelines.evaluation.metrics import benchmark_metrics, failure_kind

log = logging.getLogger("qvr.eval")

PROMPT_TOO_LONG = "prompt_too_long"


@dataclass
class EvalSet:
    """One benchmark's tasks and how they are prompted."""

    name: str
    tasks: list[Task]
    config: BenchmarkConfig = field(default_factory=BenchmarkConfig)


@dataclass
class EvalResult:
    rows: list[dict[str, Any]]
    """Every sample: benchmark, mode, task, completion and verdict fields, failure kind."""
    metrics: dict[str, dict[str, Any]]
    """Benchmark name -> :func:`pipelines.evaluation.metrics.benchmark_metrics`."""
    timing: dict[str, float]
    """generate_s (until the last sample existed), verify_s (until the last verdict), wall_s,
    verify_tail_s (what verification added after generation ended)."""


@dataclass
class _Sample:
    benchmark: str
    mode: str
    task: Task
    sample_idx: int
    text: str
    prompt_mode: str = ""
    finish_reason: str = "stop"
    completion_tokens: int = 0
    policy_version: int = 0


def answer_job(task: Task, text: str, sample_idx: int, prompt_mode: str) -> Any:
    """The verification job of a model's answer: its code extracted, and where a chat answer
    continues the prompt's code, started on a new line."""
    from actors.verify.executor import VerificationJob
    from actors.verify.extract import extract_code
    from actors.verify.sandbox.harnesses.registry import get

    code = extract_code(text, task.harness)
    if code is not None and prompt_mode == "chat" and get(task.harness).continues_prompt and not task.prompt.endswith("\n"):
        code = "\n" + code  # a chat answer's code block starts at column 0; the prompt may end mid-line
    return VerificationJob(task, code, sample_idx, text)


def _given_job(sample: _Sample) -> Any:
    """The verification job of a sample that is not sampled here (a reference, a completion from a
    file, a prompt too long to sample), with the sample as its context."""
    from actors.verify.executor import VerificationJob

    if sample.mode == "canonical":
        return VerificationJob(sample.task, sample.task.reference_solution, sample.sample_idx, context=sample)
    job = answer_job(sample.task, sample.text, sample.sample_idx, sample.prompt_mode)
    job.context = sample
    return job


def _row(sample: _Sample, verdict: Any) -> dict[str, Any]:
    from actors.verify.rewards.default import format_reward
    from actors.verify.rewards.registry import RewardInput

    task = sample.task
    return {
        "benchmark": sample.benchmark, "mode": sample.mode, "task_id": task.task_id, "sample_idx": sample.sample_idx,
        "family": task.family, "difficulty": task.difficulty, "area": task.area, "prompt_mode": sample.prompt_mode,
        "completion": sample.text, "finish_reason": sample.finish_reason,
        "completion_tokens": sample.completion_tokens, "policy_version": sample.policy_version,
        "status": verdict.status, "tests_passed": verdict.tests_passed, "tests_total": verdict.tests_total,
        "reward": verdict.reward, "isolation": verdict.isolation, "duration_s": verdict.duration_s,
        "cached": verdict.cached,
        "qpu_wait_s": verdict.qpu_wait_s, "qpu_s": verdict.qpu_s, "tier": verdict.tier, "stderr_tail": verdict.stderr_tail,
        "measures": json.dumps(verdict.measures, sort_keys=True),
        "failure": failure_kind(verdict.status, verdict.stderr_tail),
        "format_ok": None if sample.mode == "canonical" else
        format_reward(RewardInput(text=sample.text, status=verdict.status, tests_passed=0, tests_total=0)) == 1.0,
    }


def _generation_plan(sets: list[EvalSet], plan: EvalPlan, tokenizer: Any, limit: int | None, group_config: Any = None
                     ) -> tuple[list[Any], list[_Sample]]:
    """The stream's batches (one per benchmark, prompt mode and sampling mode; each request's
    context the sample it makes, its index still 0), and the samples of prompts too long."""
    from functools import partial

    from actors.rollout.config import SamplingConfig
    from actors.rollout.prompts import PromptRenderer
    from actors.rollout.stream import Batch, Request
    from actors.rollout.turns import FeedbackTokens
    from actors.verify.sandbox.harnesses.registry import get

    has_template = bool(getattr(tokenizer, "chat_template", None))
    renderer = PromptRenderer(tokenizer, "completion")
    # Text prompts reach the model as they are only where the group does not wrap them in the chat
    # template (qvr eval's own groups use 'completion'; a training job's may use 'auto').
    prompt_format = getattr(group_config, "prompt_format", "completion")
    raw_text = prompt_format == "completion" or (prompt_format == "auto" and not has_template)
    batches, too_long, skipped, skipped_tasks = [], [], [], []
    for eval_set in sets:
        modes = []
        if plan.greedy:
            modes.append(("greedy", dict(n=1, temperature=0.0)))
        n = plan.sampled.n if eval_set.config.sampled_n is None else eval_set.config.sampled_n
        if n:
            if n < max(plan.sampled.k):
                raise ValueError(f"benchmark {eval_set.name!r}: sampled_n ({n}) is below the largest k "
                                 f"({max(plan.sampled.k)})")
            modes.append(("sampled", dict(n=n, temperature=plan.sampled.temperature, top_p=plan.sampled.top_p,
                                          top_k=plan.sampled.top_k, seed=plan.sampled.seed)))
        if not modes:
            raise ValueError(f"benchmark {eval_set.name!r}: nothing to sample (greedy off and no samples)")
        by_mode: dict[str, list[tuple[Task, Any]]] = {}
        for task in eval_set.tasks:
            try:
                mode = resolve_prompt_mode(eval_set.config.prompt_mode, get(task.harness).continues_prompt, has_template)
                if mode == "completion" and not raw_text:
                    raise ValueError(f"prompt_mode 'completion' needs a rollout group that renders text prompts as they "
                                     f"are (rollout.prompt_format 'completion', not {prompt_format!r})")
            except ValueError as error:
                raise ValueError(f"benchmark {eval_set.name!r}, task {task.task_id!r}: {error}") from None
            prompt = render_prompt(task, eval_set.config, mode)
            by_mode.setdefault(mode, []).append((task, prompt))
        for prompt_mode, items in by_mode.items():
            fitting = []
            for task, prompt in items:
                if limit is not None and len(renderer.token_ids(prompt)) >= limit:
                    too_long.append((task, prompt_mode))
                else:
                    fitting.append((task, prompt))
            for sample_mode, sampling in modes:
                n = sampling["n"]
                if not fitting:
                    continue
                config = SamplingConfig(max_tokens=eval_set.config.max_tokens, stop=stop_strings(eval_set.config, prompt_mode),
                                        **sampling)
                requests = [Request(task, prompt, _Sample(eval_set.name, sample_mode, task, 0, "", prompt_mode))
                            for task, prompt in fitting]
                feedback_tokens = None
                if plan.turns.max_turns > 1:
                    feedback_tokens = FeedbackTokens(tokenizer, chat=prompt_mode == "chat", role=plan.turns.feedback.role)
                batches.append(Batch(requests, config, partial(answer_job, prompt_mode=prompt_mode), feedback_tokens))
        for task, prompt_mode in too_long[len(skipped_tasks):]:
            skipped_tasks.append((eval_set.name, task))
            for sample_mode, sampling in modes:
                skipped += [_Sample(eval_set.name, sample_mode, task, index, "", prompt_mode, PROMPT_TOO_LONG)
                            for index in range(sampling["n"])]
    if too_long:
        log.warning("%d prompt(s) do not fit the model's %s tokens: their samples are empty (no code): %s",
                    len(too_long), limit, ", ".join(f"{name}/{task.task_id}" for name, task in skipped_tasks[:5]))
    return batches, skipped


async def _verify(stream: Any, turns: Any, on_row: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """Every sample's row, as the stream hands it over with its verdict; multi-turn rows add
    ``status_by_turn``, ``turns`` and ``max_turns``."""
    rows = []
    async for item in stream:
        sample = item.context
        if item.completion is not None:  # sampled here
            completion = item.completion
            tokens = len(completion.token_ids) if item.trajectory is None else int(sum(completion.loss_mask))
            sample = replace(sample, sample_idx=item.sample_idx, text=completion.text,
                             finish_reason=completion.finish_reason, completion_tokens=tokens,
                             policy_version=completion.policy_version)
        row = _row(sample, item.verdict)
        if item.trajectory is not None:
            row["status_by_turn"] = [turn.verdict.status for turn in item.trajectory.turns]
            row["turns"] = len(item.trajectory.turns)
            row["max_turns"] = turns.max_turns
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def evaluate(pool: Any, sets: list[EvalSet], plan: EvalPlan | None = None, group: Any = None,
             completions: dict[str, list[Completion]] | None = None, canonical: bool = False,
             ks: list[int] | None = None, on_row: Callable[[dict[str, Any]], None] | None = None,
             tokenizer: Any = None) -> EvalResult:
    """Sample (from ``group`` with ``plan``), or take ``completions`` (benchmark -> completions),
    or each task's reference (``canonical``); verify everything on ``pool``; score per benchmark.

    ``ks``: the k of pass@k for completions (default ``plan.sampled.k``); the canonical run is
    pass@1. ``on_row`` sees each verified row as it comes (progress, metrics)."""
    from actors.rollout.stream import SampleAndVerify
    from actors.rollout.turns import model_len_limit
    from actors.verify.cache.figures import cache_figures

    # The driver's verification imports (the job's contract pulls in the sandbox package) before any
    # timing starts: the first sample must not wait seconds for them.
    from actors.verify.executor import VerificationJob  # noqa: F401
    from actors.verify.extract import extract_code  # noqa: F401

    plan = plan or EvalPlan()
    if sum([group is not None, completions is not None, canonical]) != 1:
        raise ValueError("evaluate() takes exactly one of: a rollout group, completions, canonical")
    given: list[_Sample] = []
    batches: list[Any] = []
    limit = None
    if canonical:
        for eval_set in sets:
            missing = [task.task_id for task in eval_set.tasks if task.reference_solution is None]
            if missing:
                raise ValueError(f"benchmark {eval_set.name!r}: tasks without a reference solution: {missing[:5]}")
            given += [_Sample(eval_set.name, "canonical", task, 0, task.reference_solution or "") for task in eval_set.tasks]
        ks = [1]
    elif completions is not None:
        by_name = {eval_set.name: {task.task_id: task for task in eval_set.tasks} for eval_set in sets}
        for name, items in completions.items():
            for completion in items:
                given.append(_Sample(name, "completions", by_name[name][completion.task_id], completion.sample_idx,
                                     completion.text, "", completion.finish_reason))
        ks = ks or plan.sampled.k
    else:
        if tokenizer is None:
            from actors.rollout.engine import load_tokenizer

            tokenizer = load_tokenizer(group.config)
        limit = model_len_limit(group.config)
        batches, given = _generation_plan(sets, plan, tokenizer, limit, group.config)
        ks = plan.sampled.k  # greedy-only benchmarks are scored pass@1
    turns = plan.turns if group is not None else None
    stream = SampleAndVerify(group, pool, batches, [_given_job(sample) for sample in given], turns=turns,
                             max_model_len=limit)
    rows = asyncio.run(_verify(stream, turns, on_row))
    position = {(eval_set.name, task.task_id): (set_index, task_index) for set_index, eval_set in enumerate(sets)
                for task_index, task in enumerate(eval_set.tasks)}
    modes = {"canonical": 0, "completions": 0, "greedy": 0, "sampled": 1}
    rows = sorted(rows, key=lambda row: (position[(row["benchmark"], row["task_id"])][0], modes[row["mode"]],
                                               position[(row["benchmark"], row["task_id"])][1], row["sample_idx"]))
    metrics = {}
    for eval_set in sets:
        own = [row for row in rows if row["benchmark"] == eval_set.name]
        if own:
            metrics[eval_set.name] = benchmark_metrics(own, ks)
    timing = {key: round(value, 3) for key, value in stream.timing.items()}
    return EvalResult(rows=rows, metrics=metrics, timing={**timing, **cache_figures(rows)})


def evaluate_policy(group: Any, pool: Any, sets: list[EvalSet], plan: EvalPlan | None = None,
                    prefix: str = "eval/", tokenizer: Any = None) -> tuple[dict[str, float], EvalResult]:
    """The in-training hook (GRPO today; SFT/DPO the same way): evaluate the policy that ``group``
    serves on held-out ``sets`` and return flat scalars for the run's metric sinks
    (``eval/pass@1``, ``eval/greedy_pass@1``, per tier, format rate, failure shares; with several
    benchmarks ``eval/<benchmark>/pass@1`` ...) with the full result."""
    from pipelines.evaluation.metrics import flat_metrics

    result = evaluate(pool, sets, plan, group=group, tokenizer=tokenizer)
    flat: dict[str, float] = {}
    for name, metrics in result.metrics.items():
        flat.update(flat_metrics(metrics, prefix if len(result.metrics) == 1 else f"{prefix}{name}/"))
    flat[f"{prefix}generate_s"] = result.timing.get("generate_s", 0.0)
    flat[f"{prefix}verify_tail_s"] = result.timing.get("verify_tail_s", 0.0)
    return flat, result
