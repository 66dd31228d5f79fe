"""The provenance of a verdict: which simulators its job's code ran, with what noise, shots and
seed, as the sandbox recorded them (actors/verify/sandbox/provenance.py). The record crosses from
a child that ran untrusted code, so each entry is checked field by field and any malformed one is
dropped. Informational only: it never changes a reward and never reaches the policy."""

from __future__ import annotations

from typing import Any

MAX_RUNS = 16
"""Entries kept (the same cap as the sandbox's); ``total`` still counts every run."""
MAX_TOTAL = 10**9
MAX_NAME = 100
MAX_SHOTS = 10**12


def read_provenance(record: Any) -> dict[str, Any]:
    """``{"runs": [{"backend", "noise", "shots", "seed"}...], "total": n}`` from a result record,
    or ``{}`` where it holds none (or nothing readable)."""
    raw = record.get("provenance") if isinstance(record, dict) else None
    if not isinstance(raw, dict):
        return {}
    entries = raw.get("runs")
    runs = [entry for entry in map(_entry, entries[:MAX_RUNS] if isinstance(entries, list) else [])
            if entry is not None]
    total = raw.get("total")
    if not (_is_int(total) and len(runs) <= total <= MAX_TOTAL):
        total = len(runs)
    return {"runs": runs, "total": total} if total else {}


def _entry(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    backend, noise, shots, seed = (item.get(name) for name in ("backend", "noise", "shots", "seed"))
    if not (isinstance(backend, str) and isinstance(noise, bool)):
        return None
    if not (shots is None or (_is_int(shots) and 0 <= shots <= MAX_SHOTS)):
        return None
    if not (seed is None or _is_int(seed) or (isinstance(seed, str) and len(seed) <= MAX_NAME)):
        return None
    return {"backend": backend[:MAX_NAME], "noise": noise, "shots": shots,
            "seed": seed if not _is_int(seed) else int(seed)}


def _is_int(value: Any) -> bool:
    return type(value) is int
