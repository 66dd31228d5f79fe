"""``unittest``: the candidate's program, then a ``unittest.TestCase`` class; each test method is
one test, and its outcome is reported by name."""

from __future__ import annotations

import ast
import builtins
import unittest
from typing import Any

from actors.verify.sandbox.harnesses.registry import Candidate, Harness, record, register


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


def free_names(tests: str) -> list[str]:
    """Names the tests read but never bind: what they expect the candidate's program to define."""
    tree = ast.parse(tests)
    bound, loaded = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loaded.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return sorted({name for name in loaded if name not in bound and not hasattr(builtins, name)})


@register
class UnitTests(Harness):
    name = "unittest"

    def count_tests(self, tests: str) -> int:
        try:
            tree = ast.parse(tests)
        except SyntaxError:
            return 1
        methods = [node for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef)
                   for node in cls.body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")]
        return max(len(methods), 1)

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        before = set(namespace)
        exec(compile(tests, "<tests>", "exec"), namespace)
        cases = [value for name, value in namespace.items()
                 if name not in before and isinstance(value, type) and issubclass(value, unittest.TestCase)]
        suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(case) for case in cases)
        total = suite.countTestCases()
        if total == 0:
            return record(0, 0, {}, error="the tests define no test method")
        result = _OutcomeResult()
        suite.run(result)
        passed = sum(1 for outcome in result.outcomes.values() if outcome == "passed")
        # A method that never reported (the suite was cut short) stays missing, hence not passed.
        failures = "".join(f"{test.id()}:\n{text}" for test, text in result.failures + result.errors)
        return record(passed, total, result.outcomes, failures=failures[-8192:])

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        for name in free_names(job["tests"]):
            candidate.bind(namespace, name)  # a name it lacks meets a NameError, as in one process
