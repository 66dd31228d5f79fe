"""What a person sees on the console: qvr's own lines, and only errors from the libraries.

The root logger takes INFO from everything; the run's log file (pipelines/runs.py) keeps all of
it. The console handler shows qvr's loggers (``qvr.*``) from INFO and every other library's
(qiskit's pass manager, transformers, DeepSpeed, vLLM, py.warnings ...) only from ERROR, unless
``--verbose``. Python warnings become log records (``py.warnings``), so they follow the same rule.

Ray prints its workers' stdout and stderr (actors' library warnings, vLLM's and DeepSpeed's start-up
lines, the raylet's notes on a worker that died) on the driver's console itself.
:func:`keep_ray_off_the_console` hands those lines to the ``ray.workers`` logger instead, so they
land in the run's log file (a line that is a formatted ERROR record still reaches the console), and
does the same for Ray Data's own console handler. A task's real failure reaches the driver as an
exception, not through these lines.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN = "qvr"
WORKERS = "ray.workers"
LOG_FILE_ONLY = {"console": False}
"""``log.info(..., extra=LOG_FILE_ONLY)``: a qvr line for the run's log file, not the console."""
_verbose = False


class ConsoleFilter(logging.Filter):
    """qvr's records from INFO (but those logged with ``extra=LOG_FILE_ONLY``); the libraries' from ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "console", True) is False and record.levelno < logging.WARNING:
            return False
        own = record.name == OWN or record.name.startswith(OWN + ".")
        return own or record.levelno >= logging.ERROR


SELF_PRINTING = ("DeepSpeed",)
"""Libraries whose logger prints with a handler of its own and does not propagate (DeepSpeed's
"Setting accelerator to CPU" at import): a filter on it sends their records below ERROR to the
run's log file instead. A logger filter outlives the library's own set-up, which only adds a
handler when it is imported (whenever that is)."""


class ToTheLogFile(logging.Filter):
    """On a self-printing library's logger: records below ERROR go to the root's handlers (the
    console's own filter keeps them off the console) and not to the library's handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        logging.getLogger().handle(record)
        return False


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced after setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: bool = False) -> None:
    global _verbose
    _verbose = verbose
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in [h for h in root.handlers if getattr(h, "qvr_console", False)]:
        root.removeHandler(handler)  # main() may run more than once in one process (tests)
    console = _Stderr(sys.stderr)
    console.qvr_console = True  # type: ignore[attr-defined]
    console.setFormatter(logging.Formatter(FORMAT))
    if not verbose:
        console.addFilter(ConsoleFilter())
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Writing model shards" bars
    for name in SELF_PRINTING:
        library = logging.getLogger(name)
        for old_filter in [f for f in library.filters if isinstance(f, ToTheLogFile)]:
            library.removeFilter(old_filter)
        if not verbose:
            library.addFilter(ToTheLogFile())
    root.addHandler(console)
    logging.captureWarnings(True)


def keep_ray_off_the_console() -> None:
    """After ``ray.init``, unless ``--verbose``: Ray's workers' output goes to the ``ray.workers``
    logger, and Ray Data's own console handler (execution plans, progress every few seconds) is
    dropped so that its records join qvr's logging; both land in the run's log file."""
    if _verbose:
        return
    route_ray_worker_output()
    import ray.data  # noqa: F401 - configures the "ray.data" logger on import

    data_logger = logging.getLogger("ray.data")
    for handler in [h for h in data_logger.handlers if not isinstance(h, logging.FileHandler)]:
        data_logger.removeHandler(handler)
    data_logger.setLevel(logging.INFO)
    data_logger.propagate = True


def route_ray_worker_output() -> None:
    """Ray's workers' output to the ``ray.workers`` logger instead of the console. Ray has no
    public switch between "print on the driver" and "drop" (``log_to_driver``), so its
    dispatcher's printing handler is replaced."""
    try:
        from ray._private.worker import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # another Ray: its own printing stays
        return
    dispatcher.remove_handler("ray_print_logs")
    dispatcher.remove_handler("qvr_worker_output")
    dispatcher.add_handler("qvr_worker_output", log_worker_lines)


def log_worker_lines(data: dict) -> None:
    """One batch of a Ray worker's lines (``lines``, ``pid``, ``is_err``, ``actor_name``)."""
    logger = logging.getLogger(WORKERS)
    source = data.get("actor_name") or data.get("task_name") or "worker"
    for line in data.get("lines") or []:
        level = logging.ERROR if " ERROR " in line else logging.WARNING if data.get("is_err") else logging.INFO
        logger.log(level, "(%s pid=%s) %s", source, data.get("pid"), line)
