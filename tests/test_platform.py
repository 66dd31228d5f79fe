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
KUBERAY = ROOT / "platform" / "kuberay"
MANIFESTS = {"raycluster.yaml": "rayclusters", "rayjob.yaml": "rayjobs", "rayjob-recipe.yaml": "rayjobs"}
JOBS = sorted(name for name, crd in MANIFESTS.items() if crd == "rayjobs")
RAY_AUTH_SECRET = "qvr-ray-auth"
IBM_SECRET = "qvr-ibm-quantum"
IBM_TOKEN_FILE = "/var/run/secrets/qvr/ibm-token"
# What the verifier sandbox needs and nothing more (platform/kuberay/raycluster.yaml says why, field
# by field; tests/test_verifier_pod_privileges.py runs a real verifier with exactly these capabilities).
VERIFIER_SECURITY = {
    "privileged": False, "runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": True,
    "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "SETUID", "SETGID", "KILL"]},
    "seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"}, "procMount": "Default",
}


def manifest(name: str) -> dict:
    return yaml.safe_load((KUBERAY / name).read_text())


def cluster_spec(document: dict) -> dict:
    """The RayCluster spec of a RayCluster, or of a RayJob's cluster: its own, or the one of
    raycluster.yaml that its clusterSelector picks."""
    if document["kind"] == "RayCluster":
        return document["spec"]
    if "clusterSelector" in document["spec"]:
        cluster = manifest("raycluster.yaml")
        assert document["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        return cluster["spec"]
    return document["spec"]["rayClusterSpec"]


def pod_templates(node, where: str = "") -> dict[str, dict]:
    """Every pod template in a manifest (anything whose spec has containers), by its path."""
    found = {}
    if isinstance(node, dict):
        if isinstance(node.get("spec"), dict) and "containers" in node["spec"]:
            found[where or "."] = node
        for key, value in node.items():
            found.update(pod_templates(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            label = value.get("groupName", index) if isinstance(value, dict) else index
            found.update(pod_templates(value, f"{where}[{label}]"))
    return found


def containers(template: dict) -> list[dict]:
    return [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]


def secrets_named(node) -> set[str]:
    """Names of the Secrets a piece of a pod spec references (volumes, env, envFrom, projections)."""
    names = set()
    if isinstance(node, dict):
        for key in ("secretKeyRef", "secretRef", "secret"):
            ref = node.get(key)
            if isinstance(ref, dict) and (ref.get("name") or ref.get("secretName")):
                names.add(ref.get("name") or ref.get("secretName"))
        for value in node.values():
            names |= secrets_named(value)
    elif isinstance(node, list):
        for value in node:
            names |= secrets_named(value)
    return names


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
    # `python` in a job's entrypoint is the cluster's interpreter (tests/test_ray_job_submit.py runs it
    # on a head whose PATH lacks the venv): the hook is on PYTHONPATH, relative to the working dir.
    assert env["env_vars"]["PYTHONPATH"] == "platform/interpreter"
    assert (ROOT / "platform" / "interpreter" / "sitecustomize.py").is_file()
    assert "RAY_AUTH_MODE" not in env["env_vars"]


@pytest.mark.parametrize("name", JOBS)
def test_rayjob_runs_with_the_runtime_env_of_ray_job_submit(name):
    """The RayJob's runtimeEnvYAML is platform/runtime_env.yaml plus the image's working dir."""
    from ray.runtime_env import RuntimeEnv

    shared = yaml.safe_load((ROOT / "platform" / "runtime_env.yaml").read_text())
    job = yaml.safe_load(manifest(name)["spec"]["runtimeEnvYAML"])
    RuntimeEnv(**{key: value for key, value in job.items() if key != "working_dir"})  # /app is the image's
    assert job == {**shared, "working_dir": "/app"}


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


CAPABILITIES = {
    "ALL", "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
    "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT",
    "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM"}
PROFILE_TYPES = {"RuntimeDefault", "Unconfined", "Localhost"}


def kubernetes_problems(document: dict) -> list[str]:
    """What the API server rejects in a pod template but the CRD's schema cannot say (enums, and
    rules between fields, from Kubernetes' pod validation)."""
    problems = []
    for where, template in pod_templates(document).items():
        pod = template["spec"]
        pod_context = pod.get("securityContext", {})
        volumes = {volume["name"] for volume in pod.get("volumes", [])}
        names = [container["name"] for container in containers(template)]
        if len(set(names)) != len(names):
            problems.append(f"{where}: container names repeat: {names}")
        for volume in pod.get("volumes", []):
            mode = (volume.get("secret") or {}).get("defaultMode")
            if mode is not None and not 0 <= mode <= 0o777:
                problems.append(f"{where}: volume {volume['name']}: defaultMode {mode} is not 0-0777")
        for container in containers(template):
            at = f"{where} container {container['name']}"
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", container["name"]):
                problems.append(f"{at}: not a DNS-1123 label")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problems.append(f"{at}: volumeMount {mount['name']} names no volume")
            for variable in container.get("env", []):
                if not re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", variable["name"]):
                    problems.append(f"{at}: env name {variable['name']!r}")
            context = container.get("securityContext", {})
            for scope, fields in (("pod", pod_context), ("container", context)):
                for key in ("seccompProfile", "appArmorProfile"):
                    profile = fields.get(key)
                    if profile and profile["type"] not in PROFILE_TYPES:
                        problems.append(f"{at}: {scope} {key}.type {profile['type']!r} not in {sorted(PROFILE_TYPES)}")
                    if profile and (profile["type"] == "Localhost") != bool(profile.get("localhostProfile")):
                        problems.append(f"{at}: {scope} {key}: localhostProfile goes with type Localhost only")
            if context.get("procMount", "Default") not in ("Default", "Unmasked"):
                problems.append(f"{at}: procMount {context['procMount']!r}")
            if context.get("procMount") == "Unmasked" and pod.get("hostUsers", True):
                problems.append(f"{at}: procMount Unmasked needs hostUsers: false")
            capabilities = context.get("capabilities", {})
            for name in (*capabilities.get("add", []), *capabilities.get("drop", [])):
                if name not in CAPABILITIES:
                    problems.append(f"{at}: unknown capability {name!r}")
            if context.get("allowPrivilegeEscalation") is False and (
                    context.get("privileged") or "SYS_ADMIN" in capabilities.get("add", [])):
                problems.append(f"{at}: allowPrivilegeEscalation false together with privileged or SYS_ADMIN")
            run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
            if run_as_non_root and context.get("runAsUser", pod_context.get("runAsUser")) == 0:
                problems.append(f"{at}: runAsNonRoot with runAsUser 0")
    return problems


@needs_crds
@pytest.mark.parametrize("name,crd", sorted(MANIFESTS.items()))
def test_kuberay_manifests_match_the_crds(name, crd):
    document = manifest(name)
    validator = jsonschema.Draft7Validator(_crd_schema(crd))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    assert kubernetes_problems(document) == []
    broken = manifest(name)
    broken["spec"]["enableInTreeAutoscalling"] = True
    assert list(validator.iter_errors(broken)), "the strict schema must catch a misspelt field"
    for template in pod_templates(broken).values():  # strict down to every container's securityContext
        template["spec"]["containers"][0].setdefault("securityContext", {})["capabilites"] = {"add": ["NET_ADMIN"]}
    assert any("capabilites" in error.message for error in validator.iter_errors(broken))


BREAKAGES = {
    "an unknown seccomp profile type": lambda c, p: c.update(seccompProfile={"type": "Unconfinde"}),
    "a Localhost profile without its file": lambda c, p: c.update(appArmorProfile={"type": "Localhost"}),
    "an unknown capability": lambda c, p: c.setdefault("capabilities", {}).setdefault("add", []).append("CAP_FOO"),
    "no privilege escalation with SYS_ADMIN": lambda c, p: c.update(
        allowPrivilegeEscalation=False, capabilities={"add": ["SYS_ADMIN"]}),
    "procMount Unmasked in the host's user namespace": lambda c, p: c.update(procMount="Unmasked"),
    "runAsNonRoot as uid 0": lambda c, p: c.update(runAsNonRoot=True, runAsUser=0),
    "a mount of no volume": lambda c, p: p["containers"][0].setdefault("volumeMounts", []).append(
        {"name": "nowhere", "mountPath": "/x"}),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_kubernetes_rules_catch(breakage):
    document = manifest("raycluster.yaml")
    template = next(iter(pod_templates(document).values()))
    BREAKAGES[breakage](template["spec"]["containers"][0].setdefault("securityContext", {}), template["spec"])
    assert kubernetes_problems(document), breakage


def auth_problems(document: dict) -> list[str]:
    """Why a manifest's Ray would serve its job API without the token."""
    spec = cluster_spec(document)
    auth = spec.get("authOptions") or {}
    problems = []
    if auth.get("mode") != "token":
        problems.append(f"authOptions.mode is {auth.get('mode')!r}, not 'token'")
    if auth.get("secretName") != RAY_AUTH_SECRET:
        problems.append(f"authOptions.secretName is {auth.get('secretName')!r}, not {RAY_AUTH_SECRET!r}")
    overrides = [*(spec.get("autoscalerOptions") or {}).get("env", []),
                 *(variable for template in pod_templates(document).values()
                   for container in containers(template) for variable in container.get("env", []))]
    for variable in overrides:  # KubeRay only adds RAY_AUTH_MODE where a container does not set it
        if variable["name"] == "RAY_AUTH_MODE" and variable.get("value") != "token":
            problems.append(f"a container sets RAY_AUTH_MODE={variable.get('value')!r}")
        if variable["name"] == "RAY_AUTH_TOKEN" and "value" in variable:
            problems.append("a container holds the Ray token in plain text")
    params = [spec["headGroupSpec"].get("rayStartParams", {}),
              *(group.get("rayStartParams", {}) for group in spec.get("workerGroupSpecs", []))]
    if any("auth" in key for group in params for key in group):
        problems.append("rayStartParams touch authentication")
    return problems


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_token_auth_is_on_everywhere(name):
    """Whoever reaches the dashboard may submit jobs, i.e. run code on every node: never without the token."""
    document = manifest(name)
    assert auth_problems(document) == []
    assert cluster_spec(document)["headGroupSpec"]["rayStartParams"].get("dashboard-host", "0.0.0.0")
    if "clusterSelector" in document["spec"]:  # runs on raycluster.yaml's cluster, checked as its own case
        document["spec"]["clusterSelector"] = {"ray.io/cluster": "some-other-cluster"}
        with pytest.raises(AssertionError):
            cluster_spec(document)
        return
    for breakage in ("disabled", "missing", "env", "plain"):
        broken = manifest(name)
        spec = cluster_spec(broken)
        if breakage == "disabled":
            spec["authOptions"]["mode"] = "disabled"
        elif breakage == "missing":
            del spec["authOptions"]
        else:
            container = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
            container.setdefault("env", []).append(
                {"name": "RAY_AUTH_MODE", "value": "disabled"} if breakage == "env"
                else {"name": "RAY_AUTH_TOKEN", "value": "hunter2"})
        assert auth_problems(broken), breakage


@pytest.mark.parametrize("name", JOBS)
def test_the_rayjob_submitter_is_authenticated(name):
    submitter = manifest(name)["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    env = {variable["name"]: variable for variable in submitter["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": RAY_AUTH_SECRET, "key": "auth_token"}


def test_only_the_qpu_gateway_pod_holds_the_ibm_token():
    """The IBM token Secret is mounted by the qpu-gateway group alone, where the gateway actor is pinned."""
    holders = {f"{name}{where}": template for name in MANIFESTS
               for where, template in pod_templates(manifest(name)).items() if IBM_SECRET in secrets_named(template)}
    assert list(holders) == ["raycluster.yaml.spec.workerGroupSpecs[qpu-gateway].template"]
    for name in MANIFESTS:  # and no other Secret but the Ray token's anywhere else
        for where, template in pod_templates(manifest(name)).items():
            assert secrets_named(template) <= {RAY_AUTH_SECRET, IBM_SECRET}, (name, where)
    gateway = next(iter(holders.values()))
    volume = next(volume for volume in gateway["spec"]["volumes"] if IBM_SECRET in secrets_named(volume))
    mount = next(mount for container in containers(gateway) for mount in container.get("volumeMounts", [])
                 if mount["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}" == IBM_TOKEN_FILE
    assert not any(variable.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == IBM_SECRET
                   for container in containers(gateway) for variable in container.get("env", []))
    group = next(group for group in manifest("raycluster.yaml")["spec"]["workerGroupSpecs"]
                 if group["groupName"] == "qpu-gateway")
    assert group["resources"] == {"qpu_gateway": "1"} and group["rayStartParams"]["num-cpus"] == "0"
    assert group["maxReplicas"] == 1
    assert gateway["spec"]["securityContext"]["runAsNonRoot"] is True
    # The check itself: the Secret anywhere else is caught.
    broken = manifest("raycluster.yaml")
    verifier = next(group for group in broken["spec"]["workerGroupSpecs"] if group["groupName"] == "verifier")
    verifier["template"]["spec"]["containers"][0]["env"] = [
        {"name": "QVR_IBM_TOKEN", "valueFrom": {"secretKeyRef": {"name": IBM_SECRET, "key": "token"}}}]
    assert sum(IBM_SECRET in secrets_named(template) for template in pod_templates(broken).values()) == 2


def test_the_gateway_actor_is_pinned_where_the_config_says(monkeypatch):
    import ray

    from actors.verify.qpu.config import QpuConfig
    from actors.verify.qpu.gateway import GATEWAY_NAME, get_gateway

    seen = []

    class Actor:
        def options(self, **options):
            seen.append(options)
            return self

        def remote(self, config):
            return config

    monkeypatch.setattr(ray, "remote", lambda **kwargs: lambda cls: Actor())
    assert get_gateway(QpuConfig(resource="qpu_gateway"))["resource"] == "qpu_gateway"
    assert seen[-1]["resources"] == {"qpu_gateway": 1} and seen[-1]["name"] == GATEWAY_NAME
    get_gateway(QpuConfig())
    assert "resources" not in seen[-1]


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_pods_get_least_privilege(name):
    """The verifier container gets exactly what its sandbox needs; every other container runs as a
    non-root user with no capability and no privilege escalation."""
    document = manifest(name)
    for where, template in pod_templates(document).items():
        pod_context = template["spec"].get("securityContext", {})
        for container in containers(template):
            context = container.get("securityContext", {})
            if container["image"].startswith("qvr-verifier") and ".workerGroupSpecs[verifier]" in where:
                assert context == VERIFIER_SECURITY, where
                continue
            assert pod_context.get("runAsNonRoot") is True and pod_context.get("runAsUser") == 1000, where
            assert context == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}, where
        if "headGroupSpec" not in where:  # the head only: its autoscaler talks to the API
            assert template["spec"].get("automountServiceAccountToken") is False, where
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, where


@needs_crds
def test_verifier_group_advertises_the_verifier_resource():
    cluster = manifest("raycluster.yaml")
    groups = {group["groupName"]: group for group in cluster["spec"]["workerGroupSpecs"]}
    assert "verifier" in groups["verifier"]["resources"]
    assert groups["verifier"]["minReplicas"] < groups["verifier"]["maxReplicas"]
    assert cluster["spec"]["enableInTreeAutoscaling"] is True


def launcher_auth_problems(config: dict) -> list[str]:
    problems = []
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for command in config.get(key, []):
            if "ray start" in command and "RAY_AUTH_MODE=token" not in command:
                problems.append(f"{key}: {command!r} starts Ray without RAY_AUTH_MODE=token")
            if re.search(r"dashboard-host[= ]0\.0\.0\.0", command):
                problems.append(f"{key}: the dashboard listens on every interface")
    if not any("ray start" in command for command in config.get("worker_start_ray_commands", [])):
        problems.append("no worker start command: Ray's defaults start workers without the token")
    if config.get("file_mounts", {}).get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("the token file is not copied to the nodes")
    return problems


def test_cluster_launcher_keeps_auth_on():
    config = yaml.safe_load((ROOT / "platform" / "cluster.yaml").read_text())
    assert launcher_auth_problems(config) == []
    assert any("ray start --head" in command for command in config["head_start_ray_commands"])
    broken = yaml.safe_load((ROOT / "platform" / "cluster.yaml").read_text())
    broken["worker_start_ray_commands"] = [command.replace("RAY_AUTH_MODE=token ", "")
                                           for command in broken["worker_start_ray_commands"]]
    assert launcher_auth_problems(broken)
    assert config["available_node_types"]["qpu_gateway"]["resources"] == {"CPU": 0, "qpu_gateway": 1}


def test_readme_submits_with_the_token():
    """The README's `ray job submit` command carries the token and the runtime env it is tested with."""
    section = (ROOT / "README.md").read_text().split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    command = section.split("```bash", 1)[1].split("```", 1)[0]
    assert "RAY_AUTH_MODE=token" in command and "RAY_AUTH_TOKEN" in command
    assert "ray job submit" in command and "--runtime-env platform/runtime_env.yaml" in command
    assert "python -m pipelines" in command


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


def test_the_recipe_rayjob_runs_the_recipe_preset_whose_stages_resolve():
    """The recipe's RayJob submits `qvr recipe` with a preset whose every stage (job, preset, plain
    overrides) resolves, and whose stages chain by their outputs."""
    import shlex

    from pipelines import recipe
    from pipelines.config import resolve_config

    command = shlex.split(manifest("rayjob-recipe.yaml")["spec"]["entrypoint"])
    assert command[:4] == ["python", "-m", "pipelines", "recipe"]
    preset = command[command.index("--config") + 1]
    config = resolve_config(recipe.Config, ROOT / preset, [arg for arg in command[5:] if "=" in arg])
    recipe.check(config)
    assert [stage.job for stage in config.stages.values()] == ["synth", "sft", "pairs", "dpo", "grpo", "grpo", "eval"]
    models = [override for override in config.stages["eval"].overrides if override.startswith("models.")]
    assert {model.split("=")[0] for model in models} == {"models.base", "models.sft", "models.dpo", "models.sft_grpo",
                                                         "models.dpo_grpo"}  # the paper's table 2, side by side
