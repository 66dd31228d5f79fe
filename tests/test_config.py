"""Config resolution: presets, typed overrides, and bad configs that must exit 2 naming the field."""

from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import Field

from actors.config import Config, tagged_union
from pipelines import cli
from pipelines.config import ConfigError, load_yaml, resolve_config, split_override
from pipelines.jobs import JOBS, job_module

PRESETS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
VerifyConfig = job_module("verify").Config


def test_there_are_presets():
    assert PRESETS, "configs/ holds no preset"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_loads(preset):
    job = preset.stem.split("-")[0]
    assert job in JOBS, f"preset {preset.name} must start with a job name ({', '.join(JOBS)})"
    config = resolve_config(job_module(job).Config, preset)
    # What the preset says is what the config holds (nothing dropped or renamed on the way).
    assert_holds(config.model_dump(mode="json"), load_yaml(preset), preset.name)


def assert_holds(resolved, written, where):
    if isinstance(written, dict) and isinstance(resolved, dict):
        for key, value in written.items():
            assert key in resolved, f"{where}: {key} is not in the resolved config"
            assert_holds(resolved[key], value, f"{where}: {key}")
    elif isinstance(written, float) or isinstance(resolved, float):
        assert resolved == pytest.approx(written), where
    elif isinstance(written, list) and isinstance(resolved, list) and len(written) == len(resolved):
        for index, (one, other) in enumerate(zip(resolved, written)):
            assert_holds(one, other, f"{where}[{index}]")
    elif not (isinstance(written, (list, dict)) or isinstance(resolved, (list, dict))):
        assert resolved == written or str(resolved) == str(written), f"{where}: {written!r} became {resolved!r}"


def test_overrides_parse_to_the_field_type():
    config = resolve_config(VerifyConfig, None, [
        "verifier.timeout_s=30", "tasks.limit=3", "run.tensorboard=false", "tasks.task_ids=[a, b]",
        "run.root=007", "completions=null", "ray.num_cpus=4", "ray.object_store_memory_mb=null",
        "pool.cpus_per_slot=0.25", "tasks.source=x=y.jsonl",
    ])
    assert config.verifier.timeout_s == 30.0 and isinstance(config.verifier.timeout_s, float)
    assert config.tasks.limit == 3 and isinstance(config.tasks.limit, int)
    assert config.run.tensorboard is False
    assert config.tasks.task_ids == ["a", "b"]
    assert config.run.root == "007"
    assert config.completions is None
    assert config.ray.num_cpus == 4
    assert config.ray.object_store_memory_mb is None
    assert config.pool.cpus_per_slot == 0.25
    assert config.tasks.source == "x=y.jsonl"


def test_override_wins_over_file(tmp_path):
    preset = tmp_path / "verify-x.yaml"
    preset.write_text("verifier:\n  timeout_s: 10\n")
    assert resolve_config(VerifyConfig, preset).verifier.timeout_s == 10
    assert resolve_config(VerifyConfig, preset, ["verifier.timeout_s=20"]).verifier.timeout_s == 20


def test_split_override_keeps_equals_in_value():
    assert split_override("a.b=c=d") == ("a.b", "c=d")
    with pytest.raises(ConfigError):
        split_override("a.b")


# (YAML text or None, overrides, substrings the message must contain)
BAD_CONFIGS = [
    ("verifer: {}\n", [], ["unknown key verifer", "did you mean 'verifier'"]),
    ("verifier:\n  timeot_s: 3\n", [], ["unknown key verifier.timeot_s", "timeout_s"]),
    ("verifier:\n  timeout_s: abc\n", [], ["verifier.timeout_s", "'abc'", "a number"]),
    ("verifier:\n  timeout_s: 0\n", [], ["verifier.timeout_s", "bad value 0", "> 0"]),
    ("verifier:\n  timeout_s: 100000\n", [], ["verifier.timeout_s", "100000", "<= 3600"]),
    ("pool:\n  cpus_per_slot: -1\n", [], ["pool.cpus_per_slot", "-1", "> 0"]),
    ("verifier:\n  slots: 2\n", [], ["unknown key verifier.slots"]),  # sizing lives in pool: (PoolConfig)
    ("pool:\n  max_workers: 8\n", [], ["pool.max_workers=8 only applies with pool.autoscale=true"]),
    ("pool:\n  autoscale: true\n  workers: 9\n", [], ["pool.workers (9) must lie within", "1..4"]),
    ("verifier:\n  isolation: docker\n", [], ["verifier.isolation", "'docker'", "one of 'auto', 'split'"]),
    ("verifier:\n  executor: inprocess\n", [], ["unknown key verifier.executor"]),
    ("run:\n  tensorboard: maybe\n", [], ["run.tensorboard", "'maybe'", "true or false"]),
    ("tasks:\n  limit: 2.5\n", [], ["tasks.limit", "2.5", "an integer"]),
    ("tasks:\n  limit: 0\n", [], ["tasks.limit", "bad value 0", "> 0"]),
    ("tasks:\n  task_ids: abc\n", [], ["tasks.task_ids", "'abc'", "a list"]),
    ("verifier: 5\n", [], ["verifier", "bad value 5", "a mapping with keys isolation"]),
    ("ray:\n  num_cpus: 0\n", [], ["ray.num_cpus", "bad value 0", ">= 1"]),
    ("ray:\n  object_store_memory_mb: 10\n", [], ["ray.object_store_memory_mb", "10", ">= 80"]),
    ("verifier:\n  sandbox:\n    max_output_bytes: 10\n", [], ["verifier.sandbox.max_output_bytes", "10", ">= 256"]),
    ("tasks:\n  source: [1, 2]\n", [], ["tasks.source", "[1, 2]", "a string"]),
    ("verifier: [unclosed\n", [], ["broken YAML", ":2:"]),
    ("- a\n- b\n", [], ["top level must be a mapping"]),
    ("verifier:\n  timeout_s: 3\n  timeout_s: 4\n", [], ["'timeout_s' appears twice", "line 3"]),
    (None, ["verifier.timeout_s"], ["expected KEY=VALUE"]),
    (None, ["verifier..timeout_s=1"], ["not a dotted field name"]),
    (None, ["verifier.timout_s=1"], ["unknown key verifier.timout_s", "did you mean 'timeout_s'"]),
    (None, ["verifier.timeout_s=abc"], ["override 'verifier.timeout_s=abc'", "verifier.timeout_s", "a number"]),
    (None, ["verifier.timeout_s=-1"], ["override 'verifier.timeout_s=-1'", "bad value -1", "> 0"]),
    (None, ["verifier.timeout_s.x=1"], ["verifier.timeout_s is a number", "no field 'x'"]),
    (None, ["ray.include_dashboard=maybe"], ["ray.include_dashboard", "'maybe'", "true or false"]),
    (None, ["tasks.task_ids=5"], ["tasks.task_ids", "'5'", "a list"]),
    (None, ["verifier.rewards.weights.fluency=1"], ["verifier.rewards.weights", "unknown rewards ['fluency']"]),
    (None, ["=3"], ["not a dotted field name"]),
]


@pytest.mark.parametrize("yaml_text,overrides,expected", BAD_CONFIGS,
                         ids=[f"bad{i}" for i in range(len(BAD_CONFIGS))])
def test_bad_config_exits_2_naming_the_field(tmp_path, capsys, yaml_text, overrides, expected):
    args = ["verify", f"run.root={tmp_path / 'runs'}"]
    if yaml_text is not None:
        preset = tmp_path / "verify-bad.yaml"
        preset.write_text(yaml_text)
        args += ["--config", str(preset)]
    assert cli.main(args + overrides) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, f"{text!r} not in:\n{err}"
    if yaml_text is not None and not any("override" in text for text in expected):
        assert str(tmp_path / "verify-bad.yaml") in err
    assert not (tmp_path / "runs").exists(), "a bad config must not start the job"


def test_missing_config_file(tmp_path, capsys):
    assert cli.main(["verify", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: config file not found" in capsys.readouterr().err


def test_all_problems_are_reported_at_once(capsys):
    assert cli.main(["config", "show", "verify", "verifier.timeout_s=-1", "ray.num_cpu=2", "tasks.limit=x"]) == 2
    err = capsys.readouterr().err
    assert "verifier.timeout_s" in err and "ray.num_cpu" in err and "tasks.limit" in err


def test_config_show_prints_resolved_yaml(capsys):
    assert cli.main(["config", "show", "verify", "verifier.timeout_s=12"]) == 0
    out = capsys.readouterr().out
    assert "timeout_s: 12.0" in out and "isolation: auto" in out


def test_config_show_json_last_line(capsys):
    import json

    assert cli.main(["config", "show", "verify", "--json", "tasks.limit=2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["tasks"]["limit"] == 2


def test_flags_are_validated_like_overrides(tmp_path, capsys):
    assert cli.main(["config", "show", "verify", "--json", "--tasks", "t.jsonl", "--canonical"]) == 0
    import json

    config = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert config["tasks"]["source"] == "t.jsonl" and config["completions"] is None


def test_unknown_flag_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["verify", "--nope"])
    assert exit_.value.code == 2


def _models(model, seen=None):
    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                _models(candidate, seen)
    return seen


@pytest.mark.parametrize("job", list(JOBS))
def test_every_config_field_is_documented(job):
    for model in _models(job_module(job).Config):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} needs a docstring"


# ---- a discriminated union of sections (the online job's `algorithm`) ----

class _Clip(Config):
    name: Literal["clip"] = "clip"
    """The member's tag."""

    eps: float = Field(0.2, gt=0.0)
    """A field only this member has."""


class _Reinforce(Config):
    name: Literal["reinforce"] = "reinforce"
    """The member's tag."""

    baseline: bool = True
    """A field only this member has."""


class _Job(Config):
    algorithm: tagged_union(_Clip, _Reinforce) = _Clip()
    """Two members, told apart by name."""


def test_a_union_members_fields_take_overrides_and_the_name_picks_the_member():
    assert resolve_config(_Job, None, ["algorithm.eps=0.3"]).algorithm == _Clip(eps=0.3)  # no name: the first
    chosen = resolve_config(_Job, None, ["algorithm.name=reinforce", "algorithm.baseline=false"]).algorithm
    assert chosen == _Reinforce(baseline=False)


@pytest.mark.parametrize("data, overrides, expected", [
    ({}, ["algorithm.eps=-1"], ["override 'algorithm.eps=-1': algorithm.eps: bad value -1", "> 0.0"]),
    ({"algorithm": {"eps": -1}}, [], ["algorithm.eps: bad value -1", "> 0.0"]),
    ({}, ["algorithm.epz=1"], ["unknown key algorithm.epz (did you mean 'eps'?)", "under algorithm: name, eps, baseline"]),
    ({"algorithm": {"name": "reinforce", "basline": 1}}, [], ["unknown key algorithm.basline", "did you mean 'baseline'"]),
    ({}, ["algorithm.name=ppo"], ["algorithm.name: bad value 'ppo'", "one of 'clip', 'reinforce'"]),
    ({"algorithm": {"name": "reinforce", "eps": 1}}, [],
     ["unknown key algorithm.eps; allowed keys under algorithm: name, baseline"]),
])
def test_errors_inside_a_union_name_the_members_field(tmp_path, data, overrides, expected):
    preset = tmp_path / "job.yaml"
    preset.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        resolve_config(_Job, preset, overrides)
    for text in expected:
        assert text in str(error.value), str(error.value)


def test_the_reference_lists_every_members_fields():
    from pipelines.reference import _rows

    keys = [key for key, *_ in _rows(_Job, set(), None)]
    assert keys == ["`algorithm`", "`algorithm.name`", "`algorithm.eps`", "`algorithm.name`", "`algorithm.baseline`"]


def test_the_online_job_picks_its_advantage_and_policy_loss_by_name():
    online = job_module("grpo").Config
    config = resolve_config(online, PRESETS[0].parent / "grpo-smoke.yaml",
                            ["algorithm.advantage=rloo", "algorithm.policy_loss=cispo"])
    assert (config.algorithm.name, config.algorithm.advantage, config.algorithm.policy_loss) == ("grpo", "rloo", "cispo")
    with pytest.raises(ConfigError, match="algorithm.policy_loss: bad value 'ppo'.*one of 'ppo-clip', 'gspo', 'cispo'"):
        resolve_config(online, None, ["algorithm.policy_loss=ppo"])
    with pytest.raises(ConfigError, match=r"sampling.n \(4\) must equal the samples per prompt of grpo \(8\)"):
        resolve_config(online, None, ["algorithm.group_size=8", "sampling.n=4"])
