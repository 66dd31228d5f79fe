"""The parent's handle on one zygote (one CPU slot): start it, send jobs, respawn it if it dies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.verify.config import VerifierConfig
from actors.verify.executor import boot_code
from actors.verify.qpu.budget import QpuUse
from actors.verify.sandbox.frames import read_frame, read_raw, write_frame
from actors.verify.sandbox.hugepages import MALLOC_TUNABLE
from actors.verify.sandbox.isolation import FEATURES
from actors.verify.sandbox.zygote import child_environment

log = logging.getLogger("qvr.verify")
_warned: set[str] = set()
_warn_lock = threading.Lock()


class SandboxUnavailable(RuntimeError):
    """The kernel lacks an isolation feature and the config does not allow weaker isolation."""


class ForkServer:
    """One zygote. ``mode`` is ``forked`` (isolated child per job), or for benchmarks ``inprocess``
    (no fork) or ``bare`` (a plain fork per job, no isolation)."""

    START_TIMEOUT_S = 180.0

    def __init__(self, config: VerifierConfig, slot: int = 0, mode: str = "forked",
                 qpu_handler: Any = None, clone_slots: Sequence[int] = (), channel: tuple[int, int] | None = None) -> None:
        """``clone_slots``: other slots whose zygotes this one's forks once it is warm (one warm-up for
        all: actors/verify/sandbox/clones.py); their handles are in ``clones``. ``channel``: this is
        such a clone, already forked; its (requests, replies) fds."""
        self.config, self.slot, self.mode = config, slot, mode
        self.qpu_handler = qpu_handler
        self.process: subprocess.Popen | None = None
        self.clone_pid: int | None = None
        """A clone's zygote: its pid (a child of the first slot's zygote, not of this process)."""
        self.clones: list[ForkServer] = []
        self.features: list[str] = []
        self.can_split = False
        """Whether this zygote can run split verifications (it makes a PID namespace per child)."""
        self.restarts = -1
        if channel is None:
            self._start(clone_slots)
        else:
            self.restarts, (self._requests, self._replies) = 0, channel
            self._handshake()

    def _start(self, clone_slots: Sequence[int] = ()) -> None:
        self.restarts += 1
        self.clone_pid = None
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        # Per clone: (slot, its requests read end, write end, its replies read end, write end).
        channels = [(slot, *os.pipe(), *os.pipe()) for slot in clone_slots]
        theirs = [requests_r, replies_w, *(fd for _, read, _, _, write in channels for fd in (read, write))]
        sandbox = self.config.sandbox.model_dump()
        if self.config.qpu.token_file:  # the token file is the gateway's, never the sandbox's
            sandbox["hidden_paths"] = [*sandbox["hidden_paths"], self.config.qpu.token_file]
        settings = {"slot": self.slot, "mode": self.mode, "sandbox": sandbox,
                    "huge_pages": self.config.huge_pages,
                    "warm_backends": self.config.warm_backends,
                    "clones": [[slot, read, write] for slot, read, _, _, write in channels]}
        env = child_environment(os.environ.get("TMPDIR", "/tmp"))
        if self.config.huge_pages:
            env["GLIBC_TUNABLES"] = MALLOC_TUNABLE
        # One thread for every numerical library, before they load: forked children inherit it.
        self.process = subprocess.Popen(
            [self.config.python or sys.executable, "-I", "-c", boot_code("actors.verify.sandbox.zygote"),
             json.dumps(settings), str(requests_r), str(replies_w)],
            pass_fds=theirs, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True)
        for fd in theirs:
            os.close(fd)
        self._requests, self._replies = requests_w, replies_r
        handed: set[int] = set()  # a clone's handle owns its fds from its start, and closes them on failure
        try:
            self._handshake()
            for slot, _, requests, replies, _ in channels:
                handed |= {requests, replies}
                self.clones.append(ForkServer(self.config, slot, self.mode, self.qpu_handler, channel=(requests, replies)))
        except BaseException:
            for server in self.clones:
                server.close()
            for _, _, requests, replies, _ in channels:
                for fd in {requests, replies} - handed:
                    os.close(fd)
            self.clones = []
            self.close()
            raise

    def _handshake(self) -> None:
        """Wait for the zygote's ready frame, then agree on the isolation features."""
        try:
            ready = read_frame(self._replies, self.START_TIMEOUT_S)
        except TimeoutError:
            ready = None
        if not ready or not ready.get("ready"):
            exit_status = self.process.poll() if self.process else None
            self.close()
            raise RuntimeError(f"zygote for slot {self.slot} did not start (exit {exit_status})")
        if self.process is None:
            self.clone_pid = int(ready["pid"])
        self.huge_mb = int(ready.get("huge_mb", 0))
        """MiB of the zygote's memory folded into huge pages (see actors/verify/sandbox/hugepages.py)."""
        self.features = self._agree_on_features(ready.get("probe", {}))

    def _agree_on_features(self, probe: dict[str, str | None]) -> list[str]:
        if self.mode != "forked":
            return []
        split_needs = {"user_namespace", "mount_namespace", "pid_namespace"}
        missing = {name: error for name, error in probe.items() if error is not None}
        if missing:
            detail = "; ".join(f"{name} ({error})" for name, error in sorted(missing.items()))
            if not self.config.sandbox.allow_weaker_isolation:
                self.close()
                raise SandboxUnavailable(
                    f"this kernel lacks sandbox features: {detail}. In a container, grant what the sandbox "
                    "needs: on KubeRay, the verifier group's container securityContext in "
                    "platform/kuberay/raycluster.yaml (capabilities SYS_ADMIN, SETUID, SETGID, KILL; seccompProfile "
                    "and appArmorProfile Unconfined); with `ray up`, the verifier node's docker worker_run_options "
                    "in platform/cluster.yaml. Or set verifier.sandbox.allow_weaker_isolation=true "
                    "to verify with weaker isolation anyway.")
            with _warn_lock:
                if detail not in _warned:
                    _warned.add(detail)
                    log.warning("verifying with weaker isolation: missing %s", detail)
        features = [name for name in FEATURES if name not in missing]
        if split_needs & missing.keys() and self.config.isolation == "split" and not self.config.sandbox.allow_weaker_isolation:
            self.close()
            raise SandboxUnavailable("verifier.isolation=split needs user, mount and PID namespaces")
        write_frame(self._requests, {"features": features})
        agreed = read_frame(self._replies, 30)
        self.can_split = bool(agreed.get("can_split"))
        return agreed["features"]

    def run(self, job: dict[str, Any], qpu_step: int | None = None) -> dict[str, Any]:
        """One job's outcome. A zygote that dies is respawned; the job is then reported as an error.
        The outcome carries what the QPU gateway answered the job, as this process saw it (``qpu_s``,
        and ``over_budget`` when the budget refused it: see actors/verify/qpu/budget.py); its QPU
        seconds count against ``qpu_step``'s budget too."""
        qpu = QpuUse()
        return qpu.outcome(self._run(job, qpu_step, qpu))

    def _run(self, job: dict[str, Any], qpu_step: int | None, qpu: QpuUse) -> dict[str, Any]:
        outcome, reason = None, "zygote exited"
        try:
            self._send(job)
            header = read_frame(self._replies, job["timeout_s"] + 60)
            while isinstance(header, dict) and "qpu_request" in header:
                if job.get("qpu_tier", "qpu") != "qpu":  # a simulator tier has no channel; were one used, nothing goes on
                    answer = {"error": f"no QPU in the {job['qpu_tier']} tier"}
                else:
                    answer = self._answer_qpu(header["qpu_request"], qpu_step, qpu)
                write_frame(self._requests, {"qpu_response": answer})
                header = read_frame(self._replies, job["timeout_s"] + 60)
            if isinstance(header, dict):
                parts = {name: read_raw(self._replies, 30) for name in header.get("parts", [])}
                if None not in parts.values():
                    outcome = interpret(header, parts)
        except (OSError, TimeoutError, ValueError) as error:
            outcome, reason = None, f"{type(error).__name__}: {error}"
        if outcome is None:
            log.warning("zygote of slot %d failed (%s); respawning", self.slot, reason)
            self.close()
            self._start()
            return {"status": "error", "reason": f"zygote failed: {reason}"}
        return outcome

    def _send(self, job: dict[str, Any]) -> None:
        """The job as the zygote takes it: what it needs to run the job as a plain frame, then the
        content and the hidden part (the tests, and the checker's measure requests, which may
        hold the reference solution) as two frames it never decodes (see frames.Sealed)."""
        content, hidden = ("prompt", "completion", "entry_point"), ("tests", "measure_requests")
        write_frame(self._requests, {key: value for key, value in job.items() if key not in (*content, *hidden)})
        write_frame(self._requests, {key: job[key] for key in content})
        write_frame(self._requests, {key: job.get(key) for key in hidden})

    def _answer_qpu(self, request: dict[str, Any], step: int | None, qpu: QpuUse) -> dict[str, Any]:
        """The gateway's answer for the sandbox; what it billed and whether it refused, into ``qpu``."""
        if self.qpu_handler is None:
            return {"error": "no QPU gateway here (verify through Ray with verifier.qpu enabled)"}
        try:
            answer = self.qpu_handler(request, f"{os.getpid()}-{self.slot}", step)
        except Exception as error:  # noqa: BLE001 - becomes an exception in the sandboxed code
            qpu.failed(error)
            return {"error": f"{type(error).__name__}: {error}"}
        qpu.add(answer)
        return answer

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else self.clone_pid

    def close(self) -> None:
        for fd in (getattr(self, "_requests", -1), getattr(self, "_replies", -1)):
            try:
                os.close(fd)
            except OSError:
                pass
        self._requests = self._replies = -1
        if self.process and self.process.poll() is None:
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        elif self.process is None and self.clone_pid is not None:
            _end_clone(self.clone_pid)
            self.clone_pid = None


def _ended(pid: int) -> bool:
    """Whether process ``pid`` has exited (gone, or a zombie its parent has not reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _end_clone(pid: int, grace_s: float = 5.0) -> None:
    """A clone's zygote ends by itself once its requests channel closes; it is not this process's
    child, so it is watched through /proc, and its session is killed after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    while not _ended(pid):
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, 9)
            except ProcessLookupError:
                pass
            return
        time.sleep(0.01)


def interpret(header: dict[str, Any], parts: dict[str, bytes]) -> dict[str, Any]:
    """A zygote's report of one job as an outcome (actors/verify/executor.py): the record and the
    output tails, which the zygote held as raw bytes, are decoded here, on the driver's side.
    ``header``: status (ok | timeout | error), the main child's wait status, the solution
    child's signal (split), isolation, QPU wait, whether the record overflowed."""
    status = header.get("status", "error")
    if status == "error":
        return {"status": "error", "reason": header.get("reason") or "sandbox error", "record": None,
                "stdout_tail": "", "stderr_tail": "", "isolation": header.get("isolation", "shared")}
    exit_status = header.get("exit_status")
    text = {name: data.decode("utf-8", "replace") for name, data in parts.items() if name != "result"}
    record = None
    if parts.get("result") and status == "ok" and not header.get("record_overflow"):
        try:
            record = json.loads(parts["result"])
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            record = None
    killed_by = os.WTERMSIG(exit_status) if exit_status is not None and os.WIFSIGNALED(exit_status) else None
    if status == "ok" and record is None and killed_by is not None:
        status = "killed"
    reason = f"result record over {len(parts.get('result', b''))} bytes" if header.get("record_overflow") else None
    if isinstance(record, dict) and "sandbox_error" in record:
        status, reason, record = "error", str(record["sandbox_error"]), None
    elif isinstance(record, dict) and record.get("reason"):
        reason = str(record["reason"])
        # A split verdict says what happened to the candidate as a shared one would.
        if "never answered" in reason:
            status = "timeout"
        elif header.get("solution_signal") is not None and "solution child" in reason:
            status, killed_by = "killed", header["solution_signal"]
    stderr_tail = text.get("stderr", "")
    if "solution.stderr" in text:
        stderr_tail = f"{text['solution.stderr']}\n{stderr_tail}".strip()
    return {"status": status, "reason": reason, "record": record if isinstance(record, dict) else None,
            "stdout_tail": text.get("stdout", ""), "stderr_tail": stderr_tail, "signal": killed_by,
            "exit_code": os.WEXITSTATUS(exit_status) if exit_status is not None and os.WIFEXITED(exit_status) else None,
            "isolation": header.get("isolation", "shared"), "qpu_wait_s": float(header.get("qpu_wait_s", 0.0))}
