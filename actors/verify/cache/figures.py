"""The cache's figures as jobs report them, read from the verdicts themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.contracts import Verdict


class CacheTally:
    """Running counts of verdicts handed out and of those the cache answered (a pool keeps one for
    its whole life: counts, not the verdicts)."""

    def __init__(self) -> None:
        self.total = self.hits = 0
        self.saved_s = 0.0

    def add(self, cached: bool, duration_s: float) -> None:
        self.total += 1
        if cached:
            self.hits += 1
            self.saved_s += duration_s or 0.0

    def figures(self) -> dict[str, float]:
        return {"cache_hits": self.hits, "cache_hit_rate": round(self.hits / self.total, 4) if self.total else 0.0,
                "cache_saved_s": round(self.saved_s, 2)}


def cache_figures(verdicts: Iterable[Verdict | Mapping[str, Any]]) -> dict[str, float]:
    """``cache_hits``, ``cache_hit_rate`` (of all verdicts) and ``cache_saved_s`` (the verifier
    seconds the answered jobs took when they ran), from verdicts or rows that hold their
    ``cached`` and ``duration_s``."""
    tally = CacheTally()
    for verdict in verdicts:
        row = verdict if isinstance(verdict, Mapping) else vars(verdict)
        tally.add(bool(row.get("cached")), row.get("duration_s") or 0.0)
    return tally.figures()


def cache_line(figures: dict[str, float]) -> str:
    """The figures as one line for a person."""
    return (f"verdict cache: {figures['cache_hits']} answered without running ({figures['cache_hit_rate']:.0%}), "
            f"{figures['cache_saved_s']:.1f} verifier seconds saved")
