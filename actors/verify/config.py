"""VerifierConfig: how completions are executed and judged."""

from typing import Literal

from pydantic import Field

from actors.config import Config


class VerifierConfig(Config):
    executor: Literal["subprocess"] = "subprocess"
    """How each verification runs. ``subprocess``: a fresh ``python -I`` per verification with a
    clean environment, a private working directory and a wall-clock timeout. It pays the full
    Qiskit import per job (2-4 s) and is the correctness baseline the faster executors are
    measured against."""

    timeout_s: float = Field(60.0, gt=0, le=3600)
    """Wall-clock seconds one verification may take before it is killed (status ``timeout``).
    Qiskit HumanEval's own harness uses 30 s, but its task 100 needs about 40 s on a 2-core
    machine: 60 s is the smallest budget under which every offline-passing QHE task passes."""

    cpus_per_verification: float = Field(1.0, gt=0, le=64)
    """Ray logical CPUs each verification holds. Fractional values let a small machine keep
    other actors schedulable (Ray's CPUs are logical; an idle actor still holds its share)."""

    max_output_bytes: int = Field(16_384, ge=256, le=16 * 1024 * 1024)
    """How much of a child's stderr (its tail) is kept in the verdict."""

    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    """RLIMIT_FSIZE of the child: the largest file it may write, stdout and stderr included."""

    python: str | None = None
    """Interpreter for the children; default: the one running qvr."""
