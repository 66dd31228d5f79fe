"""The pool's Ray metrics (Prometheus): queue depth, live workers, verifications finished."""

from __future__ import annotations


class PoolMetrics:
    """Ray metrics (Prometheus): queue depth, workers, verifications; inert where Ray has none."""

    def __init__(self) -> None:
        try:
            from ray.util import metrics

            self._queue = metrics.Gauge("qvr_verifier_queue_depth", "verifications waiting for a slot")
            self._workers = metrics.Gauge("qvr_verifier_workers", "live verifier workers")
            self._done = metrics.Counter("qvr_verifications_total", "verifications finished")
        except Exception:  # noqa: BLE001
            self._queue = self._workers = self._done = None

    def queue(self, depth: int) -> None:
        if self._queue:
            self._queue.set(depth)

    def workers(self, count: int) -> None:
        if self._workers:
            self._workers.set(count)

    def verified(self) -> None:
        if self._done:
            self._done.inc()
