"""One verification job, how the subprocess baseline runs it, and how any outcome becomes a Verdict.

An *outcome* is what an executor reports: ``{"status": ok|timeout|killed|error, "record": the
harness's result record or None, "stderr_tail", "stdout_tail", "reason"?}``, and from the forked
executor the parent's QPU figures (``qpu_s``; ``over_budget``: the gateway refused a submission,
actors/verify/qpu/budget.py). The forked executor
(actors/verify/zygote.py) and the subprocess baseline here report the same shape, so that
scoring is one function for all of them.

The subprocess baseline: a fresh ``python -I`` per job with an environment built from scratch, a
private temporary working directory removed afterwards, its own session (the whole group is
killed at the end), RLIMIT_FSIZE and a wall-clock timeout. No namespaces, no seccomp: it exists
to be measured against.
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
from typing import Any

from actors.contracts import Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.noise.provenance import read_provenance
from actors.verify.rewards.config import score
from actors.verify.rewards.measures import take as take_parent_measures
from actors.verify.rewards.registry import RewardInput
from actors.verify.sandbox.harness import RESULT_FD_ENV, count_tests
from actors.verify.sandbox.measures.registry import trusted as trusted_measures
from actors.verify.sandbox.zygote import child_environment

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
# -I: no PYTHON* variables, no user site, no cwd on sys.path; the project root is added by hand
# so that the harness imports the same way under `ray job submit` (working_dir) as from a checkout.


def boot_code(module: str) -> str:
    """``python -I -c`` code that runs ``module.main()`` of this project in a fresh interpreter."""
    return f"import sys; sys.path.insert(0, {_PROJECT_ROOT!r}); from {module} import main; main()"



@dataclass
class VerificationJob:
    task: Task
    code: str | None
    """What runs: the extracted code (QHE: the prompt's continuation). None = no code found."""
    sample_idx: int = 0
    text: str | None = None
    """The raw completion, for rewards that judge its form; defaults to ``code``."""
    context: Any = None
    """The caller's own, opaque to the pool: :meth:`VerifierPool.pairs` hands each job back with its
    verdict, context and all (it never goes to a worker)."""
    qpu_step: int | None = None
    """The training step whose QPU budget (``verifier.qpu.budget_per_step_s``) the job's QPU
    seconds count against, besides its run's; None: its run's alone."""
    runs_at_least: int = 1
    """Runs the job takes at least where its runs are draws (actors/verify/noise): k of the
    flaky-reference check, set on a stochastic task's reference at calibration."""

    def payload(self, timeout_s: float, isolation: str = "shared", qpu: bool = False,
                measure_requests: dict[str, Any] | None = None, qpu_tier: str = "qpu",
                qpu_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """``measure_requests``: the checker's measure providers to run (sandbox/measures), hidden
        with the tests. ``qpu_tier``: where a QPU job's primitives run, ``qpu`` (the gateway) or a
        simulator tier (``ideal``, ``noisy``: in the sandbox, served as ``qpu_info`` says the
        gateway serves them); the parent's choice, in the control frame (actors/verify/verifier.py)."""
        task = self.task
        return {"harness": task.harness, "prompt": task.prompt, "completion": self.code, "tests": task.tests,
                "entry_point": task.entry_point, "timeout_s": timeout_s, "isolation": isolation, "qpu": qpu,
                "measure_requests": measure_requests or {},
                **({"qpu_tier": qpu_tier, "qpu_info": qpu_info or {}} if qpu else {})}


MAX_OUTCOMES, MAX_MEASURES = 10_000, 64
"""Per-test outcomes and measures kept in a verdict (a record may hold more; the counts stay exact)."""
OUTCOMES = ("passed", "failed", "error", "skipped")


def read_record(record: Any, tests_total: int) -> tuple[int, int, dict[str, str], dict[str, float], list[str]] | None:
    """(passed, total, outcomes, measures, notes) from a result record, or None when it is not
    one: the record crosses from a child, so every field is checked, never trusted."""
    import math

    if not isinstance(record, dict):
        return None
    try:
        passed = int(record.get("tests_passed", 0))
        total = int(record.get("tests_total") or tests_total)
    except (TypeError, ValueError, OverflowError):
        return None
    outcomes = record.get("outcomes") or {}
    measures = record.get("measures") or {}
    if not (0 <= passed <= total and isinstance(outcomes, dict) and isinstance(measures, dict)):
        return None
    outcomes = {str(name)[:300]: str(value) for name, value in list(outcomes.items())[:MAX_OUTCOMES]
                if value in OUTCOMES}
    checked: dict[str, float] = {}
    for name, value in list(measures.items())[:MAX_MEASURES]:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            checked[str(name)[:100]] = float(value)
    notes = [str(record[key]) for key in ("failures", "error") if record.get(key)]
    return passed, total, outcomes, checked, notes


def make_verdict(job: VerificationJob, outcome: dict[str, Any], config: VerifierConfig,
                 duration_s: float, tier: str = "") -> Verdict:
    """``tier``: the QPU tier the outcome comes from, the parent's own word (``Verdict.tier``)."""
    task = job.task
    tests_total = count_tests(task.harness, task.tests)
    passed, outcomes, measures = 0, {}, {}
    notes = [outcome.get("stderr_tail") or ""]
    status = {"timeout": "timeout", "killed": "killed", "error": "error"}.get(outcome["status"], "failed")
    if outcome["status"] == "ok":
        read = read_record(outcome.get("record"), tests_total)
        if read is None:
            what = "no result record" if outcome.get("record") is None else "an unreadable result record"
            notes.append(f"{what} (exit code {outcome.get('exit_code')}, signal {outcome.get('signal')})")
        else:
            passed, tests_total, outcomes, measures, more = read
            notes += more
            status = "passed" if passed == tests_total and not outcome["record"].get("error") else "failed"
    if outcome.get("reason"):
        notes.append(f"reason: {outcome['reason']}")
    if outcome.get("over_budget"):  # the parent's record of the gateway's refusal, never the sandbox's words
        status = "over_budget"
        notes.append(f"not run to its end: {outcome['over_budget']}")
    measures = trusted_measures(measures, outcome.get("isolation", "shared"))
    measures = take_parent_measures(measures, task, job.code, config.rewards)  # the parent's own (deprecation)
    reward, parts = score(config.rewards, RewardInput(
        text=job.text if job.text is not None else job.code or "", code=job.code, family=task.family, status=status,
        tests_passed=passed, tests_total=tests_total, outcomes=outcomes, measures=measures))
    return Verdict(task_id=task.task_id, sample_idx=job.sample_idx, status=status, tests_passed=passed,
                   tests_total=tests_total, reward=reward, reward_parts=parts, outcomes=outcomes, measures=measures,
                   isolation=outcome.get("isolation", "shared"), qpu_wait_s=float(outcome.get("qpu_wait_s", 0.0)),
                   qpu_s=float(outcome.get("qpu_s", 0.0)), duration_s=duration_s, tier=tier,
                   provenance=read_provenance(outcome.get("record")) if outcome["status"] == "ok" else {},
                   stderr_tail="\n".join(note for note in notes if note)[-config.sandbox.max_output_bytes:])


def no_code_verdict(job: VerificationJob, config: VerifierConfig) -> Verdict:
    return make_verdict(job, {"status": "error", "reason": "no code"}, config, 0.0)


def _tail(path: str, limit: int) -> str:
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - limit))
        return stream.read().decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_subprocess(job: VerificationJob, config: VerifierConfig) -> dict[str, Any]:
    """The outcome of one job in a fresh interpreter."""
    payload = json.dumps(job.payload(config.timeout_s))
    workdir = tempfile.mkdtemp(prefix="qvr-verify-")
    read_end, write_end = os.pipe()
    env = child_environment(workdir)
    env[RESULT_FD_ENV] = str(write_end)
    stderr_path = os.path.join(workdir, ".stderr")
    max_file = config.sandbox.max_file_mb * 1024 * 1024

    def limit_child() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file, max_file))

    status = "ok"
    try:
        with open(stderr_path, "wb") as stderr_file:
            child = subprocess.Popen(
                [config.python or sys.executable, "-I", "-c", boot_code("actors.verify.sandbox.harness")],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr_file, cwd=workdir, env=env,
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
        record = _parse_record(reader.result()) if status == "ok" else None
        if status == "ok" and record is None and child.returncode < 0:
            status = "killed"
        return {"status": status, "record": record, "stderr_tail": _tail(stderr_path, config.sandbox.max_output_bytes),
                "exit_code": child.returncode if child.returncode >= 0 else None,
                "signal": -child.returncode if child.returncode < 0 else None}
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)
        shutil.rmtree(workdir, ignore_errors=True)


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


def timed(fn, *args) -> tuple[Any, float]:  # noqa: ANN001 - tiny helper
    started = time.monotonic()
    return fn(*args), time.monotonic() - started
