"""The sample-and-verify stream: requests in, each completion out with its own verdict.

Every job that samples and verifies goes through :class:`SampleAndVerify`: GRPO's producer (single-
and multi-turn) and the evaluation (a model's samples; completions read from a file and reference
solutions use its verification half alone, as ``given`` jobs). It

- samples each :class:`Batch` of requests (prompts with their tasks and the caller's ``context``)
  on a thread, one batch after the other, through the rollout group's ``stream`` (a shard at a
  time);
- hands each answer to the VerifierPool the moment its shard exists, so verification overlaps
  generation: :meth:`VerifierPool.pairs` gives every job back with its verdict, the job's
  ``context`` naming its trajectory, so nothing is joined by key and no task id is rewritten;
- with multi-turn settings (actors/rollout/turns.py) sends a trajectory's next turn, token in,
  token out, the moment its own verdict is back, with whatever others are ready then;
- yields one :class:`Verified` per sample once its last verdict is in (in the order they finish):
  the caller's context, the task, the sample index, the verdict, the tokens (multi-turn: the whole
  trajectory with its loss mask) and, multi-turn, the trajectory's turns;
- measures ``timing``: ``generate_s`` (until the last answer existed), ``verify_s`` (until the last
  verdict) and ``verify_tail_s`` (what verification added after generation ended).

Prompts reach the rollout group under ids of the stream's own, ``{request number}:{task id}`` (a
later turn's ``...#turn{t}#{sample}``): one task may be asked for in several requests of a call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from actors.contracts import Task, Verdict
from actors.rollout.config import SamplingConfig
from actors.rollout.engine import RolloutCompletion
from actors.rollout.prompts import Prompt
from actors.rollout.turns import FeedbackTokens, Trajectory, TurnsConfig, next_prompt

if TYPE_CHECKING:
    from actors.verify.executor import VerificationJob


def answer_job(task: Task, text: str, sample_idx: int, qpu_step: int | None = None) -> VerificationJob:
    """The verification job of a sampled answer: its code extracted for the task's harness;
    ``qpu_step``: the training step whose QPU budget it draws on (see VerificationJob)."""
    from actors.verify.executor import VerificationJob
    from actors.verify.extract import extract_code

    return VerificationJob(task, extract_code(text, task.harness), sample_idx, text, qpu_step=qpu_step)


MakeJob = Callable[[Task, str, int], "VerificationJob"]
"""(task, answer text, sample index) -> the VerificationJob of that answer."""


@dataclass
class Request:
    """One prompt, sampled ``sampling.n`` times. The prompt's own id is not used: the stream gives
    it one of its own."""

    task: Task
    prompt: Prompt
    context: Any = None
    """The caller's, handed back with each of the request's samples."""


@dataclass
class Batch:
    """Requests sampled with the same settings (one call to the rollout group)."""

    requests: list[Request]
    sampling: SamplingConfig
    make_job: MakeJob = answer_job
    """How an answer becomes its verification job."""
    feedback_tokens: FeedbackTokens | None = None
    """Multi-turn: the tokens that follow an answer in these prompts (chat or plain text)."""


@dataclass
class Verified:
    """One sample with its own verdict."""

    context: Any
    """What the caller sent with the sample's request (a given job: the job's ``context``)."""
    task: Task
    sample_idx: int
    verdict: Verdict
    """The final answer's (multi-turn: unshaped, see :func:`actors.rollout.turns.shaped_verdict`)."""
    completion: RolloutCompletion | None = None
    """The tokens: the engine's completion (single-turn) or the whole trajectory as one, with its
    loss mask (multi-turn); under the task's own id. None for a given job."""
    trajectory: Trajectory | None = None
    """Multi-turn: each answer with its own verdict and the feedback after it."""


@dataclass(eq=False)
class _Sample:
    """A sample being taken: what its jobs carry as their context."""

    batch: Batch
    request: Request
    prompt_id: str
    trajectory: Trajectory
    answer: RolloutCompletion | None = None
    """The latest answer as the engine returned it."""


@dataclass(eq=False)
class _Given:
    """What a given job carries to the pool as its context: the caller's job, context and all."""

    job: VerificationJob


@dataclass
class SampleAndVerify:
    """``async for verified in SampleAndVerify(group, pool, batches, ...)``; see the module docstring.

    ``group``: anything with ``stream(prompts, sampling)`` (a RolloutGroup), or None where nothing is
    sampled; ``pool``: anything with ``pairs(jobs)`` (a VerifierPool). ``given``: jobs verified as
    they are (first), each coming back with its own ``context``. ``turns``: multi-turn settings
    (None or max_turns 1: single-turn; every batch then needs its ``feedback_tokens``); a
    trajectory whose next prefix would not fit ``max_model_len`` with ``sampling.max_tokens`` ends at
    its last answer; ``timeout_s`` is the verifier's (the feedback names it)."""

    group: Any
    pool: Any
    batches: Sequence[Batch] = ()
    given: Iterable[VerificationJob] = ()
    turns: TurnsConfig | None = None
    max_model_len: int | None = None
    timeout_s: float | None = None
    timing: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.turns is not None and self.turns.max_turns == 1:
            self.turns = None
        if self.batches and self.group is None:
            raise ValueError("batches to sample need a rollout group")
        if self.turns is not None and any(batch.feedback_tokens is None for batch in self.batches):
            raise ValueError("multi-turn sampling needs each batch's feedback_tokens")

    def __aiter__(self) -> AsyncIterator[Verified]:
        return self._run()

    async def _run(self) -> AsyncIterator[Verified]:
        loop = asyncio.get_running_loop()
        answers: asyncio.Queue = asyncio.Queue()
        started = time.monotonic()
        timing = self.timing
        if self.group is not None:
            timing["generate_s"] = 0.0
        first: dict[str, list[_Sample]] = {}  # a request's prompt id -> its samples
        later: dict[str, _Sample] = {}  # a later turn's prompt id -> its sample
        calls: list[tuple[list[Prompt], SamplingConfig]] = []
        for batch in self.batches:
            prompts = []
            for position, request in enumerate(batch.requests):
                prompt_id = f"{len(first)}:{request.task.task_id}"
                first[prompt_id] = [_Sample(batch, request, prompt_id,
                                            Trajectory(request.task, index, position * batch.sampling.n + index))
                                    for index in range(batch.sampling.n)]
                prompts.append(replace(request.prompt, task_id=prompt_id))
            if prompts:
                calls.append((prompts, batch.sampling))
        open_samples = sum(len(samples) for samples in first.values())
        given = list(self.given)
        open_given = len(given)
        if open_samples == 0:
            answers.put_nowait(None)

        def generate(work: list[tuple[list[Prompt], SamplingConfig]]) -> None:
            try:
                for prompts, sampling in work:
                    expected, got = len(prompts) * sampling.n, 0
                    for _, shard in self.group.stream(prompts, sampling):
                        got += len(shard)
                        loop.call_soon_threadsafe(answers.put_nowait, shard)
                    if got != expected:
                        raise RuntimeError(f"the rollout group returned {got} samples for {expected}")
            except BaseException as error:  # noqa: BLE001 - re-raised on the event loop
                loop.call_soon_threadsafe(answers.put_nowait, error)
            finally:
                timing["generate_s"] = max(timing.get("generate_s", 0.0), time.monotonic() - started)

        def answered(completion: RolloutCompletion) -> VerificationJob:
            sample = later.pop(completion.task_id, None) or first[completion.task_id][completion.sample_idx]
            sample.answer = completion
            trajectory = sample.trajectory
            turn = trajectory.add_answer(completion)
            job = sample.batch.make_job(trajectory.task, turn.text, trajectory.sample_idx)
            job.context = sample
            turn.code = job.code
            return job

        async def jobs() -> AsyncIterator[VerificationJob]:
            for job in given:
                yield replace(job, context=_Given(job))
            while (item := await answers.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                for completion in item:
                    yield answered(completion)

        def verified(sample: _Sample, verdict: Verdict) -> Verified:
            trajectory = sample.trajectory
            if self.turns is None:
                completion = replace(sample.answer, task_id=trajectory.task.task_id)
                return Verified(sample.request.context, trajectory.task, trajectory.sample_idx, verdict, completion)
            return Verified(sample.request.context, trajectory.task, trajectory.sample_idx, verdict,
                            trajectory.completion(), trajectory)

        generations = [loop.run_in_executor(None, generate, calls)] if calls else []
        try:
            async for job, verdict in self.pool.pairs(jobs()):
                origin = job.context
                if isinstance(origin, _Given):
                    open_given -= 1
                    yield Verified(origin.job.context, origin.job.task, origin.job.sample_idx, verdict)
                    continue
                trajectory = origin.trajectory
                trajectory.final.verdict = verdict
                prompt = None
                if self.turns is not None:
                    prompt = next_prompt(trajectory, self.turns, origin.batch.feedback_tokens, origin.batch.sampling,
                                         f"{origin.prompt_id}#turn{len(trajectory.turns) + 1}#{trajectory.sample_idx}",
                                         self.max_model_len, self.timeout_s)
                if prompt is not None:  # asked for at once: nothing waits for other verdicts
                    later[prompt.task_id] = origin
                    one = origin.batch.sampling.model_copy(update={"n": 1})
                    generations.append(loop.run_in_executor(None, generate, [([prompt], one)]))
                    continue
                open_samples -= 1
                if open_samples == 0:
                    answers.put_nowait(None)
                yield verified(origin, verdict)
        finally:
            for generation in generations:
                await generation
        if open_samples or open_given:
            raise RuntimeError(f"{open_samples} sample(s) and {open_given} given job(s) got no verdict")
        timing["verify_s"] = time.monotonic() - started
        if self.group is not None:
            timing["verify_tail_s"] = max(0.0, timing["verify_s"] - timing["generate_s"])
