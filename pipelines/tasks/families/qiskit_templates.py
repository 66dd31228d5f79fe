"""The ``qiskit`` family in the pipelines layer: synthetic Qiskit tasks rendered from seeded
templates (pipelines/tasks/templates), verified with their mutants (pipelines/tasks/synthetic.py).
Its tasks (family ``synthetic``, harness ``unittest``) are scored by the default rewards."""

from __future__ import annotations

from typing import Any

from pipelines.tasks.families.registry import Family, Synth, register
from pipelines.tasks.synthetic import SynthSpec


def _synthesize(config: Any, run: Any) -> dict[str, Any]:
    from pipelines.tasks.synthetic import synthesize

    return synthesize(config, run)


register(Family("qiskit", synth=Synth(section="spec", spec=SynthSpec, doc="template-based Qiskit tasks",
                                      run=_synthesize, default=True)))
