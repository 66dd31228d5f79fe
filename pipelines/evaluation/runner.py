"""One evaluation: samples from a rollout group (or a file, or the references), each verified by
the verifier pool as soon as it exists, scored per benchmark.

:func:`evaluate` is the one entry point of ``qvr eval`` and of the in-training hook
(:func:`evaluate_policy`): it takes a RolloutGroup (any object with ``stream(prompts, sampling)``
and its ``config``), a VerifierPool and benchmarks of tasks, and returns every sample as a row
(completion + verdict) with per-benchmark metrics. Generation runs on a thread and hands each
shard of samples to the pool the moment it is sampled, so verification overlaps generation; the
time verification adds after generation ends is measured (``verify_tail_s``).

The pool is shared across benchmarks whose task ids may collide (QHE and QHE-hard both use
``qiskitHumanEval/N``): each benchmark's tasks reach the pool under ``BENCHMARK::task_id``
(copies that share the original's metadata, so the pool's isolation marks land on the tasks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
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

SEP = "::"
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


def pool_task(benchmark: str, task: Task) -> Task:
    """``task`` under ``BENCHMARK::task_id`` for the pool; it shares the original's metadata."""
    return replace(task, task_id=f"{benchmark}{SEP}{task.task_id}")


def answer_job(task: Task, text: str, key: int, prompt_mode: str) -> Any:
    """The verification job of a model's answer: its code extracted, and where a chat answer
    continues the prompt's code, started on a new line."""
    from actors.verify.executor import VerificationJob
    from actors.verify.extract import extract_code
    from actors.verify.sandbox.harnesses.registry import get

    code = extract_code(text, task.harness)
    if code is not None and prompt_mode == "chat" and get(task.harness).continues_prompt and not task.prompt.endswith("\n"):
        code = "\n" + code  # a chat answer's code block starts at column 0; the prompt may end mid-line
    return VerificationJob(task, code, key, text)


class _Bookkeeping:
    """Pool key -> sample, and the verified rows."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int], _Sample] = {}
        self.pool_tasks: dict[tuple[str, str], Task] = {}
        self.next_index: dict[str, int] = {}
        self.rows: list[dict[str, Any]] = []

    def job(self, sample: _Sample) -> Any:
        """The verification job of a sample (its pool key registered)."""
        from actors.verify.executor import VerificationJob

        key = (sample.benchmark, sample.task.task_id)
        task = self.pool_tasks.get(key)
        if task is None:
            task = self.pool_tasks[key] = pool_task(sample.benchmark, sample.task)
        index = self.next_index.get(task.task_id, 0)
        self.next_index[task.task_id] = index + 1
        self.pending[(task.task_id, index)] = sample
        if sample.mode == "canonical":
            return VerificationJob(task, task.reference_solution, index)
        return answer_job(task, sample.text, index, sample.prompt_mode)

    def verdict(self, verdict: Any) -> dict[str, Any]:
        from actors.verify.rewards.default import format_reward
        from actors.verify.rewards.registry import RewardInput

        sample = self.pending.pop((verdict.task_id, verdict.sample_idx))
        task = sample.task
        row = {
            "benchmark": sample.benchmark, "mode": sample.mode, "task_id": task.task_id, "sample_idx": sample.sample_idx,
            "family": task.family, "difficulty": task.difficulty, "area": task.area, "prompt_mode": sample.prompt_mode,
            "completion": sample.text, "finish_reason": sample.finish_reason,
            "completion_tokens": sample.completion_tokens, "policy_version": sample.policy_version,
            "status": verdict.status, "tests_passed": verdict.tests_passed, "tests_total": verdict.tests_total,
            "reward": verdict.reward, "isolation": verdict.isolation, "duration_s": verdict.duration_s,
            "qpu_wait_s": verdict.qpu_wait_s, "stderr_tail": verdict.stderr_tail,
            "measures": json.dumps(verdict.measures, sort_keys=True),
            "failure": failure_kind(verdict.status, verdict.stderr_tail),
            "format_ok": None if sample.mode == "canonical" else
            format_reward(RewardInput(text=sample.text, status=verdict.status, tests_passed=0, tests_total=0)) == 1.0,
        }
        self.rows.append(row)
        return row


def _prompt_limit(rollout: Any) -> int | None:
    """The longest prompt + completion the model takes, as the engines compute it."""
    if getattr(rollout, "max_model_len", None):
        return rollout.max_model_len
    try:
        from transformers import AutoConfig

        return getattr(AutoConfig.from_pretrained(rollout.model), "max_position_embeddings", None)
    except Exception:  # noqa: BLE001 - unknown: the engine's own check still applies
        return None


def _generation_plan(sets: list[EvalSet], plan: EvalPlan, tokenizer: Any, limit: int | None, group_config: Any = None
                     ) -> tuple[list[tuple[list[Any], Any, list[_Sample]]], list[_Sample]]:
    """(rollout requests: prompts, sampling, sample templates), samples of prompts too long."""
    from actors.rollout.config import SamplingConfig
    from actors.rollout.prompts import PromptRenderer
    from actors.verify.sandbox.harnesses.registry import get

    has_template = bool(getattr(tokenizer, "chat_template", None))
    renderer = PromptRenderer(tokenizer, "completion")
    # Text prompts reach the model as they are only where the group does not wrap them in the chat
    # template (qvr eval's own groups use 'completion'; a training job's may use 'auto').
    prompt_format = getattr(group_config, "prompt_format", "completion")
    raw_text = prompt_format == "completion" or (prompt_format == "auto" and not has_template)
    requests, too_long, skipped, skipped_tasks = [], [], [], []
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
            prompt = render_prompt(task, eval_set.config, mode, task_id=f"{eval_set.name}{SEP}{task.task_id}")
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
                samples = [_Sample(eval_set.name, sample_mode, task, index, "", prompt_mode)
                           for task, _ in fitting for index in range(n)]
                requests.append(([prompt for _, prompt in fitting], config, samples))
        for task, prompt_mode in too_long[len(skipped_tasks):]:
            skipped_tasks.append((eval_set.name, task))
            for sample_mode, sampling in modes:
                skipped += [_Sample(eval_set.name, sample_mode, task, index, "", prompt_mode, PROMPT_TOO_LONG)
                            for index in range(sampling["n"])]
    if too_long:
        log.warning("%d prompt(s) do not fit the model's %s tokens: their samples are empty (no code): %s",
                    len(too_long), limit, ", ".join(f"{name}/{task.task_id}" for name, task in skipped_tasks[:5]))
    return requests, skipped


async def _run(pool: Any, produce: Callable[[Callable[[list[_Sample]], None]], None] | None,
               ready: Iterable[_Sample], books: _Bookkeeping, on_row: Callable[[dict[str, Any]], None] | None,
               timing: dict[str, float]) -> None:
    """Verify ``ready`` samples and whatever ``produce`` (run on a thread) hands over, as it comes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    started = time.monotonic()

    def generate() -> None:
        try:
            if produce is not None:
                produce(lambda samples: loop.call_soon_threadsafe(queue.put_nowait, samples))
        except BaseException as error:  # noqa: BLE001 - re-raised on the event loop
            loop.call_soon_threadsafe(queue.put_nowait, error)
        finally:
            timing["generate_s"] = time.monotonic() - started
            loop.call_soon_threadsafe(queue.put_nowait, None)

    async def jobs() -> AsyncIterator[Any]:
        for sample in ready:
            yield books.job(sample)
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for sample in item:
                yield books.job(sample)

    generating = loop.run_in_executor(None, generate)
    try:
        async for verdict in pool.submit(jobs()):
            row = books.verdict(verdict)
            if on_row is not None:
                on_row(row)
    finally:
        await generating
    timing["verify_s"] = time.monotonic() - started
    if produce is None:
        del timing["generate_s"]  # nothing was generated: verification is the whole run
    else:
        timing["verify_tail_s"] = max(0.0, timing["verify_s"] - timing["generate_s"])


async def _run_turns(pool: Any, group: Any, requests: list[tuple[list[Any], Any, list[_Sample]]], ready: list[_Sample],
                     books: _Bookkeeping, turns: Any, tokenizer: Any, on_row: Callable[[dict[str, Any]], None] | None,
                     timing: dict[str, float]) -> None:
    """Multi-turn sampling (actors/rollout/turns.py): each request's trajectories, the verifier's
    feedback between answers; a row per trajectory with its final answer and ``status_by_turn``."""
    from actors.rollout.turns import FeedbackTokens, model_len_limit, run_turns

    started = time.monotonic()
    if ready:  # prompts too long to sample: verified as they are (no code)
        await _run(pool, None, ready, books, on_row, {})
    limit = model_len_limit(group.config)
    generate_s = 0.0
    for prompts, sampling, templates in requests:
        by_key = {(f"{sample.benchmark}{SEP}{sample.task.task_id}", sample.sample_idx): sample for sample in templates}
        firsts = [by_key[(prompt.task_id, 0)] for prompt in prompts]
        tasks = [books.pool_tasks.setdefault((sample.benchmark, sample.task.task_id),
                                             pool_task(sample.benchmark, sample.task)) for sample in firsts]
        prompt_mode = firsts[0].prompt_mode

        def make_job(task: Task, text: str, key: int, mode: str = prompt_mode) -> Any:
            return answer_job(task, text, key, mode)

        feedback_tokens = FeedbackTokens(tokenizer, chat=prompt_mode == "chat", role=turns.feedback.role)
        trajectories, own = await run_turns(group, pool, tasks, prompts, sampling, turns, feedback_tokens,
                                            max_model_len=limit, make_job=make_job)
        generate_s += own.get("generate_s", 0.0)
        for trajectory in trajectories:
            sample = by_key[(trajectory.task.task_id, trajectory.sample_idx)]
            final = trajectory.final
            sample = replace(sample, text=final.text, finish_reason=final.finish_reason,
                             completion_tokens=int(sum(trajectory.loss_mask)), policy_version=trajectory.policy_version)
            books.pending[(trajectory.task.task_id, trajectory.sample_idx)] = sample
            row = books.verdict(replace(final.verdict, task_id=trajectory.task.task_id, sample_idx=trajectory.sample_idx))
            row["status_by_turn"] = [turn.verdict.status for turn in trajectory.turns]
            row["turns"] = len(trajectory.turns)
            row["max_turns"] = turns.max_turns
            if on_row is not None:
                on_row(row)
    timing["generate_s"] = generate_s
    timing["verify_s"] = time.monotonic() - started
    timing["verify_tail_s"] = 0.0


def evaluate(pool: Any, sets: list[EvalSet], plan: EvalPlan | None = None, group: Any = None,
             completions: dict[str, list[Completion]] | None = None, canonical: bool = False,
             ks: list[int] | None = None, on_row: Callable[[dict[str, Any]], None] | None = None,
             tokenizer: Any = None) -> EvalResult:
    """Sample (from ``group`` with ``plan``), or take ``completions`` (benchmark -> completions),
    or each task's reference (``canonical``); verify everything on ``pool``; score per benchmark.

    ``ks``: the k of pass@k for completions (default ``plan.sampled.k``); the canonical run is
    pass@1. ``on_row`` sees each verified row as it comes (progress, metrics)."""
    # The driver's verification imports (the job's contract pulls in the sandbox package) before any
    # timing starts: the first sample must not wait seconds for them.
    from actors.verify.executor import VerificationJob  # noqa: F401
    from actors.verify.extract import extract_code  # noqa: F401

    plan = plan or EvalPlan()
    if sum([group is not None, completions is not None, canonical]) != 1:
        raise ValueError("evaluate() takes exactly one of: a rollout group, completions, canonical")
    books = _Bookkeeping()
    ready: list[_Sample] = []
    produce = None
    timing: dict[str, float] = {}
    if canonical:
        for eval_set in sets:
            missing = [task.task_id for task in eval_set.tasks if task.reference_solution is None]
            if missing:
                raise ValueError(f"benchmark {eval_set.name!r}: tasks without a reference solution: {missing[:5]}")
            ready += [_Sample(eval_set.name, "canonical", task, 0, task.reference_solution or "") for task in eval_set.tasks]
        ks = [1]
    elif completions is not None:
        by_name = {eval_set.name: {task.task_id: task for task in eval_set.tasks} for eval_set in sets}
        for name, items in completions.items():
            for completion in items:
                ready.append(_Sample(name, "completions", by_name[name][completion.task_id], completion.sample_idx,
                                     completion.text, "", completion.finish_reason))
        ks = ks or plan.sampled.k
    else:
        if tokenizer is None:
            from actors.rollout.engine import load_tokenizer

            tokenizer = load_tokenizer(group.config)
        requests, ready = _generation_plan(sets, plan, tokenizer, _prompt_limit(group.config), group.config)
        ks = plan.sampled.k  # greedy-only benchmarks are scored pass@1

        def produce(hand_over: Callable[[list[_Sample]], None]) -> None:
            for prompts, sampling, templates in requests:
                by_key = {(f"{sample.benchmark}{SEP}{sample.task.task_id}", sample.sample_idx): sample
                          for sample in templates}
                for _, shard in group.stream(prompts, sampling):
                    samples = []
                    for completion in shard:
                        sample = by_key[(completion.task_id, completion.sample_idx)]
                        samples.append(replace(sample, text=completion.text, finish_reason=completion.finish_reason,
                                               completion_tokens=len(completion.token_ids),
                                               policy_version=completion.policy_version))
                    hand_over(samples)

    if group is not None and plan.turns.max_turns > 1:
        asyncio.run(_run_turns(pool, group, requests, ready, books, plan.turns, tokenizer, on_row, timing))
    else:
        asyncio.run(_run(pool, produce, ready, books, on_row, timing))
    if books.pending:
        raise RuntimeError(f"{len(books.pending)} sample(s) got no verdict, e.g. {next(iter(books.pending))}")
    position = {(eval_set.name, task.task_id): (set_index, task_index) for set_index, eval_set in enumerate(sets)
                for task_index, task in enumerate(eval_set.tasks)}
    modes = {"canonical": 0, "completions": 0, "greedy": 0, "sampled": 1}
    rows = sorted(books.rows, key=lambda row: (position[(row["benchmark"], row["task_id"])][0], modes[row["mode"]],
                                               position[(row["benchmark"], row["task_id"])][1], row["sample_idx"]))
    metrics = {}
    for eval_set in sets:
        own = [row for row in rows if row["benchmark"] == eval_set.name]
        if own:
            metrics[eval_set.name] = benchmark_metrics(own, ks)
    return EvalResult(rows=rows, metrics=metrics, timing={key: round(value, 3) for key, value in timing.items()})


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
