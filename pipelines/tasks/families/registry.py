"""The task-family registry of the pipelines layer: what a family brings to the jobs.

A task family is a few modules, one in each layer it touches, each found through its layer's
registry. Here, in the pipelines layer, a family registers one :class:`Family`:

- ``synth``: how ``qvr synth`` generates its tasks (:class:`Synth`: the section of the synth
  config that holds its settings, their model, and the function that runs the job); the synth
  job's ``family`` field and its sections are built from these registrations
  (:func:`synth_sections`);
- ``rows``: rows of a source that the family reads itself (:class:`RowReader`, e.g. a hub
  dataset's columns), asked by the task loader before its own formats;
- ``metrics``: the family's own evaluation numbers from a benchmark's pass@k rows (reported under
  the family's name in ``qvr eval``'s JSON, and as flat ``eval/<family>/<name>@k`` scalars);
- ``report``: its section of an evaluation's ``report.md``.

Its other layers: the sandbox's harness registry (actors/verify/sandbox/harnesses/: extraction,
tests, warm-up, measures) and the parent's reward registry (actors/verify/rewards/: rewards, their
settings and default family weights, parent-side measures). This module imports no family: each
registers itself from its module in this package, and the package loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

Results = dict[str, dict[str, dict[str, Any]]]
"""model -> benchmark -> metrics (pipelines.evaluation.metrics.benchmark_metrics)."""


@dataclass(frozen=True)
class Synth:
    """How ``qvr synth`` generates a family's tasks."""

    section: str
    """The synth config's key that holds the family's settings (``qvr synth SECTION.x=...``)."""
    spec: type[BaseModel]
    """The settings' model (light to import: the config answers before anything heavy loads)."""
    doc: str
    """What the family generates, in a few words (the config reference's description)."""
    run: Callable[[Any, Any], dict[str, Any]]
    """``run(config, run) -> summary``: the job for this family (import heavy modules inside)."""
    default: bool = False
    """The synth job's family when its config names none."""


@dataclass(frozen=True)
class RowReader:
    """Rows of a task source that a family turns into Tasks itself."""

    columns: frozenset[str]
    """A row with all of these columns (and no ``harness``: a Task row keeps its own) is the family's."""
    to_task: Callable[[dict[str, Any]], Any]
    """row -> Task (a ValueError names what is wrong with the row)."""


@dataclass(frozen=True)
class Family:
    name: str
    """The family's name: ``qvr synth``'s ``family``, and the key of its metrics in eval's JSON."""
    synth: Synth | None = None
    rows: RowReader | None = None
    metrics: Callable[[Sequence[dict[str, Any]]], dict[str, Any] | None] | None = None
    """pass@k rows of one benchmark (task_id, family, measures, ...) -> its numbers, or None when
    none of its tasks is there. Names with ``@`` (``scr@1``) also become flat scalars."""
    report: Callable[[Results, list[str]], list[str]] | None = None
    """(results, benchmarks) -> its report.md lines (none when it has nothing to show)."""


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if not family.name or family.name in FAMILIES:
        raise ValueError(f"task family {family.name!r} has no name or is registered twice")
    sections = {other.synth.section for other in FAMILIES.values() if other.synth}
    if family.synth and family.synth.section in sections:
        raise ValueError(f"task family {family.name!r}: synth section {family.synth.section!r} is taken")
    FAMILIES[family.name] = family
    return family


def reader_for(row: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
    """The row reader of the family whose columns ``row`` has (a Task row, with its own harness,
    is nobody's), or None."""
    if "harness" in row:
        return None
    for family in FAMILIES.values():
        if family.rows and family.rows.columns <= row.keys():
            return family.rows.to_task
    return None


def family_metrics() -> dict[str, Callable[[Sequence[dict[str, Any]]], dict[str, Any] | None]]:
    """Family name -> its metrics function, for the families that have one."""
    return {name: family.metrics for name, family in FAMILIES.items() if family.metrics}


def report_sections() -> list[Callable[[Results, list[str]], list[str]]]:
    return [family.report for family in FAMILIES.values() if family.report]


def synth_family(name: str) -> Synth:
    family = FAMILIES.get(name)
    if family is None or family.synth is None:
        raise ValueError(f"no synth for task family {name!r}; families: {sorted(synth_families())}")
    return family.synth


def synth_families() -> dict[str, Synth]:
    return {name: family.synth for name, family in FAMILIES.items() if family.synth}


def synth_sections(base: type[BaseModel]) -> type[BaseModel]:
    """``base`` with the synth job's ``family`` (one of the registered families) and each family's
    settings section, in registration order: the synth config names no family itself."""
    synths = synth_families()
    if not synths:
        raise ValueError("no task family registers a synth")
    default = next((name for name, synth in synths.items() if synth.default), next(iter(synths)))
    doc = "; ".join(f"``{name}``: {synth.doc} (settings: ``{synth.section}``)" for name, synth in synths.items())
    fields: dict[str, Any] = {"family": (Literal[tuple(synths)], Field(  # type: ignore[valid-type]
        default, description=f"The task family to generate (pipelines/tasks/families/): {doc}."))}
    for name, synth in synths.items():
        fields[synth.section] = (synth.spec, Field(default_factory=synth.spec,
                                                   description=f"What to generate (family ``{name}``)."))
    return create_model("SynthFamilies", __base__=base, __module__=__name__, **fields)
