"""What an online algorithm scores and what it trains on: a :class:`Rollout` (one sampled completion
with its verdict) in, a :class:`TrainSample` out, and a micro-batch of TrainSamples as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.contracts import Task, Verdict
    from actors.rollout.engine import RolloutCompletion


@dataclass
class Rollout:
    """One sampled completion of a task with its own verdict."""

    task: Task
    completion: RolloutCompletion
    verdict: Verdict

    @property
    def reward(self) -> float:
        return self.verdict.reward

    @property
    def truncated(self) -> bool:
        """Cut at the token limit: its reward judges unfinished code."""
        return self.completion.finish_reason == "length"

    @property
    def loss_mask(self) -> list[float] | None:
        """A multi-turn completion's mask (0 on inserted feedback); None: every token is the policy's."""
        mask = getattr(self.completion, "loss_mask", None)
        return list(mask) if mask else None

    @property
    def policy_tokens(self) -> int:
        """The policy's own tokens (a multi-turn completion's feedback is not)."""
        mask = self.loss_mask
        return len(self.completion.token_ids) if mask is None else int(sum(mask))


@dataclass
class TrainSample:
    """One completion as the learner trains on it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    rollout_logprobs: list[float]
    advantage: float = 0.0
    truncated: bool = False
    zero_variance: bool = False
    loss_mask: list[float] | None = None
    """Per completion token: 1 = the policy's (trained on), 0 = inserted feedback (a multi-turn
    rollout's tool message: out of the loss, the logprob gap and the importance weight). None: all 1."""
    trained: bool = True
    """False: the algorithm leaves it out of the loss and its denominators; the scorer drops it."""

    @classmethod
    def of(cls, rollout: Rollout, **fields: Any) -> TrainSample:
        """The sample of a rollout's tokens; ``fields`` are the algorithm's (advantage, ...)."""
        completion = rollout.completion
        return cls(prompt_ids=completion.prompt_token_ids, completion_ids=completion.token_ids,
                   rollout_logprobs=completion.logprobs, truncated=rollout.truncated, loss_mask=rollout.loss_mask,
                   **fields)

    @property
    def policy_tokens(self) -> int:
        return len(self.completion_ids) if self.loss_mask is None else int(sum(self.loss_mask))


def collate_samples(samples: list[TrainSample], pad_id: int = 0) -> dict[str, Any]:
    """Samples -> padded tensors (:func:`actors.learner.experience.pad_rows`) plus, per completion
    token [B, T], ``rollout_logprobs``; per sample ``advantages``, ``truncated``, ``zero_variance``.
    No samples: one fully masked padding row."""
    import torch

    from actors.learner.experience import pad_rows

    padding = not samples
    if padding:
        samples = [TrainSample(prompt_ids=[pad_id], completion_ids=[pad_id], rollout_logprobs=[0.0])]
    masks = None
    if padding:
        masks = [[0.0]]
    elif any(s.loss_mask is not None for s in samples):
        masks = [s.loss_mask if s.loss_mask is not None else [1.0] * len(s.completion_ids) for s in samples]
    batch = pad_rows([s.prompt_ids for s in samples], [s.completion_ids for s in samples], pad_id, masks=masks)
    batch["rollout_logprobs"] = torch.zeros_like(batch["completion_mask"])
    for row, sample in enumerate(samples):
        batch["rollout_logprobs"][row, : len(sample.rollout_logprobs)] = torch.tensor(sample.rollout_logprobs)
    batch["advantages"] = torch.tensor([s.advantage for s in samples], dtype=torch.float32)
    batch["truncated"] = torch.tensor([s.truncated for s in samples])
    batch["zero_variance"] = torch.tensor([s.zero_variance for s in samples])
    return batch
