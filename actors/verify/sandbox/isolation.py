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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.verify.sandbox.config import SandboxConfig


CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEW_FLAGS = (CLONE_NEWNS, 0x02000000, 0x04000000, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18

FEATURES = ("user_namespace", "pid_namespace", "mount_namespace", "net_namespace", "seccomp")

_libc = ctypes.CDLL(None, use_errno=True)


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


# ---------------------------------------------------------------- the file view (an allow-list)

SANDBOX_HOME = "/tmp"
"""Inside the view: the job's private, size-limited tmpfs; working directory, HOME and TMPDIR.
Shown paths that lie under it on the host (a checkout cloned into /tmp with its .venv inside)
are bound on top of each job's fresh tmpfs (see :func:`enter_view`); nothing else of the host's
/tmp is."""

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Shared libraries and the tools a program may exec (read-only)."""

ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd", "group",
               "alternatives", "fonts", "mime.types")
"""What of /etc the dynamic linker, time zones and user look-ups read; nothing else of /etc."""

DEVICES = ("null", "zero", "full", "random", "urandom")

MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
_LOCKED_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                 (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}


def plan_view(prefixes: list[str], python_paths: list[str], project: str | None, packages: list[str],
              hidden: list[str]) -> dict[str, Any]:
    """What a sandboxed child's file system holds, computed once per zygote: an allow-list.

    Shown read-only: the system's libraries and binaries (:data:`SYSTEM_PATHS`), a few files of
    /etc (:data:`ETC_ENTRIES`), the interpreter (``prefixes``: sys.prefix, base_prefix,
    exec_prefix) and its packages (``python_paths``: sys.path), a few devices, wherever they lie
    (/usr, /opt, a home, a conda prefix, under /tmp). Nothing else of the host exists in the
    view: no home, no /tmp (but for the shown paths inside it), no /run, no project tree
    wherever it lies. Never shown: :data:`SANDBOX_HOME` or a folder around it (``/``), whose
    place is the job's private tmpfs.

    ``project`` (a source checkout, or the copy that ``ray job submit`` unpacks) is never shown:
    inside it only the interpreter's own prefixes are (a virtualenv in the checkout), never the
    checkout around them. ``packages`` (qvr's package folders, where a regular install put them
    in site-packages) and ``hidden`` (task files, run directories, token files) are covered by
    an empty read-only folder (or an empty file that, as root, the child cannot open) wherever
    they fall inside a shown path. The
    zygote imports every module a child runs before it forks, so a child reads nothing of qvr
    from disk (see actors/verify/sandbox/zygote.py)."""
    project = os.path.realpath(project) if project else None
    real_prefixes = [os.path.realpath(prefix) for prefix in prefixes if prefix]
    links: dict[str, str] = {}
    binds: dict[str, str] = {}  # where it appears in the view -> the host path

    def show(path: str) -> None:
        if not os.path.lexists(path):
            return
        place = os.path.abspath(path)
        if os.path.islink(place) and os.path.dirname(place) in ("/", "/etc"):
            links[place] = os.readlink(place)  # /bin -> usr/bin stays a link, as on the host
            show(os.path.join(os.path.dirname(place), os.readlink(place)))
            return
        real = os.path.realpath(place)
        if _inside(SANDBOX_HOME, place) or _inside(SANDBOX_HOME, real):
            return  # the job's private /tmp (or all of the host) in place of what it holds
        if project and _inside(real, project) and not any(_inside(real, prefix) for prefix in real_prefixes):
            return  # the checkout, or something in it that is not the interpreter's
        binds[place] = binds[real] = real

    for path in (*SYSTEM_PATHS, *(os.path.join("/etc", entry) for entry in ETC_ENTRIES), *prefixes, *python_paths):
        if path:
            show(path)
    shown = _minimal(list(binds))
    covered = [os.path.realpath(path) for path in (*packages, *hidden, *([project] if project else []))
               if path and os.path.lexists(path)]
    # Covering matters only inside something shown; filter first (a hidden file in a venv that
    # lies inside the checkout must stay covered although the checkout itself needs no cover).
    covered = _minimal([path for path in covered if any(_inside(path, place) for place in shown)])
    return {"links": sorted(links.items()), "binds": [(place, binds[place]) for place in shown],
            "cover": [(path, os.path.isdir(path)) for path in covered]}


def _bind_flags(path: str) -> int:
    """A read-only remount of a bind keeps the flags the kernel locked on the original mount
    (nosuid, nodev, ...): a user namespace may add restrictions, never drop them."""
    present = os.statvfs(path).f_flag
    return MS_BIND | MS_REMOUNT | MS_RDONLY | sum(flag for st, flag in _LOCKED_FLAGS if present & st)


def _in_home(path: str) -> bool:
    """Whether a shown or covered path lies under :data:`SANDBOX_HOME`: it is mounted on top of
    each job's fresh tmpfs there, not into the view itself (which that tmpfs would hide)."""
    return _inside(path, SANDBOX_HOME)


def _show(source: str, inside: str) -> None:
    """Bind ``source`` read-only at ``inside``, creating the mount point (owner-only writable)."""
    if os.path.isdir(source):
        os.makedirs(inside, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(inside), mode=0o755, exist_ok=True)
        open(inside, "a").close()
    mount(source, inside, None, MS_BIND | MS_REC)
    mount("none", inside, None, _bind_flags(inside))


def _cover_all(covers: list[tuple[str, bool]], root: str) -> None:
    """Hide what lies at each covered path (within a shown path) under an empty read-only folder,
    or an empty file without permissions. That file lies in a tiny tmpfs mounted for the moment
    on the view's (still empty) /proc mount point and detached once bound over each covered
    file: the binds alone keep it. As root it belongs to a uid that the child's user namespace
    does not map, so the child cannot even open it."""
    scratch, blank = root + "/proc", None
    for path, is_dir in covers:
        inside = root + path
        if is_dir:
            mount("qvr-hidden", inside, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=4,mode=0755")
            mount("none", inside, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
            continue
        if blank is None:
            os.makedirs(scratch, exist_ok=True)
            mount("qvr-blank", scratch, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=4,mode=0755")
            blank = os.path.join(scratch, "blank")
            os.close(os.open(blank, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0))
        mount(blank, inside, None, MS_BIND)
        mount("none", inside, None, _bind_flags(inside) | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if blank is not None:
        _check(_libc.umount2(scratch.encode(), ctypes.c_int(MNT_DETACH)), f"umount2 {scratch}")


def build_view(plan: dict[str, Any], root: str) -> None:
    """Assemble the view under ``root`` (an empty directory) in the caller's private mount
    namespace: a small tmpfs holding the shown paths as read-only binds, /dev with a few
    devices, empty mount points for /proc and /tmp, the covers; then the tmpfs itself is made
    read-only. :func:`enter_view` then makes it a child's whole file system (and adds the shown
    paths that lie under /tmp)."""
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("qvr-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for place, target in plan["links"]:
        os.makedirs(root + os.path.dirname(place), exist_ok=True)
        os.symlink(target, root + place)
    for place, source in plan["binds"]:
        if not _in_home(place):
            _show(source, root + place)
    dev = root + "/dev"
    os.makedirs(dev)
    mount("qvr-dev", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755")
    for device in DEVICES:
        if os.path.exists(f"/dev/{device}"):
            open(f"{dev}/{device}", "a").close()
            mount(f"/dev/{device}", f"{dev}/{device}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("shm", SANDBOX_HOME)):
        os.symlink(target, f"{dev}/{name}")
    mount("none", dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    _cover_all([(path, is_dir) for path, is_dir in plan["cover"] if not _in_home(path)], root)
    for mount_point in ("/proc", SANDBOX_HOME):
        os.makedirs(root + mount_point, exist_ok=True)
    os.chmod(root, 0o755)
    mount("none", root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def enter_view(root: str, disk_mb: int, fresh_proc: bool, plan: dict[str, Any]) -> None:
    """Make the view built under ``root`` (from ``plan``) this process's whole file system: a
    fresh private tmpfs at :data:`SANDBOX_HOME` (the job's working directory), on top of it the
    shown paths that lie under /tmp on the host (read-only binds on mount points made in the
    tmpfs, with their covers), /proc, then pivot_root into the view and detach the host's tree,
    so nothing outside the view is reachable at all (not even by undoing a mount: the old root
    is gone from this namespace).

    ``fresh_proc``: the caller is PID 1 of a new PID namespace and mounts a /proc that shows only
    it (done before the pivot: the kernel lets a user namespace mount proc only while another
    proc is visible); otherwise the host's /proc is shown (weaker isolation, opted into)."""
    inodes = max(1024, disk_mb * 64)
    mount("qvr-work", root + SANDBOX_HOME, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk_mb}m,nr_inodes={inodes},mode=1777")
    # The host's tree is still reachable here: bind from it (the view's own binds of these paths
    # would lie under the tmpfs just mounted).
    for place, source in plan["binds"]:
        if _in_home(place):
            _show(source, root + place)
    _cover_all([(path, is_dir) for path, is_dir in plan["cover"] if _in_home(path)], root)
    if fresh_proc:
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        mount("/proc", root + "/proc", None, MS_BIND | MS_REC)
    os.chdir(root)
    pivot_root(".", ".")
    _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "umount2 (the host's tree)")
    os.chdir(SANDBOX_HOME)


def pivot_root(new_root: str, put_old: str) -> None:
    import platform

    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode()), "pivot_root")


def drop_view(root: str) -> None:
    """Detach a view the zygote built for its children (at its exit)."""
    _libc.umount2(root.encode(), ctypes.c_int(MNT_DETACH))


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
