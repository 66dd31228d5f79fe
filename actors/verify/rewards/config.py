"""RewardConfig: which rewards make a verdict's reward, with what weights, per task family; and
:func:`score`, their weighted sum. Names are checked against the registry
(actors/verify/rewards/registry.py), which holds every reward once the package is imported.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, field_validator

from actors.config import Config
from actors.verify.rewards.quasar import QuasarRewardConfig
from actors.verify.rewards.registry import REWARDS, RewardInput


def _known(weights: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(REWARDS))
    if unknown:
        raise ValueError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
    if not weights:
        raise ValueError("at least one reward needs a weight")
    return weights


class RewardConfig(Config):
    weights: dict[str, float] = {"pass_fraction": 1.0, "format": 0.1}
    """Reward name -> weight; the reward is the weighted sum. Names: the registry of
    actors/verify/rewards/ (pass_fraction, binary, format, quasar, deprecation, qspark_*). Default
    after the IBM paper."""

    quasar: QuasarRewardConfig = QuasarRewardConfig()
    """Weights and thresholds of the ``quasar`` reward (QUASAR's hierarchical reward, arXiv 2510.00967)."""

    by_family: dict[str, dict[str, float]] = {"quasar": {"quasar": 1.0}}
    """Task family -> its own weights, used instead of ``weights`` for that family's tasks (e.g.
    QSpark's multi-part reward for one family, QUASAR's hierarchical one for another); families
    not named here use ``weights``. Default: QUASAR's tasks (family ``quasar``) by the ``quasar`` reward."""

    @field_validator("weights")
    @classmethod
    def _known_rewards(cls, weights: dict[str, float]) -> dict[str, float]:
        return _known(weights)

    @field_validator("by_family")
    @classmethod
    def _known_family_rewards(cls, by_family: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for family, weights in by_family.items():
            try:
                _known(weights)
            except ValueError as error:
                raise ValueError(f"family {family!r}: {error}") from None
        return by_family

    deprecation_penalty: float = Field(0.1, ge=0.0, le=100.0)
    """Reward lost per flake8-qiskit-migration finding (QKT100-QKT202: APIs Qiskit 1.0/2.0 removed,
    e.g. the ``qiskit.providers.aer`` import the IBM paper names) in the model's code: the
    ``deprecation`` reward is ``-deprecation_penalty * findings`` (actors/verify/rewards/deprecation.py)."""

    def weights_for(self, family: str) -> dict[str, float]:
        return self.by_family.get(family, self.weights)


def score(config: RewardConfig, result: RewardInput) -> tuple[float, dict[str, float]]:
    """(weighted reward, each reward's own value), with the weights of the task's family."""
    weights = config.weights_for(result.family)
    result = replace(result, config=config)
    parts = {name: REWARDS[name](result) for name in weights}
    return sum(weights[name] * value for name, value in parts.items()), parts

