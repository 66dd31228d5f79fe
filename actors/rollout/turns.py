"""Multi-turn rollouts: the verifier's feedback comes back as a tool turn and the policy answers again.

QUASAR (arXiv 2510.00967, "agentic RL with external quantum simulator verification") sends the
policy's answer to a simulator tool, returns the tool's report, and lets the policy answer again;
the reward is on the outcome. Here, per trajectory (one of the G samples of a prompt):

1. the policy answers (turn 1: the G samples of a prompt as one request, sharing its KV cache);
2. the answer is verified the moment it exists (the VerifierPool, as single-turn rollouts are);
3. unless it passed (``stop_on_pass``) or ``max_turns`` is reached, the checker's feedback
   (actors/verify/feedback.py: data, rendered by qvr) is appended **as tokens** after the sampled
   answer: the chat template's end of the assistant turn and a ``tool`` (or ``user``) message, then
   the assistant's header; the policy samples one continuation (n=1) from that whole prefix.

Decisions:

- Token in, token out: a later turn's prompt is the previous prompt's token ids + the sampled
  tokens + the feedback's tokens; nothing sampled is ever re-tokenized, so the learner scores
  exactly the sampled tokens and vLLM's prefix cache serves the whole earlier conversation.
- The trajectory's completion is everything after the task's prompt: answers and feedback. Its
  ``loss_mask`` is 1 on the policy's tokens and 0 on the feedback's; the feedback's logprobs are
  placeholders (0.0) that the mask keeps out of the loss, the logprob gap and the importance weight.
- Per-trajectory streaming: a trajectory's next turn is requested as soon as its own verdict is
  back, together with whatever other trajectories are ready at that moment (never waiting for
  the rest); its sampling seed is a function of (seed, turn, trajectory), so batching does not
  change what is sampled.
- The trajectory's reward is its last answer's, times ``turn_discount`` and minus ``turn_penalty``
  per extra turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.contracts import Task, Verdict
from actors.rollout.config import SamplingConfig
from actors.rollout.engine import RolloutCompletion
from actors.rollout.prompts import Prompt
from actors.verify.feedback import FeedbackConfig, build_feedback, render_feedback

log = logging.getLogger("qvr.rollout")

TURN_SEED_STRIDE = 1_000_033
"""A later turn of trajectory j is seeded with ``seed + turn * TURN_SEED_STRIDE + j``."""


class TurnsConfig(Config):
    """Multi-turn rollouts with the verifier as a tool (QUASAR, arXiv 2510.00967: the policy's
    answer goes to a quantum-simulator tool and the tool's feedback comes back before it answers
    again). ``max_turns`` 1 is the single-turn rollout."""

    max_turns: int = Field(1, ge=1, le=16)
    """Most answers per trajectory; 1 is single-turn (no feedback)."""

    stop_on_pass: bool = True
    """End a trajectory at its first answer that passes every test. False forces every turn
    (QUASAR's one forced tool turn: max_turns 2, stop_on_pass false)."""

    turn_discount: float = Field(1.0, gt=0.0, le=1.0)
    """The final answer's reward is multiplied by turn_discount ** (turns - 1): a fix after feedback
    is worth less than a first-time pass."""

    turn_penalty: float = Field(0.0, ge=0.0, le=100.0)
    """Subtracted from the reward per turn after the first."""

    feedback: FeedbackConfig = FeedbackConfig()
    """What the feedback message says (errors, measures, failing test ids) and its chat role."""

    def shaped_reward(self, reward: float, turns: int) -> float:
        """A trajectory's reward from its final answer's reward and the turns it took."""
        extra = turns - 1
        return reward * self.turn_discount ** extra - self.turn_penalty * extra


_SENTINEL_ANSWER = "\u2063QVR-ANSWER\u2063"
_SENTINEL_FEEDBACK = "\u2063QVR-FEEDBACK\u2063"
PLAIN_FEEDBACK = "\n\nVerifier feedback:\n{feedback}\n\nCorrected answer:\n"
"""How feedback is appended where the prompts are plain text (prompt_format completion)."""


class FeedbackTokens:
    """The token ids that follow a sampled answer to hand the policy the feedback and its next
    turn: the chat template's own rendering when prompts are chat (the end of the assistant
    turn, the feedback message, the assistant's header), else :data:`PLAIN_FEEDBACK`."""

    def __init__(self, tokenizer: Any, chat: bool, role: str = "tool") -> None:
        self.tokenizer, self.chat, self.role = tokenizer, chat, role
        if chat:
            self.close, self.before, self.after = self._template_pieces()

    def _template_pieces(self) -> tuple[str, str, str]:
        conversation = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _SENTINEL_ANSWER}]
        try:
            answered = self.tokenizer.apply_chat_template(conversation, tokenize=False)
            continued = self.tokenizer.apply_chat_template(
                conversation + [{"role": self.role, "content": _SENTINEL_FEEDBACK}], add_generation_prompt=True,
                tokenize=False)
        except Exception as error:  # noqa: BLE001 - a template that rejects the role: say which setting
            raise ValueError(f"the chat template cannot render a {self.role!r} message ({error}); "
                             "set turns.feedback.role=user") from error
        if not continued.startswith(answered) or _SENTINEL_FEEDBACK not in continued:
            raise ValueError("the chat template renders the earlier turns differently once feedback follows; "
                             "multi-turn rollouts need a template that only appends")
        close = answered[answered.rindex(_SENTINEL_ANSWER) + len(_SENTINEL_ANSWER):]
        before, after = continued[len(answered):].split(_SENTINEL_FEEDBACK)
        return close, before, after

    def ids(self, answer_ids: list[int], feedback: str) -> list[int]:
        """Token ids to append after ``answer_ids`` (as sampled) for ``feedback``."""
        if not self.chat:
            text = PLAIN_FEEDBACK.format(feedback=feedback)
        else:
            answered = self.tokenizer.decode(answer_ids, skip_special_tokens=False)
            # The sampled answer may already end with part of the template's end of turn (its EOS).
            done = next(k for k in range(len(self.close), -1, -1) if answered.endswith(self.close[:k]))
            text = self.close[done:] + self.before + feedback + self.after
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class Turn:
    text: str
    token_ids: list[int]
    finish_reason: str
    verdict: Verdict | None = None
    code: str | None = None
    """The code that was verified (extracted from ``text``)."""
    feedback: str = ""
    """The feedback text that followed this answer ('' after the last one)."""


@dataclass
class Trajectory:
    """One sample of a prompt over all its turns."""

    task: Task
    sample_idx: int
    index: int
    """Position among all trajectories of the call (seeds later turns)."""
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    loss_mask: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    policy_version: int = 0

    @property
    def final(self) -> Turn:
        return self.turns[-1]

    def add_answer(self, completion: RolloutCompletion) -> Turn:
        if not self.turns:
            self.prompt_ids = list(completion.prompt_token_ids)
        self.completion_ids += completion.token_ids
        self.logprobs += completion.logprobs
        self.loss_mask += [1.0] * len(completion.token_ids)
        self.policy_version = completion.policy_version
        turn = Turn(completion.text, list(completion.token_ids), completion.finish_reason)
        self.turns.append(turn)
        return turn

    def add_feedback(self, text: str, ids: list[int]) -> None:
        self.final.feedback = text
        self.completion_ids += ids
        self.logprobs += [0.0] * len(ids)
        self.loss_mask += [0.0] * len(ids)

    def completion(self) -> RolloutCompletion:
        """The whole trajectory as one completion: every answer and feedback after the prompt,
        the final answer's text, the loss mask."""
        return RolloutCompletion(
            task_id=self.task.task_id, sample_idx=self.sample_idx, text=self.final.text,
            token_ids=list(self.completion_ids), logprobs=list(self.logprobs), policy_version=self.policy_version,
            finish_reason=self.final.finish_reason, prompt_token_ids=list(self.prompt_ids),
            loss_mask=list(self.loss_mask))


MakeJob = Callable[[Task, str, int], Any]
"""(task, answer text, key index) -> the VerificationJob of that answer (its code extracted)."""


def default_job(task: Task, text: str, key: int) -> Any:
    from actors.verify.executor import VerificationJob
    from actors.verify.extract import extract_code

    return VerificationJob(task, extract_code(text, task.harness), key, text)


async def run_turns(group: Any, pool: Any, tasks: list[Task], prompts: list[Prompt], sampling: SamplingConfig,
                    turns: TurnsConfig, feedback_tokens: FeedbackTokens, max_model_len: int | None = None,
                    make_job: MakeJob = default_job, timeout_s: float | None = None,
                    on_verdict: Callable[[Trajectory, Turn], None] | None = None,
                    ) -> tuple[list[Trajectory], dict[str, float]]:
    """Every prompt's ``sampling.n`` trajectories of up to ``turns.max_turns`` answers each (see the
    module docstring), and timing (generate_s: until the last answer existed; verify_s).

    ``group``: anything with ``stream(prompts, sampling)`` (a RolloutGroup); ``pool``: anything with
    ``submit(jobs)`` (a VerifierPool). ``tasks[i]`` is ``prompts[i]``'s task. A trajectory whose next
    prefix would not fit ``max_model_len`` with ``sampling.max_tokens`` ends at its last answer."""
    if len(tasks) != len(prompts):
        raise ValueError(f"{len(tasks)} tasks for {len(prompts)} prompts")
    n = sampling.n
    loop = asyncio.get_running_loop()
    jobs_in: asyncio.Queue = asyncio.Queue()
    started = time.monotonic()
    timing: dict[str, float] = {}
    trajectories = {(prompt.task_id, index): Trajectory(task, index, position * n + index)
                    for position, (prompt, task) in enumerate(zip(prompts, tasks)) for index in range(n)}
    by_key: dict[tuple[str, int], Trajectory] = {}
    continuing: dict[str, Trajectory] = {}  # prompt id of a later turn -> its trajectory
    open_count = len(trajectories)
    generations: list[asyncio.Future] = []

    def generate(batch: list[Prompt], batch_sampling: SamplingConfig) -> None:
        try:
            for _, shard in group.stream(batch, batch_sampling):
                loop.call_soon_threadsafe(jobs_in.put_nowait, shard)
        except BaseException as error:  # noqa: BLE001 - re-raised on the event loop
            loop.call_soon_threadsafe(jobs_in.put_nowait, error)
        finally:
            timing["generate_s"] = time.monotonic() - started

    def answered(completion: RolloutCompletion) -> Any:
        if completion.task_id in continuing:
            trajectory = continuing.pop(completion.task_id)
        else:
            trajectory = trajectories[(completion.task_id, completion.sample_idx)]
        turn = trajectory.add_answer(completion)
        key = (len(trajectory.turns) - 1) * n + trajectory.sample_idx
        by_key[(trajectory.task.task_id, key)] = trajectory
        job = make_job(trajectory.task, turn.text, key)
        turn.code = job.code
        return job

    async def jobs() -> AsyncIterator[Any]:
        while (item := await jobs_in.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for completion in item:
                yield answered(completion)

    def next_turn(trajectory: Trajectory, verdict: Verdict) -> bool:
        """Queue the trajectory's next answer; False when it cannot continue."""
        feedback = build_feedback(trajectory.task, verdict, turns.feedback, trajectory.final.code, timeout_s)
        text = render_feedback(feedback, turns.feedback)
        ids = feedback_tokens.ids(trajectory.final.token_ids, text)
        length = len(trajectory.prompt_ids) + len(trajectory.completion_ids) + len(ids)
        if max_model_len is not None and length + sampling.max_tokens > max_model_len:
            return False
        trajectory.add_feedback(text, ids)
        turn = len(trajectory.turns) + 1
        prompt_id = f"{trajectory.task.task_id}#turn{turn}#{trajectory.sample_idx}"
        seed = None if sampling.seed is None else sampling.seed + turn * TURN_SEED_STRIDE + trajectory.index
        continuing[prompt_id] = trajectory
        ready.append(Prompt(task_id=prompt_id, token_ids=trajectory.prompt_ids + trajectory.completion_ids, seed=seed))
        return True

    ready: list[Prompt] = []
    one = sampling.model_copy(update={"n": 1})
    generations.append(loop.run_in_executor(None, generate, list(prompts), sampling))
    try:
        async for verdict in pool.submit(jobs()):
            trajectory = by_key.pop((verdict.task_id, verdict.sample_idx))
            turn = trajectory.final
            turn.verdict = verdict
            if on_verdict is not None:
                on_verdict(trajectory, turn)
            more = len(trajectory.turns) < turns.max_turns and not (turns.stop_on_pass and verdict.status == "passed")
            if not (more and next_turn(trajectory, verdict)):
                open_count -= 1
            if ready:  # everything ready now goes out at once; nothing waits for other verdicts
                generations.append(loop.run_in_executor(None, generate, list(ready), one))
                ready.clear()
            if open_count == 0:
                jobs_in.put_nowait(None)
    finally:
        for generation in generations:
            await generation
    timing["verify_s"] = time.monotonic() - started
    timing.setdefault("generate_s", timing["verify_s"])
    timing["verify_tail_s"] = max(0.0, timing["verify_s"] - timing["generate_s"])
    missing = [key for key, trajectory in trajectories.items() if not trajectory.turns or trajectory.final.verdict is None]
    if missing:
        raise RuntimeError(f"{len(missing)} trajectories got no verdict, e.g. {missing[:3]}")
    return [trajectories[(prompt.task_id, index)] for prompt in prompts for index in range(n)], timing


def model_len_limit(rollout: Any) -> int | None:
    """The longest prompt + completion a rollout config's model takes, as the engines compute it
    (None when it cannot be known here: the engine's own check still applies)."""
    if getattr(rollout, "max_model_len", None):
        return rollout.max_model_len
    try:
        from transformers import AutoConfig

        return getattr(AutoConfig.from_pretrained(rollout.model), "max_position_embeddings", None)
    except Exception:  # noqa: BLE001
        return None


def feedback_tokens_for(rollout: Any, turns: TurnsConfig, tokenizer: Any = None) -> FeedbackTokens:
    """The :class:`FeedbackTokens` of a rollout config's tokenizer and prompt format."""
    from actors.rollout.engine import load_tokenizer
    from actors.rollout.prompts import PromptRenderer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(rollout)
    chat = PromptRenderer(tokenizer, rollout.prompt_format).chat
    return FeedbackTokens(tokenizer, chat, turns.feedback.role)


def turn_stats(trajectories: list[Trajectory], max_turns: int) -> dict[str, float]:
    """Turns taken and the pass rate after each turn (a trajectory that stopped keeps its last verdict)."""
    count = max(1, len(trajectories))
    stats = {"turns_mean": sum(len(t.turns) for t in trajectories) / count}
    for turn in range(1, max_turns + 1):
        passed = sum((t.turns[min(turn, len(t.turns)) - 1].verdict.status == "passed") for t in trajectories)
        stats[f"pass_rate/turn{turn}"] = passed / count
    return stats


def shaped_verdicts(trajectories: list[Trajectory], turns: TurnsConfig) -> list[Verdict]:
    """Each trajectory's final verdict under its own key, with the turn-shaped reward."""
    return [replace(t.final.verdict, task_id=t.task.task_id, sample_idx=t.sample_idx,
                    reward=turns.shaped_reward(t.final.verdict.reward, len(t.turns))) for t in trajectories]
