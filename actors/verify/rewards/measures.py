"""Measures as the parent sees them: where each is taken, which a job asks the checker for, and
the ones the parent takes itself.

A measure provider says where it is taken (``where``):

- ``checker``: in the split checker, the clean child that never ran model code, from values the
  candidate handed over as data (actors/verify/sandbox/measures/, e.g. ``circuit``). The parent
  asks for them in the job's hidden frame (:func:`requests`); a shared-mode record cannot hold
  them (actors/verify/sandbox/measures/registry.py, ``trusted``).
- ``parent``: here, in the verifier's parent process, from what the parent holds itself: the task
  and the model's code as text (parsed, never run), e.g. ``deprecation``
  (actors/verify/rewards/deprecation.py). Any measure a record claims under such a provider's
  name is dropped and the parent's own replaces it (:func:`take`).

A reward names the providers it reads where it registers (``@reward(name, reads=(...))``); a
provider of either kind is taken for a job only when a reward reading it has a weight for the
task's family. A new parent-side measure is one ``@register`` class in a module of the rewards
package (its measures are named ``<provider>.<quantity>``; one that fails reports
``<provider>.error = 1``, never an exception).
"""

from __future__ import annotations

import traceback
from typing import Any

from actors.verify.rewards.registry import READS


class ParentMeasure:
    """A measure provider the parent takes itself. Subclass it, set ``name``, decorate with
    :func:`register`."""

    name = ""
    where = "parent"

    def measure(self, task: Any, code: str | None, config: Any) -> dict[str, float]:
        """The measures (without the ``<name>.`` prefix) of ``code``, the model's extracted code,
        for ``task``; ``config`` is the RewardConfig in force (its rewards' settings). Read the
        task's content (prompt, tests, harness, entry point), not its metadata: the verdict cache
        keys a verdict on that content (actors/verify/cache/key.py)."""
        raise NotImplementedError


PARENT_MEASURES: dict[str, ParentMeasure] = {}


def register(cls: type[ParentMeasure]) -> type[ParentMeasure]:
    from actors.verify.sandbox.measures.registry import PROVIDERS

    if not cls.name or cls.name in PARENT_MEASURES or cls.name in PROVIDERS:
        raise ValueError(f"measure provider {cls.name!r} has no name or is registered twice")
    PARENT_MEASURES[cls.name] = cls()
    return cls


def where(name: str) -> str:
    """``checker`` or ``parent``: where the measures of provider ``name`` are taken."""
    from actors.verify.sandbox.measures.registry import PROVIDERS

    provider = PROVIDERS.get(name) or PARENT_MEASURES.get(name)
    if provider is None:
        raise ValueError(f"unknown measure provider {name!r}; registered: {sorted({*PROVIDERS, *PARENT_MEASURES})}")
    return provider.where


def wanted(weights: dict[str, float]) -> set[str]:
    """The providers read by the rewards that have a non-zero weight in ``weights``."""
    return {provider for name, weight in weights.items() if weight for provider in READS.get(name, ())}


def requests(task: Any, weights: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The checker's providers a job of ``task`` needs under ``weights``, each with the parameters
    it takes from the task (they travel hidden with the tests)."""
    from actors.verify.sandbox.measures.registry import PROVIDERS

    needed = wanted(weights)
    unknown = sorted(needed - set(PROVIDERS) - set(PARENT_MEASURES))
    if unknown:
        raise ValueError(f"rewards read unknown measure providers {unknown}; "
                         f"registered: {sorted({*PROVIDERS, *PARENT_MEASURES})}")
    return {name: provider.params(task) for name, provider in PROVIDERS.items() if name in needed}


def take(measures: dict[str, float], task: Any, code: str | None, config: Any) -> dict[str, float]:
    """A record's ``measures`` with the parent's own: any measure the record claims under a
    parent provider's name is dropped, and the parent providers read by a reward weighted for the
    task's family are taken here (nothing else is computed)."""
    own = {name: value for name, value in measures.items() if name.split(".", 1)[0] not in PARENT_MEASURES}
    for name in sorted(wanted(config.weights_for(task.family)) & set(PARENT_MEASURES)):
        try:
            own.update({f"{name}.{key}": float(value)
                        for key, value in PARENT_MEASURES[name].measure(task, code, config).items()})
        except Exception:  # noqa: BLE001 - a provider never breaks the verdict
            traceback.print_exc()
            own[f"{name}.error"] = 1.0
    return own
