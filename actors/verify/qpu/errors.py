"""The QPU gateway's errors: what its runners raise and what a caller of the gateway sees."""


class TransientQpuError(RuntimeError):
    """A backend error worth retrying (queue full, network, 5xx)."""


class QpuError(RuntimeError):
    """A job the gateway could not run, with why."""

    qpu_s: float = 0.0
    """QPU seconds the job's tries used before it ended so (the gateway sets it; it survives Ray's
    pickling as instance state)."""


class QpuBudgetExceeded(QpuError):
    """The gateway did not submit a job: its run (or its training step) would go over its QPU
    budget. Only the gateway raises it; the verifier's parent sees it on its own channel to the
    gateway and makes the job's verdict ``over_budget`` (actors/verify/qpu/budget.py)."""
