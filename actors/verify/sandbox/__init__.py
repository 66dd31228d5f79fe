"""What runs inside the sandbox: the zygote, its children, the test harnesses and the codecs.

Everything here is imported by the zygote before it forks (see ``zygote.preload``), so a
sandboxed child never reads a file of qvr: its file view holds the interpreter and the
third-party packages, nothing of the project. The driver side (Verifier, ForkServer, pool,
gateway) lives one level up and imports from here only the protocol (frames) and the harness
facts it needs to score a verdict.
"""
