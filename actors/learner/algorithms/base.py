"""The contract of a learner algorithm, as types: what the train loop, the producer and the offline
source ask of one, with defaults for what is optional.

An algorithm is a class holding its typed config: :class:`OnlineAlgorithm` (sampled and verified
each step by the producer; the shared half of scoring is :mod:`actors.learner.scoring`) or
:class:`OfflineAlgorithm` (rows of a Ray Data dataset). Its metrics are named additive sums
(:mod:`actors.learner.sums`): ``batch_loss`` returns one micro-batch's, the loop adds them over
micro-batches and ranks, and ``report`` turns the totals into the step's values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from actors.config import Config

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch

    from actors.learner.samples import Rollout, TrainSample


class AlgorithmConfig(Config):
    """An algorithm's config. ``name`` is its registry name: a class variable, or, where a
    discriminated union chooses among algorithms (the online job's ``algorithm``), a Literal field."""

    name: ClassVar[str]


AlgorithmConfigT = TypeVar("AlgorithmConfigT", bound=AlgorithmConfig)


class Algorithm(ABC, Generic[AlgorithmConfigT]):
    """What the train loop asks of every algorithm."""

    config_type: ClassVar[type[AlgorithmConfig]]
    """Its config's class."""

    def __init__(self, config: AlgorithmConfigT) -> None:
        if not isinstance(config, self.config_type):
            raise TypeError(f"{type(self).__name__} takes a {self.config_type.__name__}, got {type(config).__name__}")
        self.config = config

    def needs_reference(self) -> bool:
        """Whether ``batch_loss`` wants the reference policy's logprobs."""
        return False

    def updates_per_batch(self) -> int:
        """Optimizer steps on each batch; from the second on, each micro-batch carries
        ``logprobs_before_update`` (the policy's logprobs before the batch's first step)."""
        return 1

    @abstractmethod
    def batch_loss(self, micro: dict[str, Any], logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
                   num_items: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one micro-batch (the tensors this algorithm collated) as a share of the whole
        batch's (``num_items``: the batch's global denominator(s), all ranks), so that gradients
        summed over micro-batches and ranks are the batch's; and its named additive sums (the same
        names on every call; ``tokens``: the trained tokens)."""

    @abstractmethod
    def report(self, sums: Mapping[str, float]) -> dict[str, float]:
        """The step's metrics from the sums of all its micro-batches on all ranks (a name never
        added reads 0: a step that trained nothing)."""


class OnlineAlgorithm(Algorithm[AlgorithmConfigT]):
    """Trained on completions sampled and verified each step."""

    @abstractmethod
    def samples_per_prompt(self) -> int:
        """Completions the rollout workers sample per prompt (a group)."""

    @abstractmethod
    def train_samples(self, rollouts: list[Rollout]) -> list[TrainSample]:
        """The step's rollouts (``samples_per_prompt`` consecutive ones per task) scored for the loss:
        advantages, and ``trained`` False on those it leaves out, always including those whose
        verdict judges nothing (``verdict.judged`` False: over_budget; their reward is no reward)."""

    def count(self, samples: list[TrainSample]) -> Any:
        """The global denominator of the loss over the samples trained: their policy tokens."""
        return float(sum(sample.policy_tokens for sample in samples))

    def collate(self, samples: list[TrainSample], pad_id: int = 0) -> dict[str, Any]:
        """A micro-batch of samples as the tensors ``batch_loss`` reads."""
        from actors.learner.samples import collate_samples

        return collate_samples(samples, pad_id)


class OfflineAlgorithm(Algorithm[AlgorithmConfigT]):
    """Trained on the rows of a tokenized dataset."""

    row_fields: ClassVar[tuple[str, ...]]
    """The tokenized columns a row has."""

    @abstractmethod
    def collate(self, rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, Any]:
        """Rows -> the tensors ``batch_loss`` reads; no rows: a micro-batch that adds nothing."""

    @abstractmethod
    def count(self, rows: list[dict[str, Any]]) -> Any:
        """The global denominator(s) of the loss over a step's rows (a number or a dict of counts)."""
