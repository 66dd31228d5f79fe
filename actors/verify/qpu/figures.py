"""The QPU figures jobs report (metrics, summary.json, reports), read from the verdicts themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from actors.contracts import Verdict


def qpu_figures(verdicts: Iterable[Verdict | Mapping[str, Any]]) -> dict[str, Any]:
    """``qpu_s``: the QPU seconds the verdicts' jobs used (as the gateway billed them);
    ``over_budget``: how many the QPU budget refused (not judged, see actors/contracts.py);
    ``stopped_by_tier``: how many a cheaper simulator tier decided, so they never reached the QPU
    (``verifier.tiers``; ``Verdict.tier``). From verdicts or rows that hold their ``qpu_s`` and
    ``status`` (and ``tier``, where there is one)."""
    seconds, refused, stopped = 0.0, 0, 0
    for verdict in verdicts:
        row = verdict if isinstance(verdict, Mapping) else vars(verdict)
        seconds += float(row.get("qpu_s") or 0.0)
        refused += row.get("status") == "over_budget"
        stopped += row.get("tier") in ("ideal", "noisy")
    return {"qpu_s": round(seconds, 3), "over_budget": refused, "stopped_by_tier": stopped}
