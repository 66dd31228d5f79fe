"""The cluster side: layout rules, runtime_env, KubeRay manifests and the launcher config against their schemas."""

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT, SHARED

CRDS = SHARED / "data" / "kuberay-crds"
needs_crds = pytest.mark.skipif(not CRDS.is_dir(), reason="KubeRay CRDs are not beside the project")


def test_layout():
    for folder in ("actors", "pipelines", "pipelines/tasks", "configs", "platform", "docker", "tests"):
        assert (ROOT / folder).is_dir(), folder
    assert not list((ROOT / "platform").rglob("__init__.py")), "platform/ must never be a Python package"
    packages = {path.parent.relative_to(ROOT).parts[0] for path in ROOT.glob("*/__init__.py")}
    assert packages <= {"actors", "pipelines", "tests"}


def test_actors_never_import_pipelines():
    offenders = [str(path) for path in (ROOT / "actors").rglob("*.py")
                 if any(line.lstrip().startswith(("from pipelines", "import pipelines"))
                        for line in path.read_text().splitlines())]
    assert offenders == []


def test_runtime_env_is_valid_for_ray():
    from ray.runtime_env import RuntimeEnv

    spec = yaml.safe_load((ROOT / "platform" / "runtime_env.yaml").read_text())
    env = RuntimeEnv(**spec)
    assert ".venv" in env["excludes"] and "runs" in env["excludes"]
    assert all(isinstance(value, str) for value in env["env_vars"].values())


def _strict(schema):
    """Kubernetes prunes unknown fields silently; here an unknown field (a typo) is an error."""
    if isinstance(schema, dict):
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def _crd_schema(name):
    crd = yaml.safe_load((CRDS / f"ray.io_{name}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return _strict(version["schema"]["openAPIV3Schema"])


@needs_crds
@pytest.mark.parametrize("manifest,crd", [("raycluster.yaml", "rayclusters"), ("rayjob.yaml", "rayjobs")])
def test_kuberay_manifests_match_the_crds(manifest, crd):
    document = yaml.safe_load((ROOT / "platform" / "kuberay" / manifest).read_text())
    validator = jsonschema.Draft7Validator(_crd_schema(crd))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    broken = yaml.safe_load((ROOT / "platform" / "kuberay" / manifest).read_text())
    broken["spec"]["enableInTreeAutoscalling"] = True
    assert list(validator.iter_errors(broken)), "the strict schema must catch a misspelt field"


@needs_crds
def test_verifier_group_advertises_the_verifier_resource():
    cluster = yaml.safe_load((ROOT / "platform" / "kuberay" / "raycluster.yaml").read_text())
    groups = {group["groupName"]: group for group in cluster["spec"]["workerGroupSpecs"]}
    assert "verifier" in groups["verifier"]["resources"]
    assert groups["verifier"]["minReplicas"] < groups["verifier"]["maxReplicas"]
    assert cluster["spec"]["enableInTreeAutoscaling"] is True


def test_cluster_launcher_config_matches_rays_schema():
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    config = yaml.safe_load((ROOT / "platform" / "cluster.yaml").read_text())
    assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(config)] == []
    assert config["available_node_types"]["verifier"]["resources"]["verifier"] > 0


def test_ci_runs_only_make_test():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert lines[-1] == "exec make test"
    assert not any(re.search(r"\b(pytest|pip|uv)\b", line) for line in lines)


def test_setup_is_idempotent():
    """With .venv in place, `make setup` has nothing to do (so `make test` stays fast)."""
    if not (ROOT / ".venv").is_dir():
        pytest.skip("not run from a `make setup` checkout")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    result = subprocess.run(["make", "-q", "setup"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, "make setup would redo work although nothing changed"
