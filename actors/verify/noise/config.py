"""NoiseConfig: how verdicts of stochastic jobs are settled (``verifier.noise``)."""

from typing import Literal

from pydantic import Field

from actors.config import Config


class NoiseConfig(Config):
    """Re-measurement of verdicts that lie within the noise band (actors/verify/noise)."""

    max_runs: int = Field(1, ge=1, le=100)
    """Runs of one job at most (the budget), the first included. A verdict in the noise band (a
    stochastic job without the QPU that passed, or failed by an assertion) is run again in fresh
    sandbox children until its pass probability is settled or this many runs are spent. 1 (the
    default) switches re-measurement off: in GRPO and synth one run is an unbiased draw of the pass
    probability, which is what a policy-gradient reward or a reference filter needs, and the group's
    mean already averages the noise. Evaluations that report per-task verdicts set 5 (configs/eval-qhe.yaml,
    eval-paper.yaml): with the other defaults a job that passes (or fails) every time is settled
    at the fifth run (the Clopper-Pearson interval of 4 of 4 at 90% still reaches below 0.5, and
    fewer runs cannot tell a 0.6 coin from a certainty), so a settled verdict costs five sandbox runs."""

    confidence: float = Field(0.9, gt=0, lt=1)
    """Coverage of the two-sided Clopper-Pearson interval of the pass probability; the verdict is
    settled when the interval lies wholly above or below ``threshold``. Higher costs more runs."""

    threshold: float = Field(0.5, gt=0, lt=1)
    """Pass probability above which the settled verdict is a pass (also the rule for a verdict the
    budget leaves unsettled: passed when its pass rate is above it). 0.5: a program passes when it
    passes more often than not."""

    reward: Literal["settled", "probability"] = "settled"
    """The reward of a re-measured verdict. ``settled``: the reward of the first run whose status is
    the settled one (a pass scores as a pass, whatever the noise did on the other runs).
    ``probability``: the mean reward of the runs (its parts averaged too): the expected reward of
    one run, a smoother signal for GRPO whose variance the runs already paid for."""

    reference_runs: int = Field(3, ge=1, le=100)
    """k of the flaky-reference check at calibration: a stochastic task's reference runs at least
    k times, and one that does not pass k of k is flagged (``metadata["reference_pass_rate"]``,
    listed by the eval and verify jobs): its tests fail correct code by chance. Independent of
    ``max_runs``; 1 switches the check off."""
