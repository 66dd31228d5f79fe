"""The template registry: the decorator that records a template and the render that runs it.

A template is a function ``build(rng) -> Draft``. Registering it is one decorator::

    @template("bell_state", area="circuits")
    def bell_state(rng: random.Random) -> Draft: ...

:func:`render` turns ``(name, seed)`` into a :class:`~actors.contracts.Task` and its mutants;
everything shared by all templates (the seeded generator, the choice of phrasing, the Task's
fields, checks on the draft) lives here so that templates only describe their task.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.contracts import Task
from pipelines.tasks.templates.difficulty import difficulty_from

FAMILY = "synthetic"
HARNESS = "unittest"
MUTANT_KINDS: tuple[str, ...] = ("wrong_gate", "wrong_qubit", "wrong_parameter", "missing_step")
"""The kinds every consumer understands; templates may add others (e.g. ``wrong_function``)."""


@dataclass(frozen=True)
class Mutant:
    """A small wrong variant of a reference solution that the hidden tests must reject."""

    kind: str
    code: str


@dataclass
class Draft:
    """What a template builds for one seed, before the registry turns it into a Task."""

    prompts: list[str]
    """Alternative wordings of the same task (each naming what the program must define); the seed
    picks one."""
    tests: str
    """unittest source, exec'd after the program in the same namespace."""
    reference: str
    mutants: list[Mutant]
    features: dict[str, Any]
    """num_qubits, gate_count and concepts (see difficulty.py) plus any task parameters worth keeping."""
    entry_point: str | None = None
    """The function the program must define, when the task asks for one (informational)."""
    isolation: str | None = None
    """``"shared"`` when the tests must inspect objects that cannot cross to the verifier's separate
    checker process (a primitive and its options object); recorded as metadata ``isolation``.
    None leaves the choice to the verifier (split by default)."""


Builder = Callable[[random.Random], Draft]


class TemplateError(RuntimeError):
    """A template that could not be registered or rendered; the message names template and seed."""


@dataclass(frozen=True)
class Template:
    name: str
    area: str
    build: Builder = field(repr=False)

    def render(self, seed: int) -> tuple[Task, list[Mutant]]:
        """The task and mutants for ``seed``: the same seed always gives equal results."""
        try:
            rng = random.Random(seed)
            draft = self.build(rng)
            phrasing = rng.randrange(len(draft.prompts))
            _check_draft(draft)
        except Exception as error:
            raise TemplateError(f"template {self.name!r} failed to render seed {seed}: "
                                f"{type(error).__name__}: {error}") from error
        features = {key: (list(value) if isinstance(value, tuple) else value)
                    for key, value in draft.features.items()}
        task = Task(
            task_id=f"{FAMILY}/{self.name}/{seed}",
            family=FAMILY,
            harness=HARNESS,
            prompt=draft.prompts[phrasing],
            tests=draft.tests,
            entry_point=draft.entry_point,
            reference_solution=draft.reference,
            difficulty=difficulty_from(draft.features),
            area=self.area,
            metadata={"template": self.name, "seed": seed, "phrasing": phrasing, **features,
                      **({"isolation": draft.isolation} if draft.isolation else {})},
        )
        return task, list(draft.mutants)


def _check_draft(draft: Draft) -> None:
    if not draft.prompts:
        raise ValueError("the draft has no prompt")
    if len(draft.mutants) < 2:
        raise ValueError(f"a render needs at least 2 mutants, got {len(draft.mutants)}")
    for mutant in draft.mutants:
        if mutant.code == draft.reference:
            raise ValueError(f"mutant {mutant.kind!r} is identical to the reference")
    if "unittest.TestCase" not in draft.tests:
        raise ValueError("the tests define no unittest.TestCase")
    for key in ("num_qubits", "gate_count", "concepts"):
        if key not in draft.features:
            raise ValueError(f"the features lack {key!r}")


TEMPLATES: dict[str, Template] = {}


def template(name: str, area: str) -> Callable[[Builder], Builder]:
    """Register ``build`` under ``name`` in ``area``; a name registered twice is an error."""

    def register(build: Builder) -> Builder:
        if name in TEMPLATES:
            raise TemplateError(f"template {name!r} is registered twice")
        TEMPLATES[name] = Template(name, area, build)
        return build

    return register


def render(name: str, seed: int) -> tuple[Task, list[Mutant]]:
    """The task and mutants of template ``name`` for ``seed``."""
    if name not in TEMPLATES:
        raise TemplateError(f"no template named {name!r} (seed {seed})")
    return TEMPLATES[name].render(seed)


def areas() -> dict[str, list[str]]:
    """Area -> names of its templates, in registration order."""
    grouped: dict[str, list[str]] = {}
    for entry in TEMPLATES.values():
        grouped.setdefault(entry.area, []).append(entry.name)
    return grouped
