"""The zygotes of a verifier's other slots, forked from the first slot's once it is warm.

Warming a zygote (importing Qiskit, Aer and qiskit-ibm-runtime and running their hot paths once,
actors/verify/sandbox/warm.py) costs about 3 CPU-seconds, and a verifier with N slots paid it N
times. Now the first slot's zygote warms, then forks one process per other slot before it sets up
anything of a zygote's own: each clone takes its slot number and channel, then makes its own sandbox
uid, file view, namespaces and probe exactly as a zygote started cold does (actors/verify/sandbox/
zygote.py main). The N zygotes cost one warm-up and share its pages until they write them. Each
clone leads a session of its own, as a zygote the parent starts does: the parent can end one slot's
processes without touching another's.
"""

from __future__ import annotations

import os
from typing import Any


def fork_clones(settings: dict[str, Any], requests: int, replies: int) -> tuple[dict[str, Any], int, int]:
    """``settings["clones"]``: ``[slot, requests fd, replies fd]`` of each other slot's zygote (fds the
    parent passed to this process). Returns the (settings, requests fd, replies fd) this process
    serves: the first slot's where it started, a clone's own in each clone; every other slot's fds
    are closed."""
    clones = settings.get("clones") or []
    mine = (settings, requests, replies)
    for slot, clone_requests, clone_replies in clones:
        if os.fork() == 0:
            os.setsid()
            mine = ({**settings, "slot": slot, "clones": []}, clone_requests, clone_replies)
            break
    others = {requests, replies, *(fd for _, clone_requests, clone_replies in clones for fd in (clone_requests, clone_replies))}
    for fd in others - {mine[1], mine[2]}:
        os.close(fd)
    return mine
