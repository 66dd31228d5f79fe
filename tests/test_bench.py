"""`qvr bench verifier` smoke: the JSON the issue asks for, from real measurements."""

import json

import pytest

from tests.conftest import run_qvr

pytestmark = pytest.mark.slow


def test_bench_verifier_json(tmp_path, ray_session):
    # One slot per executor: five zygotes instead of ten; the figures are computed alike.
    result = run_qvr("bench", "verifier", "verifier.workloads=[small]", "verifier.small_jobs=6", "verifier.slots=1",
         "verifier.subprocess_jobs=2", "verifier.rounds=2", f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    small = summary["small"]
    for key in ("subprocess_per_s", "forked_per_s", "inprocess_per_s", "forked_over_subprocess", "forked_over_inprocess",
                "split_per_s", "split_over_forked", "bare_per_s", "bare_over_inprocess", "forked_over_bare"):
        assert small[key] > 0, key
    for executor in ("forked", "split", "inprocess", "bare"):
        run = small["runs"][executor]
        assert run["passed"] == 6, executor
        assert len(run["per_s_rounds"]) == 2 and run["per_s"] == pytest.approx(sum(run["per_s_rounds"]) / 2, rel=0.01)
    assert small["runs"]["subprocess"]["passed"] == 2
    assert small["forked_over_subprocess"] == pytest.approx(
        small["runs"]["forked_prefix"]["per_s"] / small["runs"]["subprocess"]["per_s"], rel=0.01)
    assert "qhe" not in summary  # no qhe_source given


def test_bench_qpu_json(tmp_path, ray_session):
    result = run_qvr("bench", "qpu", "qpu.jobs=40", "qpu.callers=8", "qpu.time_scale=60",
         "qpu.tiers.steps=0", f"run.root={tmp_path}", "--json")  # the tiers figure: tests/test_qpu_tiers.py
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"jobs", "callers", "max_pending", "limit_per_min", "achieved_per_min", "max_in_flight", "violations"} <= set(summary)
    assert summary["jobs"] == 40 and summary["violations"] == 0 and summary["max_in_flight"] <= 3


def test_bench_pool_json(tmp_path, ray_session):
    result = run_qvr("bench", "pool", "pool.jobs=8", "pool.workers=[1, 2]",
         f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["workers"] == [1, 2] and len(summary["per_s"]) == 2 and all(rate > 0 for rate in summary["per_s"])
    assert isinstance(summary["ray_overhead_ms"], float)


def test_bench_rewards_json(tmp_path, ray_session):
    result = run_qvr("bench", "rewards", "rewards.jobs=4", "rewards.rounds=1",
         "rewards.slots=1", f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("default", "deprecation", "qspark", "qspark_paper"):
        assert summary[name]["s_per_sample"] > 0 and summary[name]["cpu_s_per_sample"] > 0, name
        assert summary[name]["over_default"] > 0 and summary[name]["cpu_over_default"] > 0, name
    for name in ("deprecation", "qspark", "qspark_paper"):  # each ratio is its own cost over the default's
        for cost, ratio in (("s_per_sample", "over_default"), ("cpu_s_per_sample", "cpu_over_default")):
            assert summary[name][ratio] == pytest.approx(summary[name][cost] / summary["default"][cost], rel=0.02, abs=2e-3)
    assert summary["deprecation"]["mean_parts"]["deprecation"] == pytest.approx(-0.1 / 4)  # 1 of 4 samples: one finding
    assert summary["qspark"]["mean_parts"]["qspark_fidelity"] == pytest.approx(2.0 * 3 / 4)  # the deprecated one crashes
    assert summary["deprecation_lint_ms_per_sample"] > 0 and summary["circuit_measures_ms_per_sample"] > 0


def test_bench_templates_reports_each_templates_reference_seconds():
    from pipelines.benches.templates import TemplatesBenchConfig, run

    results = run(TemplatesBenchConfig(templates=["bell_state", "ghz_state"], seeds=2, slots=1, slow_s=1e-6))
    assert results["templates"] == 2 and results["failed_references"] == []
    slowest = results["slowest"]
    assert sorted(row["template"] for row in slowest) == ["bell_state", "ghz_state"]
    assert slowest[0]["s"] >= slowest[1]["s"] > 0
    for row in slowest:
        assert row["over_median"] == pytest.approx(row["s"] / results["median_s"], rel=0.02)
    assert results["over_slow_s"] == [row["template"] for row in slowest]  # every one is over a microsecond


def test_bench_publish_json(tmp_path, ray_session):
    """Every worker holds the very weights sent (checked by the bench on the workers' side), and the
    figures are of the bytes each received."""
    result = run_qvr("bench", "publish", "publish.parameters=[100000, 1000000]", "publish.workers=2",
                     "publish.repeats=1", "publish.layers=2", f"run.root={tmp_path}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    sizes = summary["transports"]["object_store"]
    assert set(sizes) == {"0.1M", "1M"}
    for figures in sizes.values():
        assert figures["gb"] == pytest.approx(4 * figures["parameters"] / 1e9)  # float32, each worker all of it
        assert figures["seconds"] > 0 and figures["gb_per_s"] == pytest.approx(figures["gb"] / figures["seconds"])
        assert figures["gb_per_s_all_workers"] == pytest.approx(2 * figures["gb_per_s"])
    assert sizes["1M"]["parameters"] == pytest.approx(1_000_000, rel=0.01)

