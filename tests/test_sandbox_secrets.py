"""The IBM token never reaches a sandbox: not the file `verifier.qpu.token_file` names (covered in the
file view wherever it lies inside a shown folder), not `QVR_IBM_TOKEN` from the verifier's own
environment (a child's environment is built from scratch). Through a real Verifier."""

import os
import sys
import uuid
from pathlib import Path

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier

pytestmark = pytest.mark.slow

SECRET = f"ibm-token-{uuid.uuid4().hex}"

CANDIDATE = """
import os, sys
def read(path):
    try:
        with open(path, 'rb') as stream:
            return stream.read().decode(errors='replace')
    except OSError as error:
        return '<' + type(error).__name__ + '>'
print('FILE=' + read({path!r}), file=sys.stderr)
print('ENV=' + repr(os.environ.get('QVR_IBM_TOKEN')), file=sys.stderr)
print('ENVIRON=' + read('/proc/self/environ').replace('\\0', ' '), file=sys.stderr)
"""

# Folders the sandbox shows read-only, where only the cover can hide a file (a file anywhere else
# is outside the allow-list anyway): the base interpreter's prefix, and the venv's (in a checkout).
SHOWN = {"base-prefix": Path(sys.base_prefix), "venv": Path(sys.prefix)}


def what_a_candidate_sees(path: Path, **qpu) -> str:
    task = Task(task_id="t", family="f", harness="program", prompt="", tests="")
    with Verifier(VerifierConfig(qpu=qpu, qpu_gateway=False), slots=1) as verifier:
        verdict = verifier.verify_one(VerificationJob(task, CANDIDATE.format(path=str(path))))
    assert verdict.status == "passed", verdict.stderr_tail
    return verdict.stderr_tail


def test_the_token_variable_never_reaches_a_child(monkeypatch, tmp_path):
    monkeypatch.setenv("QVR_IBM_TOKEN", SECRET)
    seen = what_a_candidate_sees(tmp_path / "nothing")
    assert "ENV=None" in seen and SECRET not in seen, seen


@pytest.mark.parametrize("where", [
    "base-prefix",
    "venv",
])
def test_the_token_file_is_covered(where):
    folder = SHOWN[where]
    if not os.access(folder, os.W_OK):
        pytest.skip(f"cannot write a token file into {folder}")
    path = folder / f".qvr-test-ibm-token-{uuid.uuid4().hex}"
    path.write_text(SECRET)
    try:
        seen = what_a_candidate_sees(path, token_file=str(path))
        # The check itself: the same file, not named as the token file, is readable in the sandbox.
        control = what_a_candidate_sees(path)
    finally:
        path.unlink(missing_ok=True)
    assert f"FILE={SECRET}" in control, control
    assert SECRET not in seen, seen
    assert "FILE=\n" in seen or "FILE=<" in seen, seen  # an empty file stands in, or nothing is there
