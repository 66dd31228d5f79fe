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

The loop is the sample-and-verify stream's (actors/rollout/stream.py; single-turn is its case of one
answer per trajectory). Here are the turns' own parts: the settings, the feedback's tokens, the
trajectory, the next turn's prompt (:func:`next_prompt`) and the stats.
"""

from __future__ import annotations

import logging
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
    logprobs: list[float] = field(default_factory=list)
    verdict: Verdict | None = None
    code: str | None = None
    """The code that was verified (extracted from ``text``)."""
    feedback: str = ""
    """The feedback text that followed this answer ('' after the last one)."""
    feedback_ids: list[int] = field(default_factory=list)
    """The feedback's token ids that followed this answer (none after the last one)."""


@dataclass
class Trajectory:
    """One sample of a prompt over all its turns."""

    task: Task
    sample_idx: int
    index: int
    """Position among the trajectories of its batch (seeds later turns)."""
    prompt_ids: list[int] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    policy_version: int = 0

    @property
    def final(self) -> Turn:
        return self.turns[-1]

    @property
    def completion_ids(self) -> list[int]:
        """Everything after the prompt: each answer and the feedback that followed it."""
        return [token for turn in self.turns for part in (turn.token_ids, turn.feedback_ids) for token in part]

    @property
    def logprobs(self) -> list[float]:
        """Per completion token: the engine's logprob on the policy's, a 0.0 placeholder on feedback's."""
        return [value for turn in self.turns for value in (*turn.logprobs, *[0.0] * len(turn.feedback_ids))]

    @property
    def loss_mask(self) -> list[float]:
        """Per completion token: 1 on the policy's, 0 on the feedback's."""
        return [value for turn in self.turns
                for value in (*[1.0] * len(turn.token_ids), *[0.0] * len(turn.feedback_ids))]

    def add_answer(self, completion: RolloutCompletion) -> Turn:
        if not self.turns:
            self.prompt_ids = list(completion.prompt_token_ids)
        self.policy_version = completion.policy_version
        turn = Turn(completion.text, completion.token_ids, completion.finish_reason, completion.logprobs)
        self.turns.append(turn)
        return turn

    def add_feedback(self, text: str, ids: list[int]) -> None:
        self.final.feedback, self.final.feedback_ids = text, list(ids)

    def completion(self) -> RolloutCompletion:
        """The whole trajectory as one completion: every answer and feedback after the prompt,
        the final answer's text, the loss mask."""
        return RolloutCompletion(
            task_id=self.task.task_id, sample_idx=self.sample_idx, text=self.final.text,
            token_ids=self.completion_ids, logprobs=self.logprobs, policy_version=self.policy_version,
            finish_reason=self.final.finish_reason, prompt_token_ids=list(self.prompt_ids),
            loss_mask=self.loss_mask)


def next_prompt(trajectory: Trajectory, turns: TurnsConfig, feedback_tokens: FeedbackTokens, sampling: SamplingConfig,
                prompt_id: str, max_model_len: int | None = None, timeout_s: float | None = None) -> Prompt | None:
    """The prompt of ``trajectory``'s next turn, its final answer verified: the checker's feedback
    appended to the trajectory as tokens, seeded per (seed, turn, trajectory). None where the
    trajectory ends: it passed (``stop_on_pass``), it has ``max_turns`` answers, its answer was not
    judged (``over_budget``: the QPU budget is spent, a later turn would fare no better), or its
    next prefix would not fit ``max_model_len`` with ``sampling.max_tokens``."""
    verdict = trajectory.final.verdict
    if (len(trajectory.turns) >= turns.max_turns or (turns.stop_on_pass and verdict.status == "passed")
            or not verdict.judged):
        return None
    feedback = build_feedback(trajectory.task, verdict, turns.feedback, trajectory.final.code, timeout_s)
    text = render_feedback(feedback, turns.feedback)
    ids = feedback_tokens.ids(trajectory.final.token_ids, text)
    prefix = trajectory.prompt_ids + trajectory.completion_ids + ids
    if max_model_len is not None and len(prefix) + sampling.max_tokens > max_model_len:
        return None
    trajectory.add_feedback(text, ids)
    turn = len(trajectory.turns) + 1
    seed = None if sampling.seed is None else sampling.seed + turn * TURN_SEED_STRIDE + trajectory.index
    return Prompt(task_id=prompt_id, token_ids=prefix, seed=seed)


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


def shaped_verdict(trajectory: Trajectory, turns: TurnsConfig) -> Verdict:
    """A trajectory's final verdict with the turn-shaped reward (an over_budget one has no reward to shape)."""
    verdict = trajectory.final.verdict
    if not verdict.judged:
        return verdict
    return replace(verdict, reward=turns.shaped_reward(verdict.reward, len(trajectory.turns)))
