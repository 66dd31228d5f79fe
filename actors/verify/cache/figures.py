"""The cache's figures as jobs report them, read from the verdicts themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.contracts import Verdict


def cache_figures(verdicts: Iterable[Verdict | Mapping[str, Any]]) -> dict[str, float]:
    """``cache_hits``, ``cache_hit_rate`` (of all verdicts) and ``cache_saved_s`` (the verifier
    seconds the answered jobs took when they ran), from verdicts or rows that hold their
    ``cached`` and ``duration_s``."""
    total = hits = 0
    saved = 0.0
    for verdict in verdicts:
        row = verdict if isinstance(verdict, Mapping) else vars(verdict)
        total += 1
        if row.get("cached"):
            hits += 1
            saved += row.get("duration_s") or 0.0
    return {"cache_hits": hits, "cache_hit_rate": round(hits / total, 4) if total else 0.0,
            "cache_saved_s": round(saved, 2)}


def cache_line(figures: dict[str, float]) -> str:
    """The figures as one line for a person."""
    return (f"verdict cache: {figures['cache_hits']} answered without running ({figures['cache_hit_rate']:.0%}), "
            f"{figures['cache_saved_s']:.1f} verifier seconds saved")
