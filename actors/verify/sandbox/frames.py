"""Length-prefixed JSON frames over pipes: how the verifier's processes talk.

Used between the parent and its zygotes, between a zygote and a forked supervisor, and between
the checker and the solution child of a split verification. A reader bounds the frame size and
can wait with a deadline, so a peer that floods or falls silent cannot block it forever.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import struct
import time
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


def write_frame(fd: int, message: Any) -> None:
    write_raw(fd, json.dumps(message).encode())


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


class Held:
    """Bytes that the process holding them (the zygote) never turns into objects: a preallocated
    buffer written in place and wiped (zeroed in place) once forwarded, so nothing of a job (its
    code, its hidden tests, what its children printed or recorded) outlives the job in memory
    that the next job's children are forked from."""

    def __init__(self, capacity: int) -> None:
        self.buffer = bytearray(capacity)
        self.size = 0

    def view(self) -> memoryview:
        return memoryview(self.buffer)[: self.size]

    def wipe(self) -> None:
        if self.size:
            ctypes.memset((ctypes.c_char * self.size).from_buffer(self.buffer), 0, self.size)
        self.size = 0


class Tail(Held):
    """The last ``limit`` bytes of a stream (the total is counted)."""

    def __init__(self, limit: int) -> None:
        super().__init__(2 * limit)
        self.limit, self.total = limit, 0

    def add(self, data: memoryview) -> None:
        count, buffer = len(data), memoryview(self.buffer)
        self.total += count
        if count >= self.limit:
            buffer[: self.limit] = data[count - self.limit:]
            self.size = self.limit
            return
        if self.size + count > len(self.buffer):  # keep what is still in the tail, at the front
            keep = self.limit - count
            buffer[:keep] = buffer[self.size - keep: self.size]  # one memmove, no copy elsewhere
            self.wipe_from(keep)
        buffer[self.size: self.size + count] = data
        self.size += count

    def wipe_from(self, start: int) -> None:
        if self.size > start:
            ctypes.memset(ctypes.addressof((ctypes.c_char * self.size).from_buffer(self.buffer)) + start, 0,
                          self.size - start)
        self.size = start

    def view(self) -> memoryview:
        return memoryview(self.buffer)[max(0, self.size - self.limit): self.size]


class Whole(Held):
    """A message that must arrive whole (a result record): what does not fit is counted, not kept."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.overflow = 0

    def add(self, data: memoryview) -> None:
        if self.overflow or self.size + len(data) > len(self.buffer):
            self.overflow += len(data)
            return
        memoryview(self.buffer)[self.size: self.size + len(data)] = data
        self.size += len(data)

    def wipe(self) -> None:
        super().wipe()
        self.overflow = 0


class Sealed(Held):
    """One frame read straight into the buffer (no intermediate bytes object), decoded only by
    the children the holder forks."""

    def __init__(self) -> None:
        super().__init__(0)
        self.loaded = False

    def read(self, fd: int, timeout_s: float | None = None, max_bytes: int = MAX_FRAME) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        header = _read_exact(fd, _HEADER.size, deadline)
        if header is None:
            raise EOFError("the peer closed the channel before a sealed frame")
        (size,) = _HEADER.unpack(header)
        if size > max_bytes:
            raise ValueError(f"frame of {size} bytes is over the {max_bytes} limit")
        if size > len(self.buffer):
            self.wipe()
            self.buffer = bytearray(max(size, 2 * len(self.buffer)))
        view = memoryview(self.buffer)
        try:
            got = 0
            while got < size:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                        raise TimeoutError("no frame before the deadline")
                count = os.readv(fd, [view[got:size]])
                if not count:
                    raise EOFError("the peer closed the channel inside a sealed frame")
                got += count
        finally:
            view.release()
        self.size, self.loaded = size, True

    def decode(self) -> Any:
        """The message (in a child: the object made here must not exist in the reader)."""
        if not self.loaded:
            raise RuntimeError("no sealed frame was read")
        return json.loads(bytes(self.buffer[: self.size]))

    def wipe(self) -> None:
        super().wipe()
        self.loaded = False


def write_raw(fd: int, data: memoryview | bytes) -> None:
    """One frame whose body is ``data`` as it is (a held buffer's view: no copy is made)."""
    view = memoryview(_HEADER.pack(len(data)))
    while view:
        view = view[os.write(fd, view):]
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_raw(fd: int, timeout_s: float | None = None, max_bytes: int = MAX_FRAME) -> bytes | None:
    """A frame's body as bytes (by the driver, which decodes it), or None at end of file."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_bytes:
        raise ValueError(f"frame of {size} bytes is over the {max_bytes} limit")
    return _read_exact(fd, size, deadline)


def read_frame(fd: int, timeout_s: float | None = None, max_bytes: int = MAX_FRAME) -> Any:
    """The next message, or None at end of file; TimeoutError when nothing came in time;
    ValueError for a frame over ``max_bytes`` or one that is not JSON (including too deep)."""
    body = read_raw(fd, timeout_s, max_bytes)
    if body is None:
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"frame is not readable JSON: {type(error).__name__}") from None


def send(fd: int, header: dict[str, Any], parts: list[tuple[str, Held]]) -> None:
    """An outcome to the parent: its header, then each held part as a raw frame; then wipe them."""
    try:
        write_frame(fd, {**header, "parts": [name for name, _ in parts]})
        for _, part in parts:
            write_raw(fd, part.view())
    finally:
        for _, part in parts:
            part.wipe()
