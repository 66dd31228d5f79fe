"""The Clopper-Pearson interval of a pass probability, and whether it settles a verdict."""

from __future__ import annotations


def clopper_pearson(passes: int, runs: int, confidence: float) -> tuple[float, float]:
    """The exact two-sided interval of a binomial proportion with coverage ``confidence``."""
    from scipy.stats import beta

    if not 0 <= passes <= runs or runs < 1:
        raise ValueError(f"{passes} passes of {runs} runs")
    tail = (1.0 - confidence) / 2
    low = 0.0 if passes == 0 else float(beta.ppf(tail, passes, runs - passes + 1))
    high = 1.0 if passes == runs else float(beta.ppf(1 - tail, passes + 1, runs - passes))
    return low, high


def decision(passes: int, runs: int, confidence: float, threshold: float) -> str | None:
    """``passed`` when the interval lies wholly above ``threshold``, ``failed`` when wholly below,
    None while it straddles it (not settled yet)."""
    low, high = clopper_pearson(passes, runs, confidence)
    if low > threshold:
        return "passed"
    if high < threshold:
        return "failed"
    return None
