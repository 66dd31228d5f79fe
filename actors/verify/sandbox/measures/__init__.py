"""Measures: named numbers the clean checker computes from the candidate's values. A registry.

Where they live, and why (issue 17). A reward that depends on *running* the candidate (does a
statevector simulation work, the fidelity with the reference's state, the circuit's depth) must
not be computed where the candidate ran: a candidate can patch ``Statevector``, Aer or anything
else in its own process. So a measure provider runs in the split checker only, after the tests,
in the clean child that never executed model code: it asks the candidate for values through the
same :class:`~actors.verify.sandbox.harnesses.registry.Candidate` proxies the tests use (a circuit crosses
as QPY and is rebuilt here) and computes every number itself. In the shared mode (and in the
subprocess baseline) no provider runs: the record then has no such measures, and the rewards that
read them score 0 (the verdict says ``isolation: shared``).

Which providers run: those the job asks for in its ``measure_requests`` (provider name -> its
parameters), which travel in the job's hidden frame beside the tests, so the solution child never
sees them (a provider's parameters may hold the task's reference solution). The parent asks for a
provider when a reward that reads it has a weight for the task's family: a reward names the
providers it reads where it registers (``@reward(name, reads=(...))``), and the parent's
:func:`actors.verify.rewards.measures.requests` turns that into a job's requests. A provider knows
nothing of the rewards. The default rewards ask for none and pay nothing. These providers say
``where = "checker"``; the parent takes measures of its own (actors/verify/rewards/measures.py,
``where = "parent"``: e.g. the deprecation findings, read off the code's text).

A new provider is one module in this package with one ``@register`` class
(:mod:`~actors.verify.sandbox.measures.registry`), plus its name in the import line at the bottom
of this file. Its measures are named ``<provider>.<quantity>``; a provider that
fails reports ``<provider>.error = 1`` and nothing else, never an exception.

Beside the providers, ``quasar/`` holds QUASAR's measures of an OpenQASM 3 program: not a
provider (no request asks for them), the ``qasm`` harness computes them as its tests.
"""

# The providers. Each module registers its class on import.
from actors.verify.sandbox.measures import circuit  # noqa: F401
