"""Kernel isolation for one verification child: namespaces, private mounts, rlimits, seccomp.

Python 3.11 has no ``os.unshare`` or ``mount``; both are called through libc with ctypes (a few
lines, and no helper binary such as bubblewrap to install on every verifier node).

The supervisor (a fresh fork of the zygote, trusted) calls :func:`enter_namespaces` and
:func:`mount_private_dirs`; the child it then forks is PID 1 of the new PID namespace and calls
:func:`mount_proc`, :func:`apply_rlimits` and :func:`install_seccomp` before any untrusted code
runs. When that child exits, the kernel kills everything left in its PID namespace, and the
private tmpfs mounts vanish with the mount namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEW_FLAGS = (CLONE_NEWNS, 0x02000000, 0x04000000, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18

FEATURES = ("user_namespace", "pid_namespace", "mount_namespace", "net_namespace", "seccomp")

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxConfig(Config):
    """Limits and isolation of each verification child (DESIGN.md, Verification)."""

    memory_mb: int = Field(2048, ge=64, le=1024 * 1024)
    """Address space the child may add on top of the zygote's (RLIMIT_AS = zygote VmSize + this)."""

    cpu_s: int = Field(120, ge=1, le=86400)
    """CPU seconds (RLIMIT_CPU soft limit; the hard limit, one second later, is SIGKILL)."""

    disk_mb: int = Field(64, ge=1, le=64 * 1024)
    """Size of the private tmpfs that is the child's working directory (and /tmp)."""

    max_file_mb: int = Field(32, ge=1, le=64 * 1024)
    """Largest file the child may write (RLIMIT_FSIZE)."""

    max_open_files: int = Field(256, ge=32, le=65536)
    """RLIMIT_NOFILE."""

    max_processes: int = Field(64, ge=4, le=4096)
    """Processes and threads the child's user may run (RLIMIT_NPROC): what stops a fork bomb."""

    max_output_bytes: int = Field(16384, ge=256, le=16 * 1024 * 1024)
    """How much of stdout and of stderr (each, their tail) is kept in the verdict."""

    sandbox_uid_base: int = Field(200000, ge=1000, le=2**31 - 70000)
    """When the verifier runs as root, each zygote's children run as host uid base + (zygote pid
    mod 65536): distinct per zygote on a host, so RLIMIT_NPROC (which root ignores) counts only
    that zygote's children, and root-only files stay unreadable. Keep base .. base + 65535 free
    of real users."""

    hidden_paths: list[str] = []
    """Host paths covered inside the sandbox (e.g. where task files with hidden tests and
    reference solutions live). The host home directory, /tmp and /dev/shm are always covered,
    all but the interpreter and the project."""

    allow_weaker_isolation: bool = False
    """Run even where the kernel lacks a feature (namespaces, seccomp): the verifier then says
    which, once. Off by default: the verifier refuses to start instead."""


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


def vm_size_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def drop_to_uid(uid: int) -> None:
    """As root: become an unprivileged host uid (a user namespace then maps its root to it)."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # Changing credentials makes a process non-dumpable, which leaves /proc/self/{uid_map,...}
    # owned by root; the supervisor must still write its own maps.
    _check(_libc.prctl(ctypes.c_int(4), ctypes.c_ulong(1), 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def enter_namespaces(features: set[str], before_user_namespace: Any = None, fresh_network: bool = True) -> None:
    """Unshare the namespaces in ``features``; children forked afterwards are in the new PID one.

    ``fresh_network=False``: the caller already sits in an empty network namespace of its
    zygote's (see :func:`isolate_network`); only the IPC namespace is new.

    ``before_user_namespace`` runs first, in a private mount namespace of its own when running
    as root: mounts made there (with root's access to the host) end up locked inside the user
    namespace that follows, so the sandbox cannot unmount them to look underneath."""
    if before_user_namespace is not None:
        before_user_namespace()
    outer_uid, outer_gid = os.geteuid(), os.getegid()
    flags = 0
    if "user_namespace" in features:
        flags |= CLONE_NEWUSER
    if "mount_namespace" in features:
        flags |= CLONE_NEWNS
    if "pid_namespace" in features:
        flags |= CLONE_NEWPID
    if "net_namespace" in features:
        flags |= CLONE_NEWIPC | (CLONE_NEWNET if fresh_network else 0)
    if flags:
        unshare(flags)
    if "user_namespace" in features:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {outer_uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {outer_gid} 1")


def isolate_network() -> None:
    """Move the calling process (a zygote, as root) into a new, empty network namespace that all
    its children then share: only a loopback device, down, and nothing to reach.

    Creating a network namespace per child costs about 1.5 ms of CPU (setup, then the kernel's
    asynchronous cleanup_net; perf on a 2-core VM), a tenth of a trivial verification. Sharing
    one is as tight: the namespace belongs to the host's user namespace, so a child (in a user
    namespace of its own) holds no CAP_NET_ADMIN over it and cannot bring loopback up or add a
    device; seccomp denies every socket anyway; and a zygote runs one job at a time and kills
    every process of a job at its end, so nothing a job opened there (an abstract socket dies
    with its process) outlives the job."""
    unshare(CLONE_NEWNET)


def _minimal(paths: list[str]) -> list[str]:
    """Drop paths that lie inside another path of the list."""
    ordered = sorted(set(paths))
    return [path for path in ordered if not any(path.startswith(other.rstrip("/") + "/") for other in ordered)]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def plan_masks(config: SandboxConfig, home: str | None, keep: list[str]) -> dict[str, Any]:
    """What the sandbox's mount namespace hides and what it shows, computed once per zygote.

    Covered with an empty tmpfs: the host home, /tmp, /dev/shm and ``hidden_paths``. Shown again
    inside them, read-only: the paths in ``keep`` (the interpreter, site-packages, the project),
    which stay read-only wherever they are."""
    kept = _minimal([os.path.realpath(path) for path in keep if os.path.exists(path)])
    roots = [os.path.realpath(root) for root in ("/tmp", "/dev/shm", *([home] if home else []))]
    cover = _minimal([root for root in roots if os.path.isdir(root) and root not in kept])
    hide = [os.path.realpath(path) for path in config.hidden_paths if os.path.exists(path)]
    # Under a covered root and outside every kept path, a hidden path is gone already.
    hide = [path for path in hide if any(_inside(path, kept_path) for kept_path in kept)
            or not any(_inside(path, root) for root in cover)]
    return {"cover": [(path, True) for path in cover], "keep": kept,
            "hide": [(path, os.path.isdir(path)) for path in _minimal(hide)]}


def mount_private_dirs(config: SandboxConfig, workdir: str, plan: dict[str, Any]) -> None:
    """Private mounts (nothing propagates back to the host): cover, re-show kept paths read-only,
    then a size-limited tmpfs as the working directory."""
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    kept = [path for path in plan["keep"] if path != workdir]
    handles = {path: os.open(path, os.O_PATH) for path in kept}  # still reachable once covered
    try:
        for root, _ in plan["cover"]:
            mode = "1777" if root in ("/tmp", "/dev/shm") else "0755"
            mount("qvr-cover", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={config.disk_mb}m,nr_inodes=4096,mode={mode}")
        for path, handle in handles.items():
            if os.path.isdir(f"/proc/self/fd/{handle}"):
                os.makedirs(path, exist_ok=True)
            elif not os.path.exists(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "a").close()
            mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
            mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
    finally:
        for handle in handles.values():
            os.close(handle)
    for path, is_dir in plan["hide"]:  # last: hidden paths may lie inside kept ones
        if is_dir:
            mount("qvr-hidden", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=16,mode=0755")
        else:
            mount("/dev/null", path, None, MS_BIND)
    os.makedirs(workdir, exist_ok=True)
    inodes = max(1024, config.disk_mb * 64)
    mount("qvr-work", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"size={config.disk_mb}m,nr_inodes={inodes},mode=1777")


def mount_proc() -> None:
    """A /proc that shows only this PID namespace (so no other process's environ or mem)."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def apply_rlimits(config: SandboxConfig, zygote_vm_bytes: int, nproc: int | None) -> None:
    def limit(kind: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(kind, (soft, soft if hard is None else hard))

    limit(resource.RLIMIT_AS, zygote_vm_bytes + config.memory_mb * 1024 * 1024)
    limit(resource.RLIMIT_CPU, config.cpu_s, config.cpu_s + 1)
    limit(resource.RLIMIT_FSIZE, config.max_file_mb * 1024 * 1024)
    limit(resource.RLIMIT_NOFILE, config.max_open_files)
    limit(resource.RLIMIT_CORE, 0)
    if nproc is not None:
        limit(resource.RLIMIT_NPROC, nproc)


# Denied outright (EPERM): every socket family, tracing and other processes' memory, anything
# that changes namespaces or mounts, kernel keyrings, BPF, io_uring (it would bypass this filter).
DENIED_SYSCALLS = (
    "socket", "socketpair", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open",
    "pidfd_getfd", "pidfd_send_signal", "tkill", "mount", "umount2", "pivot_root", "chroot", "unshare",
    "setns", "open_tree", "move_mount", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl",
)


def compile_seccomp(pid: int) -> bytes:
    """The syscall filter, as classic BPF, for a process whose pid is ``pid``.

    kill() may target only the caller itself or its own process group (pid 0); tgkill() only the
    caller's own threads. clone() may not create namespaces; clone3() answers ENOSYS so that libc
    falls back to clone(), whose flags a filter can read. Inside a PID namespace the child is
    always pid 1, so the zygote compiles this once and each child only loads it."""
    import tempfile

    import pyseccomp as seccomp

    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(deny, name)
        except (OSError, RuntimeError, ValueError):
            pass  # not a syscall on this architecture
    # Negative pids (process groups, -1 = everything) compare as huge unsigned values: above `pid`.
    rules.add_rule(deny, "kill", seccomp.Arg(0, seccomp.GT, pid))
    rules.add_rule(deny, "tgkill", seccomp.Arg(0, seccomp.GT, pid))
    rules.add_rule(deny, "tgkill", seccomp.Arg(0, seccomp.LT, pid))
    if pid > 1:
        # Outside a PID namespace, pids below ours are other processes. One rule cannot exempt 0
        # (libseccomp allows one comparison per argument), so there kill(0, ...) is denied too.
        rules.add_rule(deny, "kill", seccomp.Arg(0, seccomp.LT, pid))
    for flag in CLONE_NEW_FLAGS:
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as stream:
        rules.export_bpf(stream)
        stream.seek(0)
        return stream.read()


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def load_seccomp(bpf: bytes) -> None:
    """Install a compiled filter on this process and everything it forks (with no_new_privs)."""
    count = len(bpf) // ctypes.sizeof(_SockFilter)
    program = (_SockFilter * count).from_buffer_copy(bpf)
    fprog = _SockFprog(count, program)
    _check(_libc.prctl(ctypes.c_int(38), ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(_libc.prctl(ctypes.c_int(22), ctypes.c_ulong(2), ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           "prctl(PR_SET_SECCOMP)")


def install_seccomp() -> None:
    """Compile and load the filter for the calling process."""
    load_seccomp(compile_seccomp(os.getpid()))


def count_processes_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count
