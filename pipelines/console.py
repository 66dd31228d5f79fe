"""What a person sees on the console: qvr's own lines, and only errors from the libraries.

The root logger takes INFO from everything; the run's log file (pipelines/runs.py) keeps all of
it. The console handler shows qvr's loggers (``qvr.*``) from INFO and every other library's
(qiskit's pass manager, transformers, DeepSpeed, vLLM, py.warnings ...) only from ERROR, unless
``--verbose``. Python warnings become log records (``py.warnings``), so they follow the same rule.
Output of Ray's workers reaches the console through Ray itself, not through this handler.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN = "qvr"


class ConsoleFilter(logging.Filter):
    """qvr's records from INFO; the libraries' from ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == OWN or record.name.startswith(OWN + ".")
        return own or record.levelno >= logging.ERROR


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced after setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: bool = False) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in [h for h in root.handlers if getattr(h, "qvr_console", False)]:
        root.removeHandler(handler)  # main() may run more than once in one process (tests)
    console = _Stderr(sys.stderr)
    console.qvr_console = True  # type: ignore[attr-defined]
    console.setFormatter(logging.Formatter(FORMAT))
    if not verbose:
        console.addFilter(ConsoleFilter())
    root.addHandler(console)
    logging.captureWarnings(True)
