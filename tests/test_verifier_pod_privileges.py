"""The verifier pods' capabilities (platform/kuberay/raycluster.yaml) are what the sandbox needs.

A real Verifier runs as root with exactly the manifest's capability set: `setpriv` drops every other
capability from the bounding set, as a container runtime does for `capabilities: {drop: [ALL],
add: [...]}`. With that set, split verification works and a timed-out job (and the process it
forked) is killed; without SYS_ADMIN the verifier refuses and names the manifest field. (Seccomp
and AppArmor profiles are not emulated here: the manifest sets both Unconfined.)"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

CAP_SYS_ADMIN = 21


def _has_sys_admin() -> bool:
    for line in open("/proc/self/status"):
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1)
    return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not _has_sys_admin(),
                       reason="needs root with SYS_ADMIN and util-linux's setpriv"),
]

SCRIPT = """
import sys, time
from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.forkserver import SandboxUnavailable
from actors.verify.verifier import Verifier
tests = "import unittest\\nclass T(unittest.TestCase):\\n    def test_f(self):\\n        self.assertEqual(f(), 2)\\n"
task = Task(task_id="t", family="f", harness="unittest", prompt="", tests=tests)
try:
    with Verifier(VerifierConfig(isolation="split", timeout_s=3, qpu_gateway=False), slots=1) as verifier:
        print("FEATURES", sorted(verifier.features))
        verdict = verifier.verify_one(VerificationJob(task, "def f():\\n    return 2\\n"))
        print("OK", verdict.status, verdict.isolation)
        started = time.monotonic()
        verdict = verifier.verify_one(VerificationJob(task, "import os\\nos.fork()\\nwhile True:\\n    pass\\n"))
        print("HANG", verdict.status, round(time.monotonic() - started, 1))
        print("AFTER", verifier.verify_one(VerificationJob(task, "def f():\\n    return 2\\n")).status)
except SandboxUnavailable as error:
    print("REFUSED", error)
"""


def manifest_capabilities() -> list[str]:
    cluster = yaml.safe_load((ROOT / "platform" / "kuberay" / "raycluster.yaml").read_text())
    group = next(group for group in cluster["spec"]["workerGroupSpecs"] if group["groupName"] == "verifier")
    context = group["template"]["spec"]["containers"][0]["securityContext"]
    assert context["capabilities"]["drop"] == ["ALL"]
    return context["capabilities"]["add"]


def run_with(capabilities: list[str]) -> str:
    bounding = ",".join(["-all", *(f"+{name.lower()}" for name in capabilities)])
    result = subprocess.run(["setpriv", "--bounding-set", bounding, "--", sys.executable, "-c", SCRIPT],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_manifests_capabilities_are_enough():
    out = run_with(manifest_capabilities())
    assert "FEATURES ['mount_namespace', 'net_namespace', 'pid_namespace', 'seccomp', 'user_namespace']" in out, out
    assert "OK passed split" in out, out
    hang = next(line.split() for line in out.splitlines() if line.startswith("HANG"))
    assert hang[1] == "timeout" and float(hang[2]) < 3 + 15, out  # killed at its deadline, not 60 s later
    assert "AFTER passed" in out, out


def test_without_sys_admin_the_verifier_refuses_and_names_the_manifest():
    out = run_with([name for name in manifest_capabilities() if name != "SYS_ADMIN"])
    assert "REFUSED" in out and "mount_namespace" in out, out
    assert "securityContext in platform/kuberay/raycluster.yaml" in out, out
