"""VerdictCache: the pool's view of the store: keys, lookups, what is kept, and the jobs in flight
whose identical twins wait for them (single flight)."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from actors.contracts import Verdict
from actors.verify.cache.config import CacheConfig
from actors.verify.cache.key import cacheable, keeps, verdict_key
from actors.verify.cache.store import open_store

if TYPE_CHECKING:
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob

log = logging.getLogger("qvr.cache")


class VerdictCache:
    def __init__(self, config: CacheConfig, verifier: VerifierConfig) -> None:
        self.path = config.resolved_path()
        self.verifier = verifier
        self.store = open_store(self.path)
        self.flights: dict[str, list[Any]] = {}
        """Key -> the waiters (whatever the pool parks) of a job with that key now running."""
        self.hits = 0
        """Lookups the store answered."""

    def key(self, job: VerificationJob) -> str | None:
        """The job's key, or None where its verdict is not kept (see :func:`cacheable`)."""
        if self.store is None or job.code is None or not cacheable(job):
            return None
        return verdict_key(job, self.verifier)

    def lookup(self, key: str, job: VerificationJob) -> Verdict | None:
        try:
            stored = self.store.get(key) if self.store is not None else None
        except sqlite3.Error as error:
            self._give_up(error)
            return None
        if stored is None:
            return None
        self.hits += 1
        return answer_for(stored, job)

    def remember(self, key: str, verdict: Verdict) -> None:
        if self.store is None or not keeps(verdict):
            return
        try:
            self.store.put(key, verdict)
        except sqlite3.Error as error:
            self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        log.warning("the verdict cache at %s failed (%s): verifying without it from now on", self.path, error)
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def answer_for(verdict: Verdict, job: VerificationJob) -> Verdict:
    """A kept (or a twin's) verdict as the answer to ``job``: its ids, marked ``cached``."""
    return dataclasses.replace(verdict, task_id=job.task.task_id, sample_idx=job.sample_idx, cached=True)
