"""Measures: named numbers the clean checker computes from the candidate's values. A registry.

Where they live, and why (issue 17). A reward that depends on *running* the candidate (does a
statevector simulation work, the fidelity with the reference's state, the circuit's depth) must
not be computed where the candidate ran: a candidate can patch ``Statevector``, Aer or anything
else in its own process. So a measure provider runs in the split checker only, after the tests,
in the clean child that never executed model code: it asks the candidate for values through the
same :class:`~actors.verify.sandbox.harnesses.Candidate` proxies the tests use (a circuit crosses
as QPY and is rebuilt here) and computes every number itself. In the shared mode (and in the
subprocess baseline) no provider runs: the record then has no such measures, and the rewards that
read them score 0 (the verdict says ``isolation: shared``).

Which providers run: those the job asks for in its ``measure_requests`` (provider name -> its
parameters), which travel in the job's hidden frame beside the tests, so the solution child never
sees them (a provider's parameters may hold the task's reference solution). The parent asks for a
provider when a reward that reads it has a weight for the task's family (:func:`requests`): the
default rewards ask for none and pay nothing.

A new provider is one module in this package with one ``@register`` class, plus its import line
at the bottom of this file. Its measures are named ``<provider>.<quantity>``; a provider that
fails reports ``<provider>.error = 1`` and nothing else, never an exception.
"""

from __future__ import annotations

import traceback
from typing import Any

from actors.verify.sandbox.harnesses import Candidate


class Provider:
    """One source of measures. Subclass it, set ``name`` and ``rewards``, decorate with :func:`register`."""

    name = ""
    rewards: tuple[str, ...] = ()
    """The rewards that read this provider's measures: the parent asks for it when one of them has
    a non-zero weight for the task's family."""

    def params(self, task: Any) -> dict[str, Any]:
        """Parent side: what the checker needs from the task (JSON data; hidden from the candidate)."""
        return {}

    def measure(self, params: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> dict[str, float]:
        """Checker side: the measures, computed here from values the candidate handed over as data."""
        raise NotImplementedError


class Absent(Candidate):
    """The candidate as providers see it when its program failed before the tests: it defines nothing."""

    def function(self, name: str) -> Any:
        raise NameError(name)

    def bind(self, namespace: dict[str, Any], name: str) -> None:
        """Nothing: a program that failed hands over no value."""


PROVIDERS: dict[str, Provider] = {}


def register(cls: type[Provider]) -> type[Provider]:
    if not cls.name or cls.name in PROVIDERS:
        raise ValueError(f"measure provider {cls.name!r} has no name or is registered twice")
    PROVIDERS[cls.name] = cls()
    return cls


def requests(task: Any, weights: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Parent side: the providers a job of ``task`` needs under ``weights``, with their parameters."""
    return {name: provider.params(task) for name, provider in PROVIDERS.items()
            if any(weights.get(reward) for reward in provider.rewards)}


def trusted(measures: dict[str, float], isolation: str) -> dict[str, float]:
    """Parent side: a record's measures without any provider's unless the split checker wrote it.
    A shared-mode record comes from the child that ran the candidate, which can forge it; the
    parent never asks for provider measures there, so any it holds are forged."""
    if isolation == "split":
        return measures
    return {name: value for name, value in measures.items() if name.split(".", 1)[0] not in PROVIDERS}


def take(job: dict[str, Any], candidate: Candidate) -> dict[str, float]:
    """Checker side: every requested provider's measures (a failing provider reports ``.error``)."""
    measures: dict[str, float] = {}
    for name, params in (job.get("measure_requests") or {}).items():
        provider = PROVIDERS.get(name)
        if provider is None:
            measures[f"{name}.error"] = 1.0
            continue
        try:
            measures.update({f"{name}.{key}": float(value)
                             for key, value in provider.measure(params or {}, job, candidate).items()})
        except BaseException:  # noqa: BLE001 - a provider never breaks the record
            traceback.print_exc()
            measures[f"{name}.error"] = 1.0
    return measures


# The providers. Each module registers its class on import.
from actors.verify.sandbox.measures import circuit  # noqa: E402,F401,I001
