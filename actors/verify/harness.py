"""The test formats, executed inside the verification child.

The parent sends one job as JSON on stdin; the child runs it and writes one JSON record to the
result channel (a dedicated file descriptor, never stdout). A missing or unreadable record means
the child died before the tests finished, so ``os._exit(0)``, ``sys.exit`` and crashes can never
count as a pass.

Formats (``Task.harness``):
- ``qhe``: prompt + completion + test, then ``check(entry_point)``: one test.
- ``unittest``: program + a ``unittest.TestCase`` class; each test method is one test.
- ``program``: the program must run to the end without an exception (``sys.exit(0)`` included).
"""

from __future__ import annotations

import ast
import json
import os
import sys
import traceback
import unittest
from collections.abc import Callable
from typing import Any

RESULT_FD_ENV = "QVR_RESULT_FD"


def build_sources(harness: str, prompt: str, completion: str, tests: str) -> tuple[str, str]:
    """(solution, tests) sources for a harness. QHE's completion continues its prompt."""
    if harness == "qhe":
        return prompt + completion, tests
    if harness in ("unittest", "program"):
        return completion, tests
    raise ValueError(f"harness {harness!r} is not supported by this executor (qhe, unittest, program)")


def count_tests(harness: str, tests: str) -> int:
    """How many tests a task's test source holds: test methods for ``unittest``, else one.

    Read from the source (not from a run) so that a solution that crashes before the tests load
    still scores 0 of the real total."""
    if harness != "unittest":
        return 1
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return 1
    methods = [node for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef)
               for node in cls.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")]
    return max(len(methods), 1)


def _run_qhe(namespace: dict[str, Any], tests: str, entry_point: str) -> dict[str, Any]:
    exec(compile(tests, "<tests>", "exec"), namespace)
    if entry_point not in namespace:
        return {"tests_passed": 0, "tests_total": 1, "outcomes": {"check": "error"},
                "error": f"entry point {entry_point!r} is not defined"}
    namespace["check"](namespace[entry_point])
    return {"tests_passed": 1, "tests_total": 1, "outcomes": {"check": "passed"}, "error": None}


class _OutcomeResult(unittest.TestResult):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: unittest.TestCase) -> None:
        self.outcomes[test.id()] = "passed"

    def addFailure(self, test, err) -> None:  # noqa: ANN001 - unittest's signature
        super().addFailure(test, err)
        self.outcomes[test.id()] = "failed"

    def addError(self, test, err) -> None:  # noqa: ANN001
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test, reason) -> None:  # noqa: ANN001
        self.outcomes[test.id()] = "skipped"


def _run_unittest(namespace: dict[str, Any], tests: str) -> dict[str, Any]:
    before = set(namespace)
    exec(compile(tests, "<tests>", "exec"), namespace)
    cases = [value for name, value in namespace.items()
             if name not in before and isinstance(value, type) and issubclass(value, unittest.TestCase)]
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(case) for case in cases)
    total = suite.countTestCases()
    if total == 0:
        return {"tests_passed": 0, "tests_total": 0, "outcomes": {}, "error": "the tests define no test method"}
    result = _OutcomeResult()
    suite.run(result)
    passed = sum(1 for outcome in result.outcomes.values() if outcome == "passed")
    # A method that never reported (the suite was cut short) stays missing, hence not passed.
    failures = "".join(f"{test.id()}:\n{text}" for test, text in result.failures + result.errors)
    return {"tests_passed": passed, "tests_total": total, "outcomes": result.outcomes, "error": None,
            "failures": failures[-8192:]}


def run_tests(harness: str, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
    """Run a task's tests against a namespace that holds the solution's names."""
    if harness == "program":
        return {"tests_passed": 1, "tests_total": 1, "outcomes": {"program": "passed"}, "error": None}
    if harness == "qhe":
        return _run_qhe(namespace, tests, entry_point)
    return _run_unittest(namespace, tests)


def guarded(harness: str, tests: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``body()``'s record; any exit or exception before the tests finished is a failure (0 passed)."""
    total_if_broken = count_tests(harness, tests)
    try:
        return body()
    except SystemExit as exit_:
        if harness == "program" and exit_.code in (0, None):
            return {"tests_passed": 1, "tests_total": 1, "outcomes": {"program": "passed"}, "error": None}
        return {"tests_passed": 0, "tests_total": total_if_broken, "outcomes": {},
                "error": f"SystemExit({exit_.code!r}) before the tests finished"}
    except BaseException as error:  # noqa: BLE001 - any failure of untrusted code is a failed test
        traceback.print_exc()
        return {"tests_passed": 0, "tests_total": total_if_broken, "outcomes": {},
                "error": f"{type(error).__name__}: {error}"[:2000]}


def fresh_namespace() -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": __builtins__}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Shared mode: the solution and then its tests in this one process (never raises)."""
    harness = job["harness"]
    solution, tests = build_sources(harness, job["prompt"], job["completion"], job["tests"])
    namespace = fresh_namespace()

    def body() -> dict[str, Any]:
        exec(compile(solution, "<solution>", "exec"), namespace)
        return run_tests(harness, namespace, tests, job["entry_point"])

    return guarded(harness, tests, body)


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
