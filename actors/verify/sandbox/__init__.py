"""What runs inside the sandbox: the zygote, its children, the test harnesses, the codecs and the
measures, with the sandbox's own config (``config``: SandboxConfig).

Everything here is imported by the zygote before it forks (see ``warm.preload``), so a
sandboxed child never reads a file of qvr: its file view holds the interpreter and the
third-party packages, nothing of the project. The driver side (Verifier, ForkServer, pool,
gateway, rewards) lives one level up and imports from here what it needs (the protocol, the
harness facts, the registries, SandboxConfig); nothing here imports the driver side, not even
inside a function (an import-linter contract in pyproject.toml).
"""
