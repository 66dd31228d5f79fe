"""Ending a child's processes and what it inherits: the zygote's supervisor kills a job's whole
tree and reaps it, and a child closes every descriptor it was not meant to keep."""

from __future__ import annotations

import os
import signal


def close_all_except(keep: tuple[int, ...]) -> None:
    """Close every descriptor from 3 up except ``keep`` (close_range under the hood: fast)."""
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 65536)


def kill_tree(pid: int, reaped: bool) -> None:
    """SIGKILL to the child (PID 1 of its namespace: the kernel then kills the rest) and its group.
    A reaped pid may already belong to someone else; its process group id cannot while members live."""
    targets = [os.killpg] if reaped else [os.kill, os.killpg]
    for kill in targets:
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_and_reap(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
