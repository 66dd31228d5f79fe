"""Which verdicts lie within the noise band, i.e. may be a different draw on the next run."""

from __future__ import annotations

from typing import Any

from actors.contracts import Verdict

DRAWS = ("passed", "failed")
"""Statuses a run of the code itself reaches. A timeout or a kill says how loaded the machine was,
``error`` is the infrastructure's and ``over_budget`` judges nothing: none is a draw."""


def assertion_failure(verdict: Verdict, record: Any) -> bool:
    """A test's assertion failed: a unittest outcome ``failed`` (unittest's own word for an
    assertion, ``error`` being any other exception), or the record's error an ``AssertionError``
    (QHE's ``check``). A crash (NameError, a value that cannot cross) fails on every run."""
    error = record.get("error") if isinstance(record, dict) else None
    return "failed" in verdict.outcomes.values() or (isinstance(error, str) and error.startswith("AssertionError"))


def in_noise_band(verdict: Verdict, record: Any) -> bool:
    """Whether a stochastic job's verdict may be another draw: it passed, or failed by an assertion.
    ``record`` is the child's result record, untrusted: at worst a forged one earns its job a few
    more runs (at most ``verifier.noise.max_runs``), never a pass."""
    return verdict.status == "passed" or (verdict.status == "failed" and assertion_failure(verdict, record))
