"""Runs a job's tests, inside the verification child: the common part of every harness.

The parent sends one job; the child runs it and writes one JSON record to the result channel (a
dedicated file descriptor, never stdout). A missing or unreadable record means the child died
before the tests finished, so ``os._exit(0)``, ``sys.exit`` and crashes can never count as a pass.
The formats themselves (qhe, unittest, program, ...) are the registry in ``harnesses/``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from actors.verify.sandbox.harnesses.registry import get, record
from actors.verify.sandbox.provenance import recording

RESULT_FD_ENV = "QVR_RESULT_FD"


def count_tests(harness: str, tests: str) -> int:
    """How many tests a task's test source holds (see Harness.count_tests)."""
    return get(harness).count_tests(tests)


def guarded(harness: str, tests: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``body()``'s record; any exit or exception before the tests finished is a failure (0 passed)."""
    total_if_broken = count_tests(harness, tests)
    try:
        return body()
    except SystemExit as exit_:
        if get(harness).clean_exit_passes and exit_.code in (0, None):
            return record(1, 1, {"program": "passed"})
        return record(0, total_if_broken, {}, error=f"SystemExit({exit_.code!r}) before the tests finished")
    except BaseException as error:  # noqa: BLE001 - any failure of untrusted code is a failed test
        traceback.print_exc()
        return record(0, total_if_broken, {}, error=f"{type(error).__name__}: {error}"[:2000])


def fresh_namespace() -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": __builtins__}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Shared mode: the solution and then its tests in this one process (never raises). The record
    says which simulators they ran (``provenance``: sandbox/provenance.py)."""
    harness, tests = get(job["harness"]), job["tests"]
    namespace = fresh_namespace()

    def body() -> dict[str, Any]:
        exec(compile(harness.solution(job["prompt"], job["completion"]), "<solution>", "exec"), namespace)
        return harness.run(namespace, tests, job["entry_point"])

    with recording() as provenance:
        record = guarded(harness.name, tests, body)
    return {**record, "provenance": provenance}


def write_record(fd: int, record: dict[str, Any]) -> None:
    """The record, whole, on the result channel (the reader drains it concurrently)."""
    view = memoryview(json.dumps(record).encode())
    while view:
        view = view[os.write(fd, view):]


def main() -> None:
    """Subprocess entry point: job JSON on stdin, record JSON on the result descriptor."""
    result_fd = int(os.environ.pop(RESULT_FD_ENV))
    write_record(result_fd, run_job(json.loads(sys.stdin.read())))
    # Skip interpreter teardown: threads or atexit hooks left by the solution must not change the record.
    os._exit(0)


if __name__ == "__main__":
    main()
