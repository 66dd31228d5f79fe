"""Where the kernel lacks an isolation feature, the verifier says which and refuses, unless told otherwise."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# A parent that may not create namespaces or mount (our own seccomp filter): its zygotes inherit that.
SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
from actors.verify.sandbox.isolation import install_seccomp
install_seccomp()
from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.forkserver import SandboxUnavailable
from actors.verify.verifier import Verifier
allow = sys.argv[1] == "allow"
try:
    with Verifier(VerifierConfig(sandbox={"allow_weaker_isolation": allow}), slots=1) as verifier:
        task = Task(task_id="t", family="f", harness="program", prompt="", tests="")
        print("FEATURES", verifier.features)
        print("STATUS", verifier.verify_one(VerificationJob(task, "assert 1 + 1 == 2")).status)
except SandboxUnavailable as error:
    print("REFUSED", error)
"""


def run(mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_missing_features_are_named_and_refused():
    out = run("refuse")
    assert "REFUSED" in out and "user_namespace" in out and "mount_namespace" in out
    assert "allow_weaker_isolation" in out
    # ... and where a cluster grants what is missing (the manifest field to change).
    assert "securityContext in platform/kuberay/raycluster.yaml" in out and "SYS_ADMIN" in out


def test_weaker_isolation_when_allowed_says_so_once():
    out = run("allow")
    assert "STATUS passed" in out
    assert out.count("weaker isolation") == 1
    features = out.split("FEATURES", 1)[1].splitlines()[0]
    assert "user_namespace" not in features and "seccomp" in features
