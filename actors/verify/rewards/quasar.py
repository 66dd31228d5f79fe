"""QUASAR's hierarchical reward (arXiv 2510.00967) from the ``qasm`` checker's measures.

The checker (actors/verify/sandbox/measures/quasar/) computes syntax_valid, m, dw, s2, s3 and
s4; this module only combines them, with every weight and threshold in :class:`QuasarRewardConfig`
(``verifier.rewards.quasar.*``: the reward's own settings, which join RewardConfig through the
registry as :class:`QuasarSettings`). Tasks of family ``quasar`` are scored by it alone by default
(its registration's ``families``: ``verifier.rewards.by_family``'s default). Two forms:

- ``public`` (QUASAR's released code): invalid syntax -> ``invalid``; s2 > ``high_s2``:
  ``m + 0.6*dw*s2 + 0.4*s4``; s2 < ``low_s2``: if s3 > ``high_s3`` then
  ``m + 0.3*dw*s2 + 0.3*s3 + 0.4*s4`` else ``m + 0.3*dw*s2 + 0.3*s3``; otherwise ``m + dw*s2``.
- ``paper``: ``paper_invalid`` if invalid, else ``w2*s2 + w3*s3 + w4*s4``.

A verdict without measures (timeout, killed, no code) scores as invalid syntax.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from actors.config import Config
from actors.verify.rewards.registry import RewardInput, reward


class QuasarRewardConfig(Config):
    """Weights and thresholds of QUASAR's hierarchical reward (arXiv 2510.00967, section 3 and
    its public reward code)."""

    form: Literal["public", "paper"] = "public"
    """``public``: the tiered combination of QUASAR's released code; ``paper``: the paper's
    weighted sum R = w2*s2 + w3*s3 + w4*s4 (arXiv 2510.00967)."""

    invalid: float = Field(-0.5, ge=-10, le=0)
    """Reward of a program that does not parse (public form; arXiv 2510.00967's code: -0.5)."""

    high_s2: float = Field(0.9, ge=0, le=1)
    """Above this distribution alignment the top tier applies (arXiv 2510.00967's code: 0.9)."""

    low_s2: float = Field(0.1, ge=0, le=1)
    """Below this alignment the energy tier applies (arXiv 2510.00967's code: 0.1)."""

    high_s3: float = Field(0.9, ge=0, le=1)
    """In the energy tier, above this s3 the optimisation term counts too (arXiv 2510.00967's code: 0.9)."""

    top_s2: float = 0.6
    """Top tier: weight of dw*s2 (arXiv 2510.00967's code: 0.6)."""

    top_s4: float = 0.4
    """Top tier: weight of s4 (arXiv 2510.00967's code: 0.4)."""

    energy_s2: float = 0.3
    """Energy tier: weight of dw*s2 (arXiv 2510.00967's code: 0.3)."""

    energy_s3: float = 0.3
    """Energy tier: weight of s3 (arXiv 2510.00967's code: 0.3)."""

    energy_s4: float = 0.4
    """Energy tier with s3 > high_s3: weight of s4 (arXiv 2510.00967's code: 0.4)."""

    middle_s2: float = 1.0
    """Middle tier: weight of dw*s2 (arXiv 2510.00967's code: 1.0)."""

    paper_invalid: float = Field(-1.0, ge=-10, le=0)
    """Paper form: reward of an invalid program (arXiv 2510.00967: R = -1)."""

    w2: float = 1 / 3
    """Paper form: weight of s2 (distribution alignment). The paper leaves the values open; equal weights."""

    w3: float = 1 / 3
    """Paper form: weight of s3 (expectation value against the exact spectrum)."""

    w4: float = 1 / 3
    """Paper form: weight of s4 (optimisation progress)."""


class QuasarSettings(Config):
    """The quasar reward's settings (its field joins RewardConfig)."""

    quasar: QuasarRewardConfig = QuasarRewardConfig()
    """Weights and thresholds of the ``quasar`` reward (QUASAR's hierarchical reward, arXiv 2510.00967)."""


def hierarchical_reward(measures: dict[str, float], config: QuasarRewardConfig) -> float:
    """The reward of one verdict's measures (see the module docstring)."""
    if measures.get("syntax_valid", 0.0) != 1.0:
        return config.paper_invalid if config.form == "paper" else config.invalid
    s2, s3, s4 = measures.get("s2", 0.0), measures.get("s3", 0.0), measures.get("s4", 0.0)
    if config.form == "paper":
        return config.w2 * s2 + config.w3 * s3 + config.w4 * s4
    m, dw = measures.get("m", 0.0), measures.get("dw", 1.0)
    if s2 > config.high_s2:
        return m + config.top_s2 * dw * s2 + config.top_s4 * s4
    if s2 < config.low_s2:
        base = m + config.energy_s2 * dw * s2 + config.energy_s3 * s3
        return base + config.energy_s4 * s4 if s3 > config.high_s3 else base
    return m + config.middle_s2 * dw * s2


@reward("quasar", settings=QuasarSettings, families={"quasar": 1.0})
def quasar_reward(result: RewardInput) -> float:
    """QUASAR's hierarchical reward of a RewardInput, with the settings of the reward config in
    force (``result.config.quasar``), defaults otherwise. It reads the ``qasm`` harness's own
    measures (no measure provider)."""
    config = getattr(getattr(result, "config", None), "quasar", None) or QuasarRewardConfig()
    return hierarchical_reward(result.measures, config)
