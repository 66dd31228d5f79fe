"""QUASAR's evaluation metrics (arXiv 2510.00967) for tasks of family ``quasar``, from the
measures of their verdicts, at pass@1 and pass@10:

- **SCR** (syntactic correctness rate): the program parses (``syntax_valid``);
- **SREV** (success rate of expectation value): |E - E*| <= ``SREV_TOLERANCE``, E* the reference
  circuit's expectation of the cost Hamiltonian;
- **HQCR** (high-quality circuit rate): RE < ``HQCR_THRESHOLD``;
- **RE** (relative entropy KL(p_gen || p_ref), in bits).

SCR, SREV and HQCR at k: the share of tasks with at least one of k samples meeting the criterion,
with pass@k's unbiased estimator (Chen et al. 2021), averaged over tasks. RE at 1: its mean over
the samples that parse; at k: the mean over tasks of the lowest RE among a task's first k samples
that parse. Needs n >= k samples per task (a k above that is left out).

:func:`report_section` is their table in an evaluation's ``report.md``. Both are registered with
the family (pipelines/tasks/families/quasar.py).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import Any

from pipelines.evaluation.metrics import pass_at_k
from pipelines.evaluation.report import markdown_table, percent

SREV_TOLERANCE = 0.2
"""|E - E*| at or below this is a success (arXiv 2510.00967, SREV)."""

HQCR_THRESHOLD = 0.1
"""RE (bits) below this is a high-quality circuit (arXiv 2510.00967, HQCR)."""

KS = (1, 10)
"""The k QUASAR reports."""


def measures_of(row: dict[str, Any]) -> dict[str, float]:
    """A row's measures (a dict, or its JSON string as written to Parquet)."""
    value = row.get("measures") or {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def criteria(measures: dict[str, float]) -> dict[str, bool]:
    valid = measures.get("syntax_valid") == 1.0
    energy, reference = measures.get("energy"), measures.get("energy_ref")
    return {"scr": valid,
            "srev": valid and energy is not None and reference is not None and abs(energy - reference) <= SREV_TOLERANCE,
            "hqcr": valid and measures.get("re_bits") is not None and measures["re_bits"] < HQCR_THRESHOLD}


def quasar_metrics(rows: Sequence[dict[str, Any]], ks: Sequence[int] = KS) -> dict[str, Any] | None:
    """``{"tasks", "n", "scr@1", "srev@1", "hqcr@1", "re@1", ... @10}`` over the rows of family
    quasar (rows: task_id, family, measures; one mode), or None when there are none."""
    rows = [row for row in rows if row.get("family") == "quasar"]
    if not rows:
        return None
    by_task: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        by_task.setdefault(row["task_id"], []).append(measures_of(row))
    n = min(len(samples) for samples in by_task.values())
    result: dict[str, Any] = {"tasks": len(by_task), "n": n}
    for k in ks:
        if k > n:
            continue
        for name in ("scr", "srev", "hqcr"):
            result[f"{name}@{k}"] = statistics.fmean(
                pass_at_k(len(samples), sum(criteria(m)[name] for m in samples), k) for samples in by_task.values())
        if k == 1:
            values = [m["re_bits"] for samples in by_task.values() for m in samples if "re_bits" in m]
        else:
            values = [min(found) for samples in by_task.values()
                      if (found := [m["re_bits"] for m in samples[:k] if "re_bits" in m])]
        result[f"re@{k}"] = statistics.fmean(values) if values else None
    return result


def report_section(results: dict[str, dict[str, dict[str, Any]]], benchmarks: list[str]) -> list[str]:
    """The QUASAR table of report.md: one row per model and benchmark with tasks of family quasar."""
    rows = [[model, name, str(q["tasks"]), str(q["n"]),
             *(percent(q.get(f"{metric}@{k}")) for k in KS for metric in ("scr", "srev", "hqcr")),
             *("–" if q.get(f"re@{k}") is None else f"{q[f're@{k}']:.3f}" for k in KS)]
            for model, per_benchmark in results.items() for name in benchmarks
            if (q := per_benchmark.get(name, {}).get("quasar"))]
    if not rows:
        return []
    lines = ["## QUASAR (%; RE in bits)", "",
             "Tasks of family quasar (arXiv 2510.00967): SCR parses, SREV |E - E*| <= 0.2, HQCR RE < 0.1 "
             "(share of tasks with one of k samples meeting it, unbiased estimator); RE = KL(p_gen || p_ref).", ""]
    lines += markdown_table(["model", "benchmark", "tasks", "n", "SCR@1", "SREV@1", "HQCR@1", "SCR@10", "SREV@10",
                             "HQCR@10", "RE@1", "RE@10"], rows)
    return lines + [""]
