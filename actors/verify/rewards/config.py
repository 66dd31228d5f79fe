"""RewardConfig: which rewards make a verdict's reward, with what weights, per task family, and
each reward's own settings; and :func:`score`, their weighted sum. Names are checked against the
registry (actors/verify/rewards/registry.py), which holds every reward once the package is
imported.

RewardConfig is built from the registry: its own fields (``weights``, ``by_family``) and the
fields of every reward's settings class (``@reward(..., settings=...)``: e.g. the quasar reward's
``quasar``, the deprecation reward's ``deprecation_penalty``), each typed, validated and documented
where its reward declares it. ``by_family``'s default is what the rewards registered
(``@reward(..., families=...)``), not a list kept here.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, field_validator

import actors.verify.rewards  # noqa: F401 - every reward (and its settings) registered before RewardConfig is built
from actors.config import Config
from actors.contracts import UNJUDGED
from actors.verify.rewards.registry import REWARDS, SETTINGS, RewardInput, default_by_family


def _known(weights: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(weights) - set(REWARDS))
    if unknown:
        raise ValueError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
    if not weights:
        raise ValueError("at least one reward needs a weight")
    return weights


class RewardWeights(Config):
    """Which rewards count, with what weights, per task family."""

    weights: dict[str, float] = {"pass_fraction": 1.0, "format": 0.1}
    """Reward name -> weight; the reward is the weighted sum. Names: the registry of
    actors/verify/rewards/ (pass_fraction, binary, format, quasar, deprecation, qspark_*). Default
    after the IBM paper."""

    by_family: dict[str, dict[str, float]] = Field(default_factory=default_by_family)
    """Task family -> its own weights, used instead of ``weights`` for that family's tasks (e.g.
    QSpark's multi-part reward for one family, QUASAR's hierarchical one for another); families
    not named here use ``weights``. Default: what the rewards registered for their families
    (``@reward(..., families=...)``: QUASAR's tasks, family ``quasar``, by the ``quasar`` reward)."""

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

    def weights_for(self, family: str) -> dict[str, float]:
        return self.by_family.get(family, self.weights)


def _settings() -> list[type]:
    """The rewards' settings classes, the first registered last (so their fields follow in
    registration order), each field declared once."""
    seen: dict[str, str] = {}
    for name, settings in SETTINGS.items():
        for field in settings.model_fields:
            if field in seen or field in RewardWeights.model_fields:
                raise ValueError(f"reward {name!r}'s setting {field!r} is declared twice")
            seen[field] = name
    return list(reversed(SETTINGS.values()))


class RewardConfig(*_settings(), RewardWeights):
    """Which rewards make a verdict's reward, with what weights, per task family, and each
    reward's own settings (they join here from its registration)."""


def score(config: RewardConfig, result: RewardInput) -> tuple[float, dict[str, float]]:
    """(weighted reward, each reward's own value), with the weights of the task's family. A verdict
    that judges nothing (an ``over_budget`` one: :data:`actors.contracts.UNJUDGED`) is scored by no
    reward: (0.0, no parts), a 0.0 that its status says to leave out, not a failure's 0."""
    if result.status in UNJUDGED:
        return 0.0, {}
    weights = config.weights_for(result.family)
    result = replace(result, config=config)
    parts = {name: REWARDS[name](result) for name in weights}
    return sum(weights[name] * value for name, value in parts.items()), parts
