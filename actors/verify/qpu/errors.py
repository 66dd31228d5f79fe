"""The QPU gateway's errors: what its runners raise and what a caller of the gateway sees."""


class TransientQpuError(RuntimeError):
    """A backend error worth retrying (queue full, network, 5xx)."""


class QpuError(RuntimeError):
    """A job the gateway could not run, with why."""
