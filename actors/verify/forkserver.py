"""The parent's handle on one zygote (one CPU slot): start it, send jobs, respawn it if it dies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from typing import Any

from actors.verify.config import VerifierConfig
from actors.verify.executor import boot_code
from actors.verify.isolation import FEATURES
from actors.verify.frames import read_frame, write_frame
from actors.verify.hugepages import MALLOC_TUNABLE
from actors.verify.zygote import child_environment

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
                 qpu_handler: Any = None) -> None:
        self.config, self.slot, self.mode = config, slot, mode
        self.qpu_handler = qpu_handler
        self.process: subprocess.Popen | None = None
        self.features: list[str] = []
        self.can_split = False
        """Whether this zygote can run split verifications (it makes a PID namespace per child)."""
        self.restarts = -1
        self._start()

    def _start(self) -> None:
        self.restarts += 1
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        sandbox = self.config.sandbox.model_dump()
        if self.config.qpu.token_file:  # the token file is the gateway's, never the sandbox's
            sandbox["hidden_paths"] = [*sandbox["hidden_paths"], self.config.qpu.token_file]
        settings = {"slot": self.slot, "mode": self.mode, "sandbox": sandbox,
                    "host_home": os.path.expanduser("~"), "huge_pages": self.config.huge_pages,
                    "warm_backends": self.config.warm_backends}
        env = child_environment(os.environ.get("TMPDIR", "/tmp"))
        if self.config.huge_pages:
            env["GLIBC_TUNABLES"] = MALLOC_TUNABLE
        # One thread for every numerical library, before they load: forked children inherit it.
        self.process = subprocess.Popen(
            [self.config.python or sys.executable, "-I", "-c", boot_code("actors.verify.zygote"), json.dumps(settings), str(requests_r), str(replies_w)],
            pass_fds=(requests_r, replies_w), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True)
        os.close(requests_r)
        os.close(replies_w)
        self._requests, self._replies = requests_w, replies_r
        try:
            ready = read_frame(self._replies, self.START_TIMEOUT_S)
        except TimeoutError:
            ready = None
        if not ready or not ready.get("ready"):
            self.close()
            raise RuntimeError(f"zygote for slot {self.slot} did not start (exit {self.process.poll()})")
        self.huge_mb = int(ready.get("huge_mb", 0))
        """MiB of the zygote's memory folded into huge pages (see actors/verify/hugepages.py)."""
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
                    f"this kernel lacks sandbox features: {detail}. Set verifier.sandbox.allow_weaker_isolation=true "
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

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """One job's outcome. A zygote that dies is respawned; the job is then reported as an error."""
        try:
            write_frame(self._requests, job)
            outcome = read_frame(self._replies, job["timeout_s"] + 60)
            while isinstance(outcome, dict) and "qpu_request" in outcome:
                write_frame(self._requests, {"qpu_response": self._answer_qpu(outcome["qpu_request"])})
                outcome = read_frame(self._replies, job["timeout_s"] + 60)
        except (OSError, TimeoutError, ValueError) as error:
            outcome, reason = None, f"{type(error).__name__}: {error}"
        else:
            reason = "zygote exited"
        if outcome is None:
            log.warning("zygote of slot %d failed (%s); respawning", self.slot, reason)
            self.close()
            self._start()
            return {"status": "error", "reason": f"zygote failed: {reason}"}
        return outcome

    def _answer_qpu(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.qpu_handler is None:
            return {"error": "no QPU gateway here (verify through Ray with verifier.qpu enabled)"}
        try:
            return self.qpu_handler(request, f"{os.getpid()}-{self.slot}")
        except Exception as error:  # noqa: BLE001 - becomes an exception in the sandboxed code
            return {"error": f"{type(error).__name__}: {error}"}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

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
