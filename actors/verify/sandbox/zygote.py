"""The zygote fork-server: a warm Python that forks one isolated child per verification.

Started with a clean environment by :class:`actors.verify.forkserver.ForkServer`, it imports and
warms Qiskit (one transpile, one simulation), freezes its heap (``gc.freeze``) and serves jobs
one at a time over two pipes (length-prefixed JSON frames). Per job:

    zygote ──fork──> supervisor (trusted: it never runs model code)
                       drops to the slot's uid (as root), unshares user/mount/net/IPC/PID
                       namespaces
                       ──fork──> child = PID 1 of the new PID namespace
                                   enters the file view (pivot_root into an allow-list: the
                                   interpreter and its packages, a private tmpfs, its own
                                   /proc; nothing of the project), rlimits, seccomp, runs the harness
                       reads the child's stdout/stderr (tails, capped) and result record,
                       enforces the wall-clock timeout (SIGKILL to the namespace's PID 1
                       kills every process in it), reports one frame to the zygote

A fork from the warm zygote costs milliseconds where a fresh interpreter pays 2-4 s of imports.

What a job is made of never lives in the zygote as Python objects: its code, prompt and hidden
tests arrive as *sealed frames* (actors/verify/sandbox/frames.py), read into buffers that only
the children decode and that the zygote wipes once they are forked. A child that scans its own
memory (copied from the zygote's) therefore finds no earlier job's tests or reference solution,
and the solution child of a split job is forked before its own job's tests are even read.

How the zygote finds the harnesses (and measure providers) without importing anything of the
parent: their registries live in this package (``actors/verify/sandbox/harnesses/``,
``measures/``), and importing a registry runs its package's ``__init__``, whose one import line
lists the harness modules; each registers itself there. The zygote imports the registry itself
(below), :func:`~actors.verify.sandbox.warm.preload` imports the rest of this package, and a family kept outside qvr's packages
names its sandbox module in ``verifier.sandbox.plugins``, which reaches the zygote as data (an
import path) in its settings. Then :func:`~actors.verify.sandbox.warm.warm_up` asks every registered harness to warm what its
checks use (:meth:`Harness.warm <actors.verify.sandbox.harnesses.registry.Harness.warm>`): no
harness is named here, and the import-linter contract keeps the parent's modules out.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

from actors.verify.sandbox.frames import MAX_FRAME, Held, Sealed, Tail, Whole, read_frame, send, write_frame
from actors.verify.sandbox.harness import run_job, write_record
from actors.verify.sandbox.hugepages import collapse_heap
from actors.verify.sandbox.processes import close_all_except, kill_and_reap, kill_tree
from actors.verify.sandbox.view import file_view

SANDBOX_UIDS = 65536  # host uids per verifier host: sandbox_uid_base .. + 65535


# ---------------------------------------------------------------- the warm process


def child_environment(home: str) -> dict[str, str]:
    """The child's whole environment, built from scratch: nothing of the host's, no secret."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "RAYON_NUM_THREADS": "1", "QISKIT_IN_PARALLEL": "TRUE", "QISKIT_SETTINGS": os.path.join(home, ".qiskit.conf"),
    }


class Zygote:
    def __init__(self, settings: dict[str, Any]) -> None:
        from actors.verify.sandbox.config import SandboxConfig
        from actors.verify.sandbox.isolation import FEATURES

        self.slot: int = settings["slot"]
        self.mode: str = settings["mode"]
        self._execute = {"inprocess": self._run_inprocess, "bare": self._run_bare}.get(self.mode, self._run_forked)
        self.sandbox = SandboxConfig.model_validate(settings["sandbox"])
        # One host uid per zygote (not per slot index): zygotes of several verifiers on one host
        # then never share a uid, so RLIMIT_NPROC counts only this zygote's children.
        self.sandbox_uid = self.sandbox.sandbox_uid_base + os.getpid() % SANDBOX_UIDS
        self.requested = set(settings.get("features", FEATURES))
        self.features: set[str] = set()
        # Where the children's file view is assembled: an empty host directory of this zygote's
        # (the view's mounts exist only in private mount namespaces).
        self.view_root = tempfile.mkdtemp(prefix=f"qvr-slot{self.slot}-{os.getpid()}-")  # whose it is, in its name
        os.chmod(self.view_root, 0o755)
        self.view = file_view(self.sandbox.hidden_paths)
        self._view_built = False
        """The view is assembled in this zygote's own mount namespace (as root, once)."""
        self._view_pending = False
        """A supervisor assembled the view; the child it forks (PID 1) still has to enter it."""
        self.content, self.tests = Sealed(), Sealed()
        """The job's code and prompt, and its hidden tests, as sealed frames (never decoded here)."""
        self._tests_pending = False
        limit = self.sandbox.max_output_bytes
        self.outputs: dict[str, Held] = {"result": Whole(MAX_RECORD), "stdout": Tail(limit), "stderr": Tail(limit),
                                         "solution.stdout": Tail(limit), "solution.stderr": Tail(limit)}
        """What the children print and record, held (never decoded) until it is sent to the parent."""
        self.relayed = {name: Sealed() for name in self.outputs}
        """A supervisor's parts, relayed to the parent the same way (non-direct mode)."""
        self.scratch = bytearray(65536)
        self.seccomp_bpf = b""
        self.direct = False
        self.control = (-1, -1)  # (requests from the parent, replies to it)
        self._qpu_down = -1
        self._own_pid_ns: int | None = None
        self._network_isolated = False
        """This zygote sits in an empty network namespace that its children share (as root)."""
        self._configured = False
        self.huge_pages = bool(settings.get("huge_pages"))
        self.huge_mb = 0
        """MiB of this zygote's memory folded into huge pages (see actors/verify/sandbox/hugepages.py)."""

    # -- isolation probe

    def probe(self) -> dict[str, str | None]:
        """Feature -> None when it works here, else the error. Tries the real setup code."""
        from actors.verify.sandbox.isolation import FEATURES

        if self.mode != "forked":
            return {}
        everything = self._try(set(FEATURES))
        if everything is None:
            return dict.fromkeys(FEATURES)
        results: dict[str, str | None] = {}
        for feature in FEATURES:
            needs = {feature} | ({"user_namespace"} if feature.endswith("namespace") else set())
            results[feature] = self._try(needs)
        return results

    def _try(self, features: set[str]) -> str | None:
        """Set up one child with ``features`` exactly as a job's child is set up; None when it
        worked, else the error."""
        from actors.verify.sandbox.isolation import CLONE_NEWPID, unshare

        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                pid1 = os.geteuid() == 0 and {"user_namespace", "mount_namespace", "pid_namespace"} <= features
                if pid1:
                    unshare(CLONE_NEWPID)  # as a job's child in direct mode: PID 1 enters everything
                else:
                    self._enter(features)
                grandchild = os.fork()
                if grandchild == 0:
                    try:
                        if pid1:
                            self._enter(features, pid1=True)
                        self._finish_entering()
                        self._lock_down(features, nproc=None, vm_bytes=None)
                        os._exit(0)
                    except BaseException as error:  # noqa: BLE001
                        os.write(write_end, f"{type(error).__name__}: {error}".encode()[:500])
                        os._exit(1)
                _, status = os.waitpid(grandchild, 0)
                os._exit(0 if status == 0 else 1)
            except BaseException as error:  # noqa: BLE001
                os.write(write_end, f"{type(error).__name__}: {error}".encode()[:500])
                os._exit(1)
        os.close(write_end)
        message = os.read(read_end, 1000).decode(errors="replace")
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        return None if status == 0 else (message or f"exit status {status}")

    # -- one job

    def _enter(self, features: set[str], pid1: bool = False) -> int | None:
        """Namespaces, the file view, an unprivileged uid. Returns the RLIMIT_NPROC to use.

        ``pid1``: the caller is PID 1 of a new PID namespace (a job's child in direct mode) and
        mounts its own /proc while it enters the view, still as root."""
        from actors.verify.sandbox.isolation import (
            CLONE_NEWNS,
            build_view,
            count_processes_of,
            drop_to_uid,
            enter_namespaces,
            enter_view,
            unshare,
        )

        mounts = "mount_namespace" in features
        if os.geteuid() == 0 and mounts:
            def as_root() -> None:
                unshare(CLONE_NEWNS)
                if not self._view_built:
                    build_view(self.view, self.view_root)
                enter_view(self.view_root, self.sandbox.disk_mb, fresh_proc=pid1, plan=self.view)
                drop_to_uid(self.sandbox_uid)

            enter_namespaces(features - ({"pid_namespace"} if pid1 else set()), before_user_namespace=as_root,
                             fresh_network=not self._network_isolated)
            return self.sandbox.max_processes + 2
        nproc = count_processes_of(os.geteuid()) + self.sandbox.max_processes
        enter_namespaces(features)
        if mounts:  # root of a user namespace now: assemble the view in its mount namespace
            build_view(self.view, self.view_root)
            if "pid_namespace" in features:
                self._view_pending = True  # the PID 1 child mounts its /proc and enters the view
            else:
                from actors.verify.sandbox.isolation import enter_view as enter

                enter(self.view_root, self.sandbox.disk_mb, fresh_proc=False, plan=self.view)
        return nproc

    def _finish_entering(self) -> None:
        """In a supervisor's child: enter the view the supervisor assembled."""
        if self._view_pending:
            from actors.verify.sandbox.isolation import enter_view

            self._view_pending = False
            enter_view(self.view_root, self.sandbox.disk_mb, fresh_proc=True, plan=self.view)

    def _lock_down(self, features: set[str], nproc: int | None, vm_bytes: int | None) -> None:
        """In the child, before model code: own session, rlimits, seccomp."""
        from actors.verify.sandbox.isolation import apply_rlimits, compile_seccomp, load_seccomp

        os.setsid()
        if vm_bytes is not None:
            apply_rlimits(self.sandbox, vm_bytes, nproc)
        if "seccomp" in features:
            load_seccomp(self.seccomp_bpf if os.getpid() == 1 and self.seccomp_bpf else compile_seccomp(os.getpid()))

    def use(self, features: set[str]) -> None:
        """Adopt the isolation features agreed with the parent, and precompute what each job reuses.
        The parent usually agrees to what the probe offered: then there is nothing to redo."""
        from actors.verify.sandbox.isolation import compile_seccomp

        if self._configured and features == self.features:
            return
        self._configured = True
        self.features = features
        self.seccomp_bpf = compile_seccomp(1) if "seccomp" in features else b""
        # As root, the zygote makes each job's PID namespace itself: one fork per job, not two.
        self.direct = os.geteuid() == 0 and {"user_namespace", "mount_namespace", "pid_namespace"} <= features
        if self.direct and self._own_pid_ns is None:
            self._own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY)
        if os.geteuid() == 0 and "mount_namespace" in features and not self._view_built:
            from actors.verify.sandbox.isolation import CLONE_NEWNS, build_view, unshare

            unshare(CLONE_NEWNS)  # this zygote's own mount namespace: the host sees none of it
            build_view(self.view, self.view_root)
            self._view_built = True
        if self.direct and "net_namespace" in features and not self._network_isolated:
            from actors.verify.sandbox.isolation import isolate_network

            isolate_network()
            self._network_isolated = True
        if self.huge_pages:  # last: the seccomp filter and probe allocated since warm-up
            self.huge_mb = collapse_heap()

    def run(self, control: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Held]]]:
        """One job: ``control`` (harness, timeout, isolation, qpu, its tier) came as a plain frame; the
        job's content and then its tests follow as sealed frames on the same channel. Returns the
        outcome's header and its held parts (record, output tails), for :func:`send`."""
        started = time.monotonic()
        self.content.read(self.control[0], timeout_s=30)
        self._tests_pending = True
        try:
            header, parts = self._execute(control)
        finally:
            self._load_tests()  # whatever happened: the channel stays in step with the parent
            self.content.wipe()
            self.tests.wipe()
        header["duration_s"] = time.monotonic() - started
        return header, parts

    def _load_tests(self) -> None:
        """Read this job's tests frame (once per job, whoever asks first)."""
        if self._tests_pending:
            self._tests_pending = False
            self.tests.read(self.control[0], timeout_s=30)

    def _job(self, control: dict[str, Any], tests: bool = True) -> dict[str, Any]:
        """The whole job, decoded: only ever called in a child (or by the benchmark floors)."""
        return {**control, **self.content.decode(), **(self.tests.decode() if tests else {"tests": ""})}

    def _run_inprocess(self, control: dict[str, Any]) -> dict[str, Any]:
        """The floor for benchmarks: no fork, no isolation, state leaks between jobs."""
        import contextlib
        import io

        self._load_tests()
        stdout, stderr = io.StringIO(), io.StringIO()
        workdir = tempfile.mkdtemp(prefix="qvr-inprocess-")  # files a job writes land here, not in our cwd
        previous = os.getcwd()
        try:
            os.chdir(workdir)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                record = run_job(self._job(control))
        finally:
            os.chdir(previous)
            shutil.rmtree(workdir, ignore_errors=True)
        parts = {"result": json.dumps(record), "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        for name, text in parts.items():
            self.outputs[name].add(memoryview(text.encode()))
        return {"status": "ok", "exit_status": 0, "isolation": "shared"}, [(name, self.outputs[name]) for name in parts]

    def _run_bare(self, control: dict[str, Any]) -> dict[str, Any]:
        """Benchmarks' fork floor: one plain fork per job, no namespace, limit or filter."""
        self._load_tests()
        workdir = tempfile.mkdtemp(prefix="qvr-bare-")
        pipes = {name: os.pipe() for name in ("stdout", "stderr", "result")}
        child = os.fork()
        if child == 0:  # _child makes it a session (and process group) of its own
            self._child(workdir, pipes["stdout"][1], pipes["stderr"][1], keep=(pipes["result"][1],), nproc=None,
                        vm_bytes=None, action=lambda: write_record(pipes["result"][1], run_job(self._job(control))))
        for _, write_end in pipes.values():
            os.close(write_end)
        try:
            return self._watch({"main": child}, control["timeout_s"], {name: ends[0] for name, ends in pipes.items()})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_forked(self, control: dict[str, Any]) -> dict[str, Any]:
        if self.direct:
            return self._supervise(control)
        self._load_tests()  # the supervisor runs shared jobs only: its one child gets everything
        report_r, report_w = os.pipe()
        supervisor = os.fork()
        if supervisor == 0:
            os.close(report_r)
            try:
                os.setpgid(0, 0)
                header, parts = self._supervise(control)
            except BaseException as error:  # noqa: BLE001 - reported as a sandbox error
                header, parts = {"status": "error", "reason": f"sandbox setup failed: {type(error).__name__}: {error}"}, []
            try:
                send(report_w, header, parts)
            finally:
                os._exit(0)
        os.close(report_w)
        parts: list[tuple[str, Held]] = []
        try:
            header = read_frame(report_r, timeout_s=control["timeout_s"] + 30)
            for name in (header or {}).get("parts", []):
                self.relayed[name].read(report_r, timeout_s=30)
                parts.append((name, self.relayed[name]))
        except (TimeoutError, ValueError, EOFError, KeyError) as error:
            header, parts = {"status": "error", "reason": f"supervisor failed: {type(error).__name__}: {error}"}, []
        finally:
            os.close(report_r)
            kill_and_reap(supervisor)
        return (header, parts) if header else ({"status": "error", "reason": "supervisor died without a report"}, [])

    def _supervise(self, control: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Held]]]:
        """Start the child (or, split, the solution and checker children) and watch them. Runs in
        the zygote itself (``direct``) or in a forked supervisor that entered the namespaces.

        Split: the solution child is forked before this job's tests are read, so they were never
        in any memory it could look at; the checker, forked after, gets them."""
        from actors.verify.sandbox.isolation import SANDBOX_HOME, vm_size_bytes

        split = control.get("isolation") == "split"
        if split and not self.direct:
            return {"status": "error", "reason": "split isolation needs the zygote to create a PID namespace per "
                                                 "child (root, with user, mount and PID namespaces)"}, []
        vm_bytes = vm_size_bytes()
        nproc = self.sandbox.max_processes + 2 if self.direct else self._enter(self.features)
        workdir = SANDBOX_HOME if "mount_namespace" in self.features else _host_workdir()
        pipes = {name: os.pipe() for name in ("stdout", "stderr", "result")}
        children: dict[str, int] = {}
        qpu_fds: tuple[int, ...] = ()
        # A simulator tier (the parent's choice, in the control frame) serves the primitives in the
        # child: no channel to the gateway is opened at all (see qpu_shim).
        local_tier = control.get("qpu_tier") if control.get("qpu_tier") in ("ideal", "noisy") else None
        if control.get("qpu") and local_tier is None:
            pipes["qpu_up"], pipes["qpu_down"] = os.pipe(), os.pipe()
            qpu_fds = (pipes["qpu_up"][1], pipes["qpu_down"][0])
        # Here, not at the top (they bring Qiskit): the verifier's process imports this module too.
        from actors.verify.sandbox import qpu_shim
        from actors.verify.sandbox import split as split_checker
        try:
            if split:
                for name in ("solution.stdout", "solution.stderr", "to_solution", "to_checker"):
                    pipes[name] = os.pipe()
                requests, answers = pipes["to_solution"][0], pipes["to_checker"][1]
                children["solution"] = self._spawn(
                    workdir, nproc, vm_bytes, pipes["solution.stdout"][1], pipes["solution.stderr"][1],
                    keep=(requests, answers), report_fd=pipes["solution.stderr"][1],
                    action=lambda: split_checker.serve_solution(self._job(control, tests=False), requests, answers))
                self._load_tests()
                to_solution, from_solution = pipes["to_solution"][1], pipes["to_checker"][0]
                children["main"] = self._spawn(
                    workdir, nproc, vm_bytes, pipes["stdout"][1], pipes["stderr"][1],
                    keep=(to_solution, from_solution, pipes["result"][1]), report_fd=pipes["result"][1],
                    action=lambda: write_record(pipes["result"][1],
                                                split_checker.run_checker(self._job(control), to_solution, from_solution)))
            else:
                self._load_tests()

                def shared() -> None:
                    job = self._job(control)
                    if qpu_fds:
                        qpu_shim.install(*qpu_fds)
                    elif control.get("qpu"):
                        qpu_shim.install_local(local_tier, control.get("qpu_info") or {})
                    write_record(pipes["result"][1], run_job(job))

                children["main"] = self._spawn(
                    workdir, nproc, vm_bytes, pipes["stdout"][1], pipes["stderr"][1],
                    keep=(pipes["result"][1], *qpu_fds), report_fd=pipes["result"][1], action=shared)
        finally:
            self.content.wipe()  # the children have their copies; none stays here
            self.tests.wipe()
            for name, (read_end, write_end) in pipes.items():
                if name == "qpu_down":  # the zygote writes gateway answers down to the child
                    os.close(read_end)
                    continue
                os.close(write_end)
                if name in ("to_solution", "to_checker"):
                    os.close(read_end)
        watched = {name: ends[0] for name, ends in pipes.items() if name not in ("to_solution", "to_checker", "qpu_down")}
        self._qpu_down = pipes["qpu_down"][1] if "qpu_down" in pipes else -1
        try:
            return self._watch(children, control["timeout_s"], watched)
        finally:
            if self._qpu_down >= 0:
                os.close(self._qpu_down)
                self._qpu_down = -1
            if workdir != SANDBOX_HOME:
                shutil.rmtree(workdir, ignore_errors=True)

    def _spawn(self, workdir: str, nproc: int | None, vm_bytes: int, stdout: int, stderr: int,
               keep: tuple[int, ...], report_fd: int, action: Any) -> int:
        """Fork one isolated child that runs ``action``; in direct mode it is PID 1 of its own
        PID namespace and enters the other namespaces itself."""
        from actors.verify.sandbox.isolation import CLONE_NEWPID, setns, unshare

        if self.direct:
            unshare(CLONE_NEWPID)  # the next child is PID 1 of a fresh PID namespace
        try:
            child = os.fork()
            if child == 0:
                try:
                    if self.direct:
                        self._enter(self.features, pid1=True)
                    self._finish_entering()
                except BaseException as error:  # noqa: BLE001 - never run model code half-isolated
                    message = {"sandbox_error": f"sandbox setup failed: {type(error).__name__}: {error}"}
                    os.write(report_fd, json.dumps(message).encode())
                    os._exit(1)
                self._child(workdir, stdout, stderr, keep, nproc, vm_bytes, action)
        finally:
            if self.direct:
                setns(self._own_pid_ns, CLONE_NEWPID)  # back to forking into our own namespace
        return child

    def _child(self, workdir: str, stdout: int, stderr: int, keep: tuple[int, ...], nproc: int | None,
               vm_bytes: int | None, action: Any) -> None:
        try:
            os.chdir(workdir)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            close_all_except(keep)
            os.environ.clear()
            os.environ.update(child_environment(workdir))
            self._lock_down(self.features, nproc, vm_bytes)
            action()
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:  # noqa: BLE001
                    pass
            os._exit(0)

    def _watch(self, children: dict[str, int], timeout_s: float,
               fds: dict[str, int]) -> tuple[dict[str, Any], list[tuple[str, Held]]]:
        """Collect output and the main child's record until it and its namespace are gone, or time
        is up; then kill every child (the solution child of a split job keeps serving until then).
        What the children wrote is held as raw bytes and never decoded here: the parent reads the
        record and the tails (see actors/verify/forkserver.py, ``outcome``)."""
        held = {name: self.outputs[name] for name in fds if name in self.outputs}
        names = {fd: name for name, fd in fds.items()}
        scratch = memoryview(self.scratch)
        main = children["main"]
        deadline = time.monotonic() + timeout_s
        status, exit_status, exited_at, qpu_wait_s = "ok", None, None, 0.0
        while any(name in ("stdout", "stderr", "result") for name in names.values()):
            now = time.monotonic()
            if now >= deadline:
                status = "timeout"
                break
            if exit_status is None:
                pid, code = os.waitpid(main, os.WNOHANG)
                if pid:
                    exit_status, exited_at = code, now
            if exited_at is not None and now - exited_at > 1.0:
                break  # descendants outside a PID namespace still hold the pipes
            ready, _, _ = select.select(list(names), [], [], min(0.25, deadline - now))
            for fd in ready:
                if names[fd] == "qpu_up":
                    waited = self._relay_qpu(fd)
                    if waited is None:
                        del names[fd]
                    else:
                        deadline += waited  # time in a QPU queue does not count against the timeout
                        qpu_wait_s += waited
                    continue
                count = os.readv(fd, [scratch])
                if count:
                    held[names[fd]].add(scratch[:count])
                else:
                    del names[fd]
        scratch[:] = bytes(len(scratch))
        solution_signal = None
        if "solution" in children:  # how did the solution child end, before we end it?
            pid, code = os.waitpid(children["solution"], os.WNOHANG)
            if pid and os.WIFSIGNALED(code):
                solution_signal = os.WTERMSIG(code)
            if pid:
                children = {name: child for name, child in children.items() if name != "solution"}
        for name, pid in children.items():
            reaped = name == "main" and exit_status is not None
            kill_tree(pid, reaped=reaped)
            if not reaped:
                _, code = os.waitpid(pid, 0)
                if name == "main":
                    exit_status = code
        for fd in fds.values():
            os.close(fd)
        split = "solution.stderr" in fds
        parts = [name for name in ("result", "stdout", "stderr", "solution.stderr") if name in held]
        header = {"status": status, "exit_status": exit_status, "solution_signal": solution_signal,
                  "isolation": "split" if split else "shared", "qpu_wait_s": qpu_wait_s,
                  "record_overflow": self.outputs["result"].overflow, "parts": parts}
        for name in set(held) - set(parts):
            held[name].wipe()
        return header, [(name, held[name]) for name in parts]

    def _relay_qpu(self, fd: int) -> float | None:
        """One request from the child to the gateway (through the parent) and its answer back.
        Returns the seconds it took, or None when the child closed its end."""
        started = time.monotonic()
        try:
            request = read_frame(fd, timeout_s=10, max_bytes=MAX_FRAME)
        except (TimeoutError, ValueError) as error:
            request = {"op": "invalid", "error": str(error)}
        if request is None:
            return None
        write_frame(self.control[1], {"qpu_request": request})
        answer = read_frame(self.control[0])
        try:
            write_frame(self._qpu_down, answer.get("qpu_response", {"error": "no answer"}) if answer else {"error": "no answer"})
        except OSError:
            return None
        return time.monotonic() - started


MAX_RECORD = 8 * 1024 * 1024
"""Largest result record a child may write (a unittest record with 10,000 outcomes is ~400 kB)."""


def _host_workdir() -> str:
    return tempfile.mkdtemp(prefix=f"qvr-sandbox-{os.getpid()}-")  # the zygote's pid: whose it is


def main() -> None:
    """Zygote entry: settings as argv[1] (JSON); frames in on fd argv[2], out on fd argv[3]."""
    from actors.verify.sandbox import clones, warm
    settings = json.loads(sys.argv[1])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    warm.warm_up(backends=settings.get("warm_backends", []), plugins=settings["sandbox"].get("plugins", []))
    settings, requests, replies = clones.fork_clones(settings, int(sys.argv[2]), int(sys.argv[3]))  # other slots' zygotes
    zygote = Zygote(settings)
    zygote.control = (requests, replies)
    probe = zygote.probe()
    zygote.use({name for name, error in probe.items() if error is None} & zygote.requested)
    write_frame(replies, {"ready": True, "pid": os.getpid(), "probe": probe, "features": sorted(zygote.features),
                          "huge_mb": zygote.huge_mb})
    while True:
        message = read_frame(requests)
        if message is None:
            break
        if "features" in message:  # the parent decides what to use after seeing the probe
            zygote.use(set(message["features"]))
            write_frame(replies, {"features": sorted(zygote.features), "can_split": zygote.direct})
            continue
        header, parts = zygote.run(message)
        send(replies, header, parts)
    if zygote._view_built:
        from actors.verify.sandbox.isolation import drop_view

        drop_view(zygote.view_root)
    shutil.rmtree(zygote.view_root, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    main()
