"""PoolConfig: how verification spreads over Ray (workers, slots, batches, backpressure, health
checks, autoscaling), the ``pool:`` section of every job that verifies. It lives apart from
:class:`~actors.verify.pool.pool.VerifierPool`: a job reads and validates it when it loads its config,
and imports the pool only when it verifies.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from actors.config import Config
from actors.verify.cache.config import CacheConfig

AUTOSCALE_KNOBS = ("min_workers", "max_workers", "scale_up_backlog_per_slot", "scale_down_idle_s")


class PoolConfig(Config):
    """How verification spreads over Ray: the one sizing vocabulary of every job that verifies."""

    workers: int = Field(1, ge=1, le=10_000)
    """Verifier workers (Ray actors) at start; the pool's size while ``autoscale`` is off."""

    slots_per_worker: int = Field(1, ge=1, le=512)
    """Sandbox slots (warm zygotes: verifications at once) per worker."""

    cpus_per_slot: float = Field(1.0, gt=0, le=64)
    """Ray logical CPUs a worker holds per slot. Fractional values keep other actors (and Ray Data
    tasks) schedulable on a small machine: an idle worker still holds its share."""

    use_verifier_resource: bool = False
    """Ask for the custom resource ``verifier`` (one unit per slot), so workers land only on
    verifier nodes."""

    request_capacity: bool = True
    """While some of its workers wait for a node with room, ask Ray's autoscaler for room for all
    of them (``ray.autoscaler.sdk.request_resources``: one bundle per worker, its CPUs and, with
    ``use_verifier_resource``, its ``verifier`` slots), so a KubeRay cluster adds verifier pods at
    once rather than when its demand scan notices. A request stays in force until replaced:
    the pool withdraws it once every worker has started, and at close."""

    batch_size: int = Field(4, ge=1, le=10_000)
    """Jobs per call to a worker. A job re-run after its worker was lost goes alone, to an idle
    worker, with nothing queued behind it."""

    batches_per_worker: int = Field(2, ge=1, le=64)
    """Calls in flight per worker (the rest waits in the pool's queue)."""

    max_queued: int = Field(256, ge=1)
    """Jobs taken from the input but not yet sent to a worker (those waiting for their task's
    isolation calibration included): beyond this the pool stops reading its input (backpressure
    on the producer)."""

    health_check_s: float = Field(10.0, gt=0, le=3600)
    """How often a started worker is pinged; one that does not answer within this many seconds is
    replaced and its jobs re-run. Pings are answered on a thread of their own, so a worker busy
    with a long batch still answers."""

    health_grace_s: float = Field(300.0, gt=0, le=86400)
    """Seconds a new worker has to answer its first ping: it answers nothing until its
    constructor has started one zygote per slot (Qiskit imports and warm-up: seconds, minutes on
    a loaded machine; a zygote that has not started in 180 s fails the worker by itself) or
    while it waits for a node with room (a cluster autoscaler adding one). Jobs go only to
    workers that have answered; one that has not by then is replaced (or, if the pool's
    autoscaler added it, given up)."""

    max_attempts: int = Field(3, ge=1, le=20)
    """Tries of a job whose worker was lost under it (died, stopped answering, or held a batch far
    past its jobs' timeouts); after the last it comes out as an ``error`` verdict whose reason
    names the attempts. Workers that die before answering this many times in a row end the call
    with an error instead (they cannot start: the sandbox, the image)."""

    autoscale: bool = False
    """Grow with the backlog and shrink when idle, within min_workers..max_workers. Off, the pool
    keeps ``workers`` workers (``resize`` still changes it by hand) and the four knobs below must
    stay at their defaults."""

    min_workers: int = Field(1, ge=0, le=10_000)
    """Fewest workers the autoscaler keeps (autoscale only)."""

    max_workers: int = Field(4, ge=1, le=10_000)
    """Most workers the autoscaler starts (autoscale only)."""

    scale_up_backlog_per_slot: float = Field(8.0, gt=0)
    """Add a worker when the queued jobs per slot exceed this and every worker has started
    (autoscale only)."""

    scale_down_idle_s: float = Field(30.0, gt=0)
    """Retire a worker that had nothing to do for this long (autoscale only)."""

    cache: CacheConfig = CacheConfig()
    """The verdict cache the pool consults before a job reaches a worker (actors/verify/cache)."""

    @model_validator(mode="after")
    def _no_ignored_settings(self) -> PoolConfig:
        if not self.autoscale:
            changed = [name for name in AUTOSCALE_KNOBS if getattr(self, name) != type(self).model_fields[name].default]
            if changed:
                raise ValueError(f"pool.{changed[0]}={getattr(self, changed[0])} only applies with pool.autoscale=true; "
                                 "a fixed-size pool has pool.workers workers")
        elif not self.min_workers <= self.workers <= self.max_workers:
            raise ValueError(f"with pool.autoscale=true, pool.workers ({self.workers}) must lie within "
                             f"pool.min_workers..pool.max_workers ({self.min_workers}..{self.max_workers})")
        return self
