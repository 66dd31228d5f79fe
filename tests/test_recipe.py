"""`qvr recipe`: stages chained by their outputs, checked before anything runs, resumed by stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.config import ConfigError, resolve_config
from pipelines.recipe import Config
from tests.conftest import write_two_stage_recipe


def test_a_placeholder_must_name_an_earlier_stage_and_a_job_must_exist():
    stages = {"train": {"job": "sft", "overrides": ["model={later.policy}"]}, "later": {"job": "eval"}}
    with pytest.raises(ConfigError, match="names 'later', which is not an earlier stage"):
        resolve_config(Config, None, [f"stages={json.dumps(stages)}"])
    with pytest.raises(ConfigError, match="unknown job 'dance'"):
        resolve_config(Config, None, ['stages={"a": {"job": "dance"}}'])
    with pytest.raises(ConfigError, match="at least one stage"):
        resolve_config(Config, None, [])


def test_held_out_pass_at_1_is_read_from_each_kind_of_stage_summary():
    from pipelines.recipe import heldout_pass_at_1

    offline = {"eval": {"before": {"pass@1": 0.0, "greedy_pass@1": 0.0}, "after": {"pass@1": 0.25}}}
    grpo = {"eval": {"eval/pass@1": 0.5, "eval/greedy_pass@1": 0.6}}
    evaluation = {"models": {"base": {"benchmarks": {"heldout": {"pass_at_k": {"1": 0.1, "5": 0.3}}}},
                             "final": {"benchmarks": {"heldout": {"pass_at_k": {"1": 0.7}}}}}}
    assert heldout_pass_at_1("sft", offline) == [("sft:start", 0.0), ("sft", 0.25)]
    assert heldout_pass_at_1("grpo", grpo) == [("grpo", 0.5)]
    assert heldout_pass_at_1("eval", evaluation) == [("eval:base", 0.1), ("eval:final", 0.7)]
    assert heldout_pass_at_1("synth", {"tasks": 3, "output": "x"}) == []


def test_a_bad_stage_preset_value_is_a_config_error_before_anything_runs(tmp_path, capsys, ray_session):
    from pipelines.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"stages": {"check": {"job": "verify", "config": "configs/verify-quickstart.yaml",
                                                           "overrides": ["pool.workers=-1"]}}}))
    assert main(["recipe", "--config", str(recipe), f"run.root={tmp_path}"]) == 2
    assert "stages.check (verify)" in capsys.readouterr().err
    assert not list(tmp_path.glob("recipe-*"))


@pytest.mark.slow
def test_stages_feed_each_other_by_path_and_a_rerun_runs_only_unfinished_stages(tmp_path, capsys, ray_session):
    from pipelines.cli import main

    recipe = write_two_stage_recipe(tmp_path / "recipe.yaml", "tiny")
    args = ["recipe", "--config", str(recipe), f"run.root={tmp_path}", "--json"]

    def recipe_run() -> dict:
        assert main(args) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    first = recipe_run()
    folder = tmp_path / "recipe-tiny"
    assert [(s["stage"], s["status"]) for s in first["stages"]] == [("synth", "done"), ("check", "done")]
    synth = json.loads((folder / "stages/01-synth/summary.json").read_text())
    check = json.loads((folder / "stages/02-check/summary.json").read_text())
    # The verify stage read what the synth stage wrote: every synthetic task, its reference passing.
    assert synth["tasks"] == check["total"] == check["passed"] == 2
    assert Path(synth["output"]).parent == folder / "stages/01-synth"
    assert "| check | verify | done |" in Path(first["report"]).read_text()

    stamps = {path: path.stat().st_mtime_ns for path in folder.glob("stages/*/summary.json")}
    second = recipe_run()
    assert [s["status"] for s in second["stages"]] == ["skipped", "skipped"]
    assert {path: path.stat().st_mtime_ns for path in folder.glob("stages/*/summary.json")} == stamps

    (folder / "stages/02-check/summary.json").unlink()  # as if the recipe died in its last stage
    third = recipe_run()
    assert [s["status"] for s in third["stages"]] == ["skipped", "done"]
    assert (folder / "stages/01-synth/summary.json").stat().st_mtime_ns == stamps[folder / "stages/01-synth/summary.json"]
    assert json.loads((folder / "stages/02-check/summary.json").read_text())["passed"] == 2


def test_the_report_shows_held_out_pass_at_1_and_links_each_stages_curves(tmp_path):
    from pipelines.recipe import heldout_pass_at_1, write_report

    sft_dir, grpo_dir = tmp_path / "stages/01-sft", tmp_path / "stages/02-grpo"
    sft_dir.mkdir(parents=True)
    grpo_dir.mkdir(parents=True)
    (sft_dir / "training.png").write_bytes(b"png")
    (grpo_dir / "rewards.png").write_bytes(b"png")
    summaries = {"sft": {"steps": 4, "eval": {"before": {"pass@1": 0.0}, "after": {"pass@1": 0.25}}},
                 "grpo": {"steps": 3, "eval": {"eval/pass@1": 0.5}}}
    stages = [{"stage": "sft", "job": "sft", "status": "done", "run_dir": str(sft_dir), "wall_s": 1.0},
              {"stage": "grpo", "job": "grpo", "status": "done", "run_dir": str(grpo_dir), "wall_s": 2.0}]
    heldout = [{"stage": label, "pass_at_1": value} for stage in stages
               for label, value in heldout_pass_at_1(stage["stage"], summaries[stage["stage"]])]
    report = write_report(tmp_path, stages, summaries, heldout).read_text()
    assert "| sft:start | 0.000 |\n| sft | 0.250 |\n| grpo | 0.500 |" in report
    assert "![held-out pass@1 after each stage](heldout.png)" in report
    assert (tmp_path / "heldout.png").read_bytes()[:4] == b"\x89PNG"
    assert "](stages/01-sft/training.png)" in report and "](stages/02-grpo/rewards.png)" in report
