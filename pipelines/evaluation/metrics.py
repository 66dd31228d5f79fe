"""pass@k and the other numbers an evaluation reports, from verified samples.

- **pass@k** with the unbiased estimator of Chen et al. 2021 (HumanEval): for a task with n
  samples of which c pass, ``1 - C(n-c, k) / C(n, k)``, computed as a product so that large n
  never overflows; the benchmark's pass@k is its mean over tasks (and the standard deviation over
  tasks beside it). Needs n >= k for every task.
- **greedy pass@1**: the share of tasks whose one greedy (temperature 0) sample passes, as the
  IBM paper's table reports it.
- per difficulty tier (QHE's basic / intermediate / difficult) and per area (synthetic tasks),
  the format rate (think/answer tags and exactly one code block: the IBM paper's format reward),
  and why samples failed (:func:`failure_kind`);
- each task family's own numbers, from the function its family registers
  (pipelines/tasks/families: ``Family.metrics``), under the family's name; this module names
  none of them.

Everything here is plain Python on rows (dicts with at least task_id, mode, status), so the
reports, the eval job and the in-training hook compute the very same numbers.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from actors.contracts import UNJUDGED
from actors.verify.qpu.figures import qpu_figures

TIERS = ("basic", "intermediate", "difficult")
"""QHE's difficulty_scale, easiest first (other tiers follow, sorted)."""

FAILURE_KINDS = ("passed", "no_code", "syntax_error", "import_error", "timeout", "wrong_answer", "runtime_error",
                 "killed", "error", "over_budget")
"""Why a sample ended as it did: passed; no code found in the answer; the code does not parse;
an import fails; the wall-clock limit; the tests ran and disagreed (an assertion, failed test
methods); another exception; killed (memory, output or process limits); an error of the
verification itself (e.g. its worker was lost every time); not judged: the QPU budget refused its
job (counted here, and left out of pass@k and every rate)."""

def _family_metrics() -> dict[str, Callable[[Sequence[dict[str, Any]]], dict[str, Any] | None]]:
    """Task family -> its metrics from a benchmark's pass@k rows (None when none of its tasks is
    there), as the families registered them (pipelines/tasks/families)."""
    from pipelines.tasks.families.registry import family_metrics

    return family_metrics()


_SYNTAX = re.compile(r"\b(SyntaxError|IndentationError|TabError)\b")
_IMPORT = re.compile(r"\b(ImportError|ModuleNotFoundError)\b")
_ASSERT = re.compile(r"\bAssertionError\b")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task: ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least k={k} samples per task, got n={n}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for fewer than two values)."""
    if not values:
        return 0.0, 0.0
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0


def failure_kind(status: str, stderr_tail: str = "", tests_passed: int = 0) -> str:
    """One of :data:`FAILURE_KINDS` for a verdict. Read from the verdict's status and the end of
    its stderr tail (where the checker's own note - the recorded error - comes last); this only
    sorts failures for the report, no reward depends on it."""
    if status in ("passed", "timeout", "killed", "over_budget"):
        return status
    tail = stderr_tail or ""
    if "reason: no code" in tail:
        return "no_code"
    if status == "error":
        return "error"
    # The checker appends the record's failures and error after the child's stderr: the last
    # exception name mentioned is what ended the run.
    found = [(match.start(), kind) for pattern, kind in ((_SYNTAX, "syntax_error"), (_IMPORT, "import_error"),
                                                         (_ASSERT, "wrong_answer"))
             for match in pattern.finditer(tail)]
    if found:
        return max(found)[1]
    if re.search(r"\b\w+(Error|Exception)\b", tail):
        return "runtime_error"
    return "wrong_answer"


def tier_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [tier for tier in TIERS if tier in names] + sorted(names - set(TIERS))


def per_task(rows: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """task_id -> (samples, passed), in first-seen order."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        entry = counts.setdefault(row["task_id"], [0, 0])
        entry[0] += 1
        entry[1] += row["status"] == "passed"
    return {task_id: (n, c) for task_id, (n, c) in counts.items()}


def pass_at_ks(counts: dict[str, tuple[int, int]], ks: Iterable[int]) -> dict[str, tuple[float, float]]:
    """str(k) -> (mean, std) over tasks, for every k that every task has samples for."""
    if not counts:
        return {}
    smallest = min(n for n, _ in counts.values())
    return {str(k): mean_std([pass_at_k(n, c, k) for n, c in counts.values()]) for k in sorted(set(ks)) if k <= smallest}


def _group_metrics(rows: list[dict[str, Any]], ks: Sequence[int], passk_mode: str | None) -> dict[str, Any]:
    greedy = [row for row in rows if row["mode"] == "greedy"]
    passk_rows = [row for row in rows if row["mode"] == passk_mode] if passk_mode else []
    counts = per_task(passk_rows)
    values = pass_at_ks(counts, ks)
    greedy_counts = per_task(greedy)
    return {
        "tasks": len({row["task_id"] for row in rows}),
        "greedy_pass_at_1": (sum(c > 0 for _, c in greedy_counts.values()) / len(greedy_counts)) if greedy_counts else None,
        "pass_at_k": {k: mean for k, (mean, _) in values.items()},
    }


def passk_mode_of(rows: Sequence[dict[str, Any]]) -> str | None:
    """Which samples pass@k is computed from: the sampled ones when there are any, else the only
    mode present (greedy: pass@1 over one sample per task; completions; canonical)."""
    modes = {row["mode"] for row in rows}
    if "sampled" in modes:
        return "sampled"
    if len(modes) == 1:
        return next(iter(modes))
    return "greedy" if "greedy" in modes else None


def benchmark_metrics(rows: Sequence[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """The numbers of one model on one benchmark, from its verified samples (rows with task_id,
    mode, status, and optionally difficulty, area, failure, format_ok, isolation, qpu_s).

    Samples that were not judged (``over_budget``: the QPU budget refused their job) count in
    ``samples``, ``over_budget`` and ``failures`` only: pass@k and every rate are over the judged
    ones (a task's n is then its judged samples, and a k above some task's n is left out rather
    than an error). ``qpu_s``: the QPU seconds every sample's job used.

    ``pass_at_k`` (and ``n``, the samples per task behind it) come from the sampled samples when
    there are any, else from the only kind present (greedy: n=1, pass@1 = greedy pass@1).
    ``greedy_pass_at_1`` is None without greedy samples. ``curve`` holds pass@k for every k from 1
    to n (mean and std over tasks) for the plots."""
    rows = list(rows)
    if not rows:
        raise ValueError("no samples to score")
    everything, rows = rows, [row for row in rows if row["status"] not in UNJUDGED]
    mode = passk_mode_of(everything)
    passk_rows = [row for row in rows if row["mode"] == mode]
    counts = per_task(passk_rows)
    n = min(count for count, _ in counts.values()) if counts else 0
    largest = max(ks) if ks else 1
    if counts and n < largest and mode != "greedy" and len(rows) == len(everything):
        short = next(task_id for task_id, (count, _) in counts.items() if count < largest)
        raise ValueError(f"task {short!r} has {counts[short][0]} sample(s), fewer than the largest k ({largest})")
    ks = list(ks) if mode != "greedy" else [1]
    values = pass_at_ks(counts, ks)
    curve = pass_at_ks(counts, range(1, n + 1))
    metrics = _group_metrics(rows, ks, mode)
    by_difficulty = defaultdict(list)
    by_area = defaultdict(list)
    for row in rows:
        if row.get("difficulty"):
            by_difficulty[str(row["difficulty"])].append(row)
        if row.get("area"):
            by_area[str(row["area"])].append(row)
    failures = Counter(row.get("failure") or failure_kind(row["status"], row.get("stderr_tail", ""))
                       for row in everything)
    isolation = Counter(row["isolation"] for row in rows if row.get("isolation"))
    formatted = [bool(row["format_ok"]) for row in rows if row.get("format_ok") is not None]
    families = {family: value for family, metrics_of in _family_metrics().items()
                if passk_rows and (value := metrics_of(passk_rows))}
    return {
        "pass_at_1_by_turn": pass_at_1_by_turn(passk_rows),
        "n": n, "tasks": len({row["task_id"] for row in everything}), "samples": len(everything),
        **qpu_figures(everything),
        "passed": sum(row["status"] == "passed" for row in passk_rows),
        "pass_at_k": {k: mean for k, (mean, _) in values.items()},
        "pass_at_k_std": {k: std for k, (_, std) in values.items()},
        "greedy_pass_at_1": metrics["greedy_pass_at_1"],
        "by_difficulty": {tier: _group_metrics(by_difficulty[tier], ks, mode) for tier in tier_order(by_difficulty)},
        "by_area": {area: _group_metrics(by_area[area], ks, mode) for area in sorted(by_area)},
        "format_rate": sum(formatted) / len(formatted) if formatted else None,
        "failures": {kind: failures[kind] for kind in FAILURE_KINDS if failures[kind]},
        "isolation": dict(sorted(isolation.items())),
        "curve": {"k": [int(k) for k in curve], "mean": [mean for mean, _ in curve.values()],
                  "std": [std for _, std in curve.values()]},
        **families,
    }


def pass_at_1_by_turn(rows: Sequence[dict[str, Any]]) -> list[float]:
    """pass@1 after turn 1, after turn 2, ... (multi-turn samples carry ``status_by_turn``; a
    trajectory that stopped keeps its last status; a single-turn sample has one turn): per task the
    share of samples passed by then, averaged over tasks."""
    if not rows:
        return []
    by_turn = [list(row.get("status_by_turn") or [row["status"]]) for row in rows]
    turns = max([len(statuses) for statuses in by_turn] + [int(row.get("max_turns") or 1) for row in rows])
    result = []
    for turn in range(turns):
        per_task: dict[str, list[bool]] = defaultdict(list)
        for row, statuses in zip(rows, by_turn):
            per_task[row["task_id"]].append(statuses[min(turn, len(statuses) - 1)] == "passed")
        result.append(sum(sum(passed) / len(passed) for passed in per_task.values()) / len(per_task))
    return result


def flat_metrics(metrics: dict[str, Any], prefix: str = "eval/") -> dict[str, float]:
    """A benchmark's numbers as flat scalars for metric sinks: ``eval/pass@1``,
    ``eval/greedy_pass@1``, ``eval/pass@1/basic``, ``eval/format_rate``, ``eval/failures/no_code``..."""
    flat: dict[str, float] = {}
    for k, value in metrics["pass_at_k"].items():
        flat[f"{prefix}pass@{k}"] = value
    if metrics.get("greedy_pass_at_1") is not None:
        flat[f"{prefix}greedy_pass@1"] = metrics["greedy_pass_at_1"]
    if len(metrics.get("pass_at_1_by_turn") or []) > 1:
        for turn, value in enumerate(metrics["pass_at_1_by_turn"], start=1):
            flat[f"{prefix}pass@1/turn{turn}"] = value
    for tier, numbers in metrics.get("by_difficulty", {}).items():
        for k, value in numbers["pass_at_k"].items():
            flat[f"{prefix}pass@{k}/{tier}"] = value
    if metrics.get("format_rate") is not None:
        flat[f"{prefix}format_rate"] = metrics["format_rate"]
    for family in _family_metrics():
        for name, value in (metrics.get(family) or {}).items():
            if "@" in name and value is not None:
                flat[f"{prefix}{family}/{name}"] = value
    samples = max(1, metrics.get("samples", 1))
    for kind, count in metrics.get("failures", {}).items():
        flat[f"{prefix}failures/{kind}"] = count / samples
    for name in ("qpu_s", "over_budget"):
        if metrics.get(name):
            flat[f"{prefix}{name}"] = metrics[name]
    return flat
