"""The measure provider registry: what a provider is (:class:`Provider`), the registered providers,
what the checker takes (:func:`take`) and which of a record's measures the parent trusts
(:func:`trusted`). It imports none of the providers: each registers itself, and the package loads
them.
"""

from __future__ import annotations

import traceback
from typing import Any

from actors.verify.sandbox.harnesses.registry import Candidate


class Provider:
    """One source of measures. Subclass it, set ``name``, decorate with :func:`register`."""

    name = ""
    where = "checker"
    """Where its measures are taken: in the split checker, the clean child (the parent's own
    measures, taken from what it holds, register in actors/verify/rewards/measures.py)."""

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
