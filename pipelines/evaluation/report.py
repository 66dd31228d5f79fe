"""An evaluation's report: ``report.md`` (models x benchmarks, then per tier, per area, each task
family's own section (pipelines/tasks/families), format and failures, time) and ``passk.png``
(pass@k curves, one panel per benchmark, one line per model). Every number in the report is the
JSON summary's, as a percentage with two decimals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.evaluation.metrics import FAILURE_KINDS, tier_order

Results = dict[str, dict[str, dict[str, Any]]]
"""model -> benchmark -> metrics (pipelines.evaluation.metrics.benchmark_metrics)."""


def percent(value: float | None) -> str:
    """A share as the report writes it: 39.73 (two decimals), or a dash when there is none."""
    return "–" if value is None else f"{100 * value:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines (a family's report section uses it too)."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def _benchmarks(results: Results) -> list[str]:
    names: list[str] = []
    for per_benchmark in results.values():
        names += [name for name in per_benchmark if name not in names]
    return names


def _ks(results: Results) -> list[str]:
    ks = {k for per_benchmark in results.values() for metrics in per_benchmark.values() for k in metrics["pass_at_k"]}
    return sorted(ks, key=int)


def render_report(results: Results, title: str = "qvr eval", settings: dict[str, Any] | None = None,
                  timing: dict[str, dict[str, float]] | None = None) -> str:
    """The markdown report of ``results`` (one or more models, side by side)."""
    from pipelines.tasks.families.registry import report_sections

    settings = settings or {}
    benchmarks, ks = _benchmarks(results), _ks(results)
    lines = [f"# {title}", ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()), ""]
    has_greedy = any(m.get("greedy_pass_at_1") is not None for pb in results.values() for m in pb.values())
    if has_greedy:
        lines += ["## Greedy pass@1 (%)", "", "One sample per task at temperature 0.", ""]
        lines += markdown_table(["model", *benchmarks], [
            [model, *(percent(per_benchmark[name]["greedy_pass_at_1"]) if name in per_benchmark else "–"
                      for name in benchmarks)] for model, per_benchmark in results.items()])
        lines.append("")
    lines += ["## pass@k (%)", "",
              "Unbiased estimator (Chen et al. 2021), mean ± standard deviation over tasks; n samples per task "
              "(greedy only: n = 1, pass@1 is greedy pass@1).", ""]
    rows = []
    for model, per_benchmark in results.items():
        for name in benchmarks:
            if name not in per_benchmark:
                continue
            metrics = per_benchmark[name]
            rows.append([model, name, str(metrics["n"]), str(metrics["tasks"]), str(metrics["passed"]),
                         *(f"{percent(metrics['pass_at_k'][k])} ± {percent(metrics['pass_at_k_std'][k])}"
                           if k in metrics["pass_at_k"] else "–" for k in ks)])
    lines += markdown_table(["model", "benchmark", "n", "tasks", "passed", *(f"pass@{k}" for k in ks)], rows)
    lines.append("")
    tier_rows = []
    tiers = tier_order({tier for pb in results.values() for m in pb.values() for tier in m.get("by_difficulty", {})})
    for model, per_benchmark in results.items():
        for name in benchmarks:
            by_tier = per_benchmark.get(name, {}).get("by_difficulty", {})
            if not by_tier:
                continue
            metric_names = (["greedy pass@1"] if per_benchmark[name]["greedy_pass_at_1"] is not None else []) + \
                [f"pass@{k}" for k in ks if k in per_benchmark[name]["pass_at_k"]]
            for metric in metric_names:
                cells = []
                for tier in tiers:
                    group = by_tier.get(tier)
                    if group is None:
                        cells.append("–")
                    elif metric == "greedy pass@1":
                        cells.append(percent(group["greedy_pass_at_1"]))
                    else:
                        cells.append(percent(group["pass_at_k"].get(metric.split("@")[1])))
                tier_rows.append([model, name, metric, *cells])
    if tier_rows:
        lines += ["## By difficulty (%)", ""]
        lines += markdown_table(["model", "benchmark", "metric", *(f"{tier} ({_tier_tasks(results, tier)})" for tier in tiers)],
                        tier_rows)
        lines.append("")
    area_rows = []
    for model, per_benchmark in results.items():
        for name in benchmarks:
            by_area = per_benchmark.get(name, {}).get("by_area", {})
            if len(by_area) < 2:
                continue
            for area, group in by_area.items():
                area_rows.append([model, name, area, str(group["tasks"]), percent(group["greedy_pass_at_1"]),
                                  *(percent(group["pass_at_k"].get(k)) for k in ks)])
    if area_rows:
        lines += ["## By area (%)", ""]
        lines += markdown_table(["model", "benchmark", "area", "tasks", "greedy pass@1", *(f"pass@{k}" for k in ks)], area_rows)
        lines.append("")
    for section in report_sections():  # each task family's own (pipelines/tasks/families)
        lines += section(results, benchmarks)
    lines += ["## Format and failures", "",
              "Format: think/answer tags and exactly one code block (the IBM paper's format reward). Failures: "
              "samples by what ended them.", ""]
    kinds = [kind for kind in FAILURE_KINDS
             if any(m.get("failures", {}).get(kind) for pb in results.values() for m in pb.values())]
    rows = [[model, name, str(per_benchmark[name]["samples"]), percent(per_benchmark[name].get("format_rate")),
             *(str(per_benchmark[name].get("failures", {}).get(kind, 0)) for kind in kinds)]
            for model, per_benchmark in results.items() for name in benchmarks if name in per_benchmark]
    lines += markdown_table(["model", "benchmark", "samples", "format rate", *kinds], rows)
    lines.append("")
    lines += _qpu_section(results, benchmarks)
    cached = {model: t for model, t in (timing or {}).items() if "cache_hits" in t}
    if cached:
        lines += ["## Verdict cache", "", "Verdicts answered without running again: a kept verdict of the same "
                  "program, tests and settings, or an identical sample's verified at the same time.", ""]
        lines += markdown_table(["model", "answered by the cache", "hit rate", "verifier seconds saved"],
                        [[model, str(t["cache_hits"]), percent(t["cache_hit_rate"]), f"{t['cache_saved_s']:.1f}"]
                         for model, t in cached.items()])
        lines.append("")
    timing = {model: t for model, t in (timing or {}).items() if "generate_s" in t}
    if timing:
        lines += ["## Time (s)", "", "Verification runs while the model generates; the last column is what it "
                  "adds after generation ended.", ""]
        lines += markdown_table(["model", "generate", "verify (from the start)", "after generation"],
                        [[model, f"{t.get('generate_s', 0):.1f}", f"{t.get('verify_s', 0):.1f}",
                          f"{t.get('verify_tail_s', 0):.1f}"] for model, t in timing.items()])
        lines.append("")
    return "\n".join(lines)


def _qpu_section(results: Results, benchmarks: list[str]) -> list[str]:
    """QPU seconds and the samples the QPU budget refused, where a benchmark used the QPU."""
    rows = [[model, name, f"{per_benchmark[name].get('qpu_s', 0.0):.1f}", str(per_benchmark[name].get("over_budget", 0))]
            for model, per_benchmark in results.items() for name in benchmarks
            if name in per_benchmark and (per_benchmark[name].get("qpu_s") or per_benchmark[name].get("over_budget"))]
    if not rows:
        return []
    return ["## QPU", "", "QPU seconds the samples' jobs used (every try, as the gateway billed them), and the samples "
            "the QPU budget (verifier.qpu.budget_s) refused: not judged, left out of pass@k and every rate.", "",
            *markdown_table(["model", "benchmark", "QPU seconds", "over budget"], rows), ""]


def _tier_tasks(results: Results, tier: str) -> str:
    counts = {m["by_difficulty"][tier]["tasks"] for pb in results.values() for m in pb.values()
              if tier in m.get("by_difficulty", {})}
    return "/".join(str(count) for count in sorted(counts)) + " tasks"


def plot_passk(results: Results, path: str | Path) -> Path:
    """pass@k against k (log scale), mean with a band of one standard deviation over tasks; one
    panel per benchmark, one line per model; greedy pass@1 as a marker at k=1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = _benchmarks(results)
    figure, axes = plt.subplots(1, len(benchmarks), figsize=(4.5 * len(benchmarks), 3.6), squeeze=False)
    for axis, name in zip(axes[0], benchmarks):
        for index, (model, per_benchmark) in enumerate(results.items()):
            metrics = per_benchmark.get(name)
            if metrics is None:
                continue
            colour = f"C{index}"
            curve = metrics["curve"]
            if curve["k"]:
                mean = [100 * value for value in curve["mean"]]
                std = [100 * value for value in curve["std"]]
                axis.plot(curve["k"], mean, color=colour, marker="o" if len(curve["k"]) < 20 else None, label=model)
                axis.fill_between(curve["k"], [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                                  color=colour, alpha=0.15)
            if metrics.get("greedy_pass_at_1") is not None:
                axis.plot([1], [100 * metrics["greedy_pass_at_1"]], color=colour, marker="*", markersize=11,
                          linestyle="none", label=f"{model} (greedy)")
        axis.set_title(name)
        axis.set_xlabel("k")
        axis.set_xscale("log", base=2)
        axis.set_ylabel("pass@k (%)")
        axis.set_ylim(-2, 102)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
