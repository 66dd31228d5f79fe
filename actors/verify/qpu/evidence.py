"""Evidence that the QPU limits hold, taken from the backend's side and never from the gateway's own
history: :class:`RecordingBackend`, a fake backend (a test and benchmark double handed to the
gateway as its runner) that records every submission it receives and can inject transient
failures, and the pure functions that check such a record against the limits (submissions per
rolling minute, pending jobs, QPU seconds per rolling window) or measure the rate achieved under a
backlog. Tests and ``qvr bench qpu`` use them, with :func:`in_process`, which serves a gateway in
this process to a verifier (real sandboxes, no Ray).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from actors.verify.qpu.config import QpuConfig, QpuLimits
from actors.verify.qpu.errors import TransientQpuError
from actors.verify.qpu.runners import FakeRunner


class RecordingBackend:
    """A fake backend that keeps, on its own side, a record of every submission it receives (when
    it arrived and ended by its own clock, its QPU seconds, whether it failed) and can inject
    transient failures: every ``fail_every``-th submission, or each with ``fail_probability``
    (seeded). With ``run_s``, each submission holds the device for ``run_s`` gateway seconds and is
    billed exactly that (failed ones too: they cost QPU time; the wrapped runner, a
    :class:`FakeRunner` by default, only stands in for the results); without, it is billed its
    whole time at the backend.
    Tests and ``qvr bench qpu`` take their evidence that the limits hold from :meth:`violations`,
    computed on this record only, never from the gateway's own history."""

    @dataclasses.dataclass(frozen=True)
    class Submission:
        backend: str
        at: float  # when the backend received it (gateway seconds, the backend's own clock)
        end: float
        qpu_s: float  # QPU seconds billed
        ok: bool

    def __init__(self, config: QpuConfig, run_s: float = 0.0, fail_every: int = 0, fail_probability: float = 0.0,
                 seed: int = 0, inner: Any = None) -> None:
        self.time_scale = config.time_scale
        self.run_s, self.fail_every, self.fail_probability = run_s, fail_every, fail_probability
        self.inner = inner or FakeRunner(config)
        self.submissions: list[RecordingBackend.Submission] = []
        self.pending: collections.Counter[str] = collections.Counter()
        self.max_pending: collections.Counter[str] = collections.Counter()
        self._count = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def clock(self) -> float:
        return time.monotonic() * self.time_scale

    def run(self, name: str, primitive: str, pubs: list, options: dict[str, Any], submitted: Any = None) -> Any:
        with self._lock:
            self._count += 1
            fail = bool(self.fail_every and self._count % self.fail_every == 0)
            if self.fail_probability:
                fail = self._random.random() < self.fail_probability or fail
            self.pending[name] += 1
            self.max_pending[name] = max(self.max_pending[name], self.pending[name])
            at = self.clock()
        if submitted:
            submitted()
        ok = False
        try:
            if self.run_s:
                time.sleep(self.run_s / self.time_scale)
            if fail:
                raise TransientQpuError(f"backend {name} is temporarily unavailable (fault injection)")
            result = self.inner.run(name, primitive, pubs, options)
            ok = True
            return result
        finally:
            with self._lock:
                end = self.clock()
                self.pending[name] -= 1
                self.submissions.append(self.Submission(name, at, end, self.run_s or end - at, ok))

    def violations(self, limits: QpuLimits) -> dict[str, Any]:
        """The limits checked on this backend's own record, per backend name and in all."""
        with self._lock:
            record = list(self.submissions)
        per_backend = {}
        for name in sorted({submission.backend for submission in record}):
            mine = [submission for submission in record if submission.backend == name]
            runs = [(s.at, s.end, s.qpu_s) for s in mine]
            qpu_windows, most_qpu_s = qpu_window_violations(runs, limits.qpu_seconds_per_window, limits.window_s)
            per_backend[name] = {
                "submissions": len(mine), "failed": sum(not s.ok for s in mine),
                "rate_windows": rate_violations([s.at for s in mine], limits.jobs_per_minute),
                "pending_over": pending_violations(runs, limits.max_pending), "max_pending": self.max_pending[name],
                "qpu_windows": qpu_windows, "max_qpu_s_per_window": round(most_qpu_s, 3)}
        total = sum(figures["rate_windows"] + figures["pending_over"] + figures["qpu_windows"]
                    for figures in per_backend.values())
        return {"violations": total, "backends": per_backend}


def rate_under_backlog(times: list[float], backlog: list[bool]) -> float:
    """Submissions per minute over the gaps that had work waiting: ``times`` are the submissions
    as the backend saw them, ``backlog[i]`` says whether work still waited after the i-th start."""
    ordered = sorted(times)
    gaps = [later - earlier for earlier, later, waiting in zip(ordered, ordered[1:], backlog) if waiting]
    return len(gaps) / sum(gaps) * 60.0 if gaps and sum(gaps) > 0 else 0.0


def rate_violations(starts: list[float], per_minute: float) -> int:
    """Windows of 60 gateway seconds (any alignment) that hold more starts than allowed."""
    allowed = max(1, int(per_minute))
    ordered = sorted(starts)
    return sum(1 for i in range(len(ordered) - allowed) if ordered[i + allowed] - ordered[i] < 60.0 - 1e-9)


def pending_violations(runs: list[tuple[float, float, float]], max_pending: int) -> int:
    """Submissions (start, end, _) that arrived while ``max_pending`` others were still pending."""
    return sum(1 for i, (start, _, _) in enumerate(runs)
               if sum(1 for j, (other, end, _) in enumerate(runs) if j != i and other <= start < end) >= max_pending)


def qpu_window_violations(runs: list[tuple[float, float, float]], limit: float, window_s: float) -> tuple[int, float]:
    """Rolling windows of ``window_s`` in which the QPU seconds of every run that touches the
    window (counted whole) exceed ``limit``: (how many windows, the most seconds in one)."""
    counts = []
    for _, opens, _ in runs:  # the windows that matter start as some run ends
        counts.append(sum(seconds for start, end, seconds in runs if end >= opens and start <= opens + window_s))
    return sum(1 for total in counts if total > limit + 1e-9), max(counts, default=0.0)


@contextlib.contextmanager
def in_process(gateway: Any) -> Iterator[Callable[..., Any]]:
    """``call(method, *args)`` on ``gateway`` (a :class:`~actors.verify.qpu.gateway.QpuGateway`)
    running on an event loop of its own thread, as Ray's actor runs it: hand it to
    :func:`~actors.verify.qpu.gateway.gateway_handler` for a verifier whose sandboxes reach this
    gateway, and its backend, without Ray."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="qvr-qpu-in-process")
    thread.start()

    def call(method: str, *args: Any) -> Any:
        answer = getattr(gateway, method)(*args)
        return asyncio.run_coroutine_threadsafe(answer, loop).result() if asyncio.iscoroutine(answer) else answer

    async def cancel_the_rest() -> None:  # the gateway's schedulers: ended here, not destroyed pending
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield call
    finally:
        asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
