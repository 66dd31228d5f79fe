"""Run one verification in a fresh Python subprocess.

The child gets a clean environment (no variable of the parent's leaks in: no tokens, no
credentials), a private temporary working directory that is removed afterwards, its own session
(so the whole process group is killed at the end), RLIMIT_FSIZE against disk floods, and a
wall-clock timeout enforced here, in the parent. Stronger isolation (namespaces, seccomp) and the
fork-server belong to the sandboxed executors.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from actors.contracts import Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.harness import RESULT_FD_ENV, count_tests

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
# -I: no PYTHON* variables, no user site, no cwd on sys.path; the project root is added by hand
# so that the harness imports the same way under `ray job submit` (working_dir) as from a checkout.
_CHILD_BOOT = f"import sys; sys.path.insert(0, {_PROJECT_ROOT!r}); from actors.verify.harness import main; main()"


@dataclass
class VerificationJob:
    task: Task
    completion: str
    sample_idx: int = 0


def child_environment(workdir: str) -> dict[str, str]:
    """The whole environment of a child: built from scratch, nothing inherited."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "RAYON_NUM_THREADS": "1",
        "QISKIT_IN_PARALLEL": "TRUE",
        "QISKIT_SETTINGS": os.path.join(workdir, "qiskit-settings.conf"),
    }


def _tail(path: str, limit: int) -> str:
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(max(0, size - limit))
        return stream.read().decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_subprocess(job: VerificationJob, config: VerifierConfig) -> Verdict:
    """Verify one completion in a fresh interpreter and return its Verdict (never raises on bad code)."""
    task = job.task
    started = time.monotonic()
    tests_total = count_tests(task.harness, task.tests)
    payload = json.dumps({"harness": task.harness, "prompt": task.prompt, "completion": job.completion,
                          "tests": task.tests, "entry_point": task.entry_point})
    workdir = tempfile.mkdtemp(prefix="qvr-verify-")
    read_end, write_end = os.pipe()
    env = child_environment(workdir)
    env[RESULT_FD_ENV] = str(write_end)
    stderr_path = os.path.join(workdir, ".stderr")

    def limit_child() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (config.max_file_bytes, config.max_file_bytes))

    status, record = "error", None
    try:
        with open(stderr_path, "wb") as stderr_file, open(os.devnull, "wb") as devnull:
            child = subprocess.Popen(
                [config.python or sys.executable, "-I", "-c", _CHILD_BOOT],
                stdin=subprocess.PIPE, stdout=devnull, stderr=stderr_file, cwd=workdir, env=env,
                pass_fds=(write_end,), start_new_session=True, preexec_fn=limit_child,
            )
            os.close(write_end)
            write_end = -1
            reader = _ChannelReader(read_end)
            try:
                child.communicate(payload.encode(), timeout=config.timeout_s)
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                _kill_group(child.pid)
                child.wait()
        raw = reader.result()
        if status != "timeout":
            record = _parse_record(raw)
            if record is None:
                status = "killed" if child.returncode < 0 else "failed"
        stderr_tail = _tail(stderr_path, config.max_output_bytes)
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
        shutil.rmtree(workdir, ignore_errors=True)

    passed = 0
    if record is not None:
        passed = int(record.get("tests_passed", 0))
        tests_total = int(record.get("tests_total", tests_total)) or tests_total
        status = "passed" if passed == tests_total and not record.get("error") else "failed"
        notes = "\n".join(str(record[key]) for key in ("failures", "error") if record.get(key))
        if notes:
            stderr_tail = (stderr_tail + "\n" + notes)[-config.max_output_bytes:]
    elif status == "failed":
        stderr_tail = (stderr_tail + f"\nno result record (exit code {child.returncode})")[-config.max_output_bytes:]
    fraction = passed / tests_total if tests_total else 0.0
    return Verdict(
        task_id=task.task_id, sample_idx=job.sample_idx, status=status,
        tests_passed=passed, tests_total=tests_total, reward=fraction,
        reward_parts={"verification": fraction}, isolation="shared",
        duration_s=time.monotonic() - started, stderr_tail=stderr_tail,
    )


class _ChannelReader:
    """Drains the result channel while the child runs, so a large record cannot block the child."""

    LIMIT = 4 * 1024 * 1024

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        size = 0
        while size <= self.LIMIT:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._chunks.append(chunk)
            size += len(chunk)

    def result(self, wait_s: float = 2.0) -> bytes:
        """What arrived; a descendant that escaped the kill and still holds the channel cannot stall us."""
        self._thread.join(wait_s)
        raw = b"".join(self._chunks)
        return b"" if len(raw) > self.LIMIT else raw


def _parse_record(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None
