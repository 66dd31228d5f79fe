"""SandboxConfig: the limits and isolation of each verification child.

The zygote reads it (its settings arrive as data, validated here), so it lives with the sandbox:
nothing the sandbox imports reaches the parent's machinery (rewards, the QPU gateway, the pool).
:class:`~actors.verify.config.VerifierConfig` composes it as ``verifier.sandbox``.
"""

import importlib

from pydantic import Field, field_validator

from actors.config import Config


def load_plugins(modules: list[str]) -> None:
    """Import plugin modules (``verifier.sandbox.plugins``): each registers its harnesses or
    measure providers on import (a module already imported is not run again)."""
    for module in modules:
        importlib.import_module(module)


class SandboxConfig(Config):
    """Limits and isolation of each verification child (docs/verification.md)."""

    memory_mb: int = Field(2048, ge=64, le=1024 * 1024)
    """Address space the child may add on top of the zygote's (RLIMIT_AS = zygote VmSize + this)."""

    cpu_s: int = Field(120, ge=1, le=86400)
    """CPU seconds (RLIMIT_CPU soft limit; the hard limit, one second later, is SIGKILL)."""

    disk_mb: int = Field(64, ge=1, le=64 * 1024)
    """Size of the private tmpfs that is the child's working directory (and /tmp)."""

    max_file_mb: int = Field(32, ge=1, le=64 * 1024)
    """Largest file the child may write (RLIMIT_FSIZE)."""

    max_open_files: int = Field(256, ge=32, le=65536)
    """RLIMIT_NOFILE."""

    max_processes: int = Field(64, ge=4, le=4096)
    """Processes and threads the child's user may run (RLIMIT_NPROC): what stops a fork bomb."""

    max_output_bytes: int = Field(16384, ge=256, le=16 * 1024 * 1024)
    """How much of stdout and of stderr (each, their tail) is kept in the verdict."""

    sandbox_uid_base: int = Field(200000, ge=1000, le=2**31 - 70000)
    """When the verifier runs as root, each zygote's children run as host uid base + (zygote pid
    mod 65536): distinct per zygote on a host, so RLIMIT_NPROC (which root ignores) counts only
    that zygote's children, and root-only files stay unreadable. Keep base .. base + 65535 free
    of real users."""

    hidden_paths: list[str] = []
    """Host paths covered inside the sandbox wherever they fall inside what its file view shows
    (task files with hidden tests and reference solutions, run directories, token files). The
    view is an allow-list (actors/verify/sandbox/isolation.py): the interpreter, its packages
    and a few system folders; anything else, the project included, is absent anyway."""

    allow_weaker_isolation: bool = False
    """Run even where the kernel lacks a feature (namespaces, seccomp): the verifier then says
    which, once. Off by default: the verifier refuses to start instead."""

    plugins: list[str] = []
    """Modules outside qvr's packages that register harnesses or measure providers (a task family
    kept elsewhere), by import path. Each zygote imports them when it starts, before it warms and
    forks (a child's file view holds none of them), and so does the verifier's parent, whose
    extraction and test counts ask the same registry (validating this setting imports them: a
    module that cannot be imported is a config error). A plugin module imports only
    ``actors.verify.sandbox``: it runs in the zygote. The subprocess baseline of
    ``qvr bench verifier`` knows the package's own harnesses only."""

    @field_validator("plugins")
    @classmethod
    def _importable(cls, plugins: list[str]) -> list[str]:
        try:
            load_plugins(plugins)
        except ImportError as error:
            raise ValueError(f"cannot import a plugin: {error}") from None
        return plugins
