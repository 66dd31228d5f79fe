"""CacheConfig: the verdict cache of a job's pool (``pool.cache``)."""

from __future__ import annotations

import os
from pathlib import Path

from actors.config import Config

CACHE_DIR_ENV = "QVR_CACHE_DIR"
"""Where the default store lies when ``path`` is not set (else ``$XDG_CACHE_HOME/qvr`` or ``~/.cache/qvr``)."""


class CacheConfig(Config):
    """Verdicts kept by content and answered again without running (actors/verify/cache)."""

    enabled: bool = True
    """Answer a job whose verdict is known without running it, and run identical jobs in flight at
    once only once. A verdict is kept only when it cannot vary between runs: passed or failed, on a
    task with no QPU and no noisy backend (see :func:`actors.verify.cache.key.cacheable`); timeouts,
    kills and infrastructure errors always run again. The same policy, sampled G times, repeats
    itself: 42% of the quickstart SFT policy's completions are exact duplicates (issue 30)."""

    path: str | None = None
    """The sqlite file. Default: ``verdicts.sqlite`` in ``$QVR_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qvr``, else ``~/.cache/qvr``: shared by every run of the user on this node.
    On a cluster it lies on the node of the job's driver (see docs/verification.md). Never inside
    what a sandbox sees: the pool hides its folder from every sandbox."""

    def resolved_path(self) -> Path:
        if self.path:
            return Path(self.path).expanduser().resolve()
        folder = os.environ.get(CACHE_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qvr"
        return Path(folder).expanduser().resolve() / "verdicts.sqlite"

    def here(self) -> CacheConfig:
        """This config with its path resolved in the calling process (the job's driver), for a pool
        that runs in another process: the producer actor then opens the driver's store."""
        return self.model_copy(update={"path": str(self.resolved_path())})
