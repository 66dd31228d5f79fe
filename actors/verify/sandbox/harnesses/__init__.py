"""Test formats ("harnesses"): how a task's hidden tests judge a candidate. A registry.

A harness says what runs as the candidate's program (the model's code, or the prompt it
continues), how many tests a task's test source holds, how the tests run against a namespace that
holds the candidate's names, and, in split mode, which of the candidate's names the clean
checker binds (as proxies whose values cross as data); and on both sides of the sandbox's wall,
which code of a model's answer it runs (``extract``, asked by the parent's extract.py) and what
the zygote warms for it before it forks (``warm``). A new harness is one module in this package
with one ``@register`` class (:mod:`~actors.verify.sandbox.harnesses.registry`), plus its name in
the import line at the bottom of this file (or, kept outside qvr, a module named in
``verifier.sandbox.plugins``). The zygote finds them through this registry, which lives in the
sandbox: it never imports the parent's code to learn a harness.

Every harness returns the same *record*: ``tests_passed``, ``tests_total``, ``outcomes`` (test
id -> passed | failed | error | skipped), ``measures`` (name -> number: graded quantities the
checker computed, e.g. a distance between distributions), ``error``, ``failures``. Rewards read
the record (actors/verify/rewards/); nothing is ever parsed from what the candidate printed.
"""

# The harnesses. Each module registers its class on import.
from actors.verify.sandbox.harnesses import program, qasm, qhe, qhe_hard, unittests  # noqa: F401
