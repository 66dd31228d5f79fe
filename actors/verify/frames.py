"""Length-prefixed JSON frames over pipes: how the verifier's processes talk.

Used between the parent and its zygotes, between a zygote and a forked supervisor, and between
the checker and the solution child of a split verification. A reader bounds the frame size and
can wait with a deadline, so a peer that floods or falls silent cannot block it forever.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


def write_frame(fd: int, message: Any) -> None:
    data = json.dumps(message).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError("no frame before the deadline")
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, timeout_s: float | None = None, max_bytes: int = MAX_FRAME) -> Any:
    """The next message, or None at end of file; TimeoutError when nothing came in time;
    ValueError for a frame over ``max_bytes`` or one that is not JSON (including too deep)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_bytes:
        raise ValueError(f"frame of {size} bytes is over the {max_bytes} limit")
    body = _read_exact(fd, size, deadline)
    if body is None:
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"frame is not readable JSON: {type(error).__name__}") from None
