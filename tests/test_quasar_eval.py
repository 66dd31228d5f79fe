"""QUASAR's evaluation metrics (SCR, SREV, HQCR, RE at pass@1 and pass@10) from verdict measures."""

import json

import pytest

from pipelines.evaluation.metrics import benchmark_metrics, flat_metrics, pass_at_k
from pipelines.tasks.quasar.metrics import quasar_metrics

GOOD = {"syntax_valid": 1.0, "energy": -1.0, "energy_ref": -1.1, "re_bits": 0.05}   # SCR, SREV, HQCR
FAR = {"syntax_valid": 1.0, "energy": 0.5, "energy_ref": -1.1, "re_bits": 2.0}      # SCR only
INVALID = {"syntax_valid": 0.0}


def rows(task_id, samples, family="quasar"):
    return [{"task_id": task_id, "family": family, "mode": "sampled", "status": "failed",
             "measures": json.dumps(m)} for m in samples]


def test_rates_use_the_unbiased_estimator_and_re_its_means():
    data = rows("a", [GOOD] + [FAR] * 4 + [INVALID] * 5) + rows("b", [FAR] * 2 + [INVALID] * 8)
    metrics = quasar_metrics(data)
    assert metrics["tasks"] == 2 and metrics["n"] == 10
    assert metrics["scr@1"] == pytest.approx((5 / 10 + 2 / 10) / 2)
    assert metrics["srev@1"] == pytest.approx((1 / 10 + 0) / 2)
    assert metrics["hqcr@1"] == pytest.approx(metrics["srev@1"])
    assert metrics["scr@10"] == pytest.approx(1.0) and metrics["srev@10"] == pytest.approx(0.5)
    assert metrics["re@1"] == pytest.approx((0.05 + 4 * 2.0 + 2 * 2.0) / 7)
    assert metrics["re@10"] == pytest.approx((0.05 + 2.0) / 2)
    three = rows("c", [GOOD, INVALID, INVALID])
    assert quasar_metrics(three, ks=(1, 2))["srev@2"] == pytest.approx(pass_at_k(3, 1, 2))
    assert "srev@10" not in quasar_metrics(three)  # fewer samples than k


def test_srev_tolerance_is_0_2_and_hqcr_threshold_0_1():
    near = {"syntax_valid": 1.0, "energy": -0.95, "energy_ref": -1.1, "re_bits": 0.1}
    far = {**near, "energy": -0.85, "re_bits": 0.0999}
    assert quasar_metrics(rows("a", [near]), ks=(1,))[("srev@1")] == 1.0
    assert quasar_metrics(rows("a", [near]), ks=(1,))["hqcr@1"] == 0.0
    assert quasar_metrics(rows("a", [far]), ks=(1,))["srev@1"] == 0.0
    assert quasar_metrics(rows("a", [far]), ks=(1,))["hqcr@1"] == 1.0


def test_benchmark_metrics_carry_quasar_numbers_only_for_quasar_tasks():
    data = rows("a", [GOOD] * 10)
    metrics = benchmark_metrics(data, [1, 10])
    assert metrics["quasar"]["hqcr@10"] == 1.0
    assert flat_metrics(metrics)["eval/quasar/scr@1"] == 1.0
    assert "quasar" not in benchmark_metrics(rows("b", [GOOD] * 10, family="synthetic"), [1, 10])


def test_the_report_has_a_quasar_table():
    from pipelines.evaluation.report import render_report

    metrics = benchmark_metrics(rows("a", [GOOD] * 10), [1, 10])
    report = render_report({"model": {"quasar": metrics}})
    assert "## QUASAR" in report and "| model | quasar | 1 | 10 | 100.00 |" in report
    assert "## QUASAR" not in render_report({"model": {"other": benchmark_metrics(rows("b", [GOOD] * 10, "x"), [1, 10])}})
