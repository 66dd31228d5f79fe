"""QpuConfig: the QPU gateway's backends, limits, retries and token source (``verifier.qpu``).
Apart from the gateway so that a job's config reads it without importing the gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from actors.config import Config


class QpuLimits(Config):
    max_pending: int = Field(3, ge=1, le=1000)
    """Jobs in flight at the backend at once, retries included (IBM's open plan allows 3 pending
    jobs)."""

    jobs_per_minute: float = Field(30.0, gt=0)
    """Submissions per rolling minute, retries included: starts take evenly spaced slots
    (60/jobs_per_minute apart, so bursts are smoothed), and a sliding-window count of the
    submissions the backend acknowledged guarantees that no window of any alignment ever holds
    more than ``int(jobs_per_minute)`` at the backend."""

    qpu_seconds_per_window: float = Field(600.0, gt=0)
    """QPU (run) seconds allowed per rolling ``window_s``, failed runs included. A job starts only
    if the seconds used in the window, plus the longest recent run reserved for it and for each
    job in flight, fit."""

    window_s: float = Field(600.0, gt=0)
    """The rolling window of ``qpu_seconds_per_window``."""

    max_circuits: int = Field(300, ge=1)
    """Most circuits (pubs) in one job."""

    max_shots: int = Field(100_000, ge=1)
    """Most shots per pub."""


class QpuConfig(Config):
    backend_kind: Literal["fake", "ibm"] = "fake"
    """``fake``: qiskit-ibm-runtime's fake backends with noise, run locally. ``ibm``: real
    hardware through QiskitRuntimeService."""

    backends: list[str] = ["ibm_manila", "ibm_kyoto", "ibm_fez"]
    """Backends offered to sandboxes (IBM names; a fake backend stands in for each)."""

    least_busy: str = "ibm_manila"
    """What ``least_busy()`` answers with fake backends."""

    limits: QpuLimits = QpuLimits()
    """Per-backend limits, shared by every caller."""

    noise: bool = True
    """Fake backends simulate with their noise models (False: ideal simulation, for load tests)."""

    simulated_latency_s: float = Field(0.0, ge=0)
    """Extra queue latency per fake job (gateway seconds)."""

    time_scale: float = Field(1.0, gt=0)
    """Gateway seconds per real second (tests and benchmarks run scaled time)."""

    max_retries: int = Field(4, ge=0, le=20)
    """Retries of a transient backend error (exponential backoff with jitter); each retry queues
    again and counts against the limits like any submission."""

    backoff_s: float = Field(2.0, gt=0)
    """First retry delay (gateway seconds); doubles each retry."""

    token_env: str = "QVR_IBM_TOKEN"
    """Environment variable holding the IBM Quantum token (``ibm`` backends only)."""

    token_file: str | None = None
    """A file holding the token instead (read only inside the gateway)."""

    instance: str | None = None
    """IBM Quantum instance (CRN) for ``ibm`` backends."""

    resource: str | None = None
    """A custom Ray resource the gateway actor asks for (one unit), so that it runs only on the node
    that advertises it: ``qpu_gateway`` on KubeRay is the qpu-gateway worker group of
    platform/kuberay/raycluster.yaml, the only pod that mounts the IBM token (set ``token_file`` to
    its path there). None: wherever Ray places it (a local Ray, fake backends)."""

    transient_failure_every: int = Field(0, ge=0)
    """Fault injection for tests: every Nth fake run raises a transient error (0 = never)."""

    always_fail: bool = False
    """Fault injection for tests: every fake run raises a permanent error."""

    budget_s: float | None = Field(None, ge=0)
    """QPU seconds one run may spend in all (None: no budget). Real QPU time is scarce and billed:
    IBM's open plan gives 10 minutes a month (``budget_s: 600`` spends all of it), and one training
    run can otherwise use it up in its first steps. The gateway stops submitting a run's jobs once
    what the run has spent, plus the job's reserved estimate (the longest recent run on its
    backend), would exceed it; the jobs it refuses end as ``over_budget`` verdicts, which no reward
    scores, GRPO leaves out and evaluations count apart. Failed tries count (the backend ran them).
    The gateway keeps the record: a restarted gateway starts from 0."""

    budget_per_step_s: float | None = Field(None, ge=0)
    """QPU seconds one training step's samples may spend (GRPO; None: no per-step budget), on top
    of ``budget_s``: spreads a run's QPU time over its steps instead of letting the first ones
    take it all (10 minutes a month over a 100-step run: ``budget_per_step_s: 6``). Jobs without a
    step (evaluations, ``qvr verify``) draw on ``budget_s`` only."""

    run_id: str | None = Field(None, exclude=True)
    """The run whose budget this verifier's QPU jobs draw on. Every job sets it to its run
    directory; give several runs the same id to share one budget. None (a verifier used outside a
    job): one unnamed run. Not written to config.yaml: it names the run, it changes no verdict."""
