"""The ``quasar`` family in the pipelines layer: QUASAR's OpenQASM 3 graph problems (arXiv
2510.00967).

What it brings here: ``qvr synth`` with ``family: quasar`` (settings ``quasar.*``: problem types,
qubits, layers, the checker's settings; pipelines/tasks/quasar/synth.py), rows of QUASAR's hub
dataset in any task source (pipelines/tasks/quasar/hub.py), SCR, SREV, HQCR and RE in ``qvr
eval`` and their table in report.md (pipelines/tasks/quasar/metrics.py). Its other layers: the
``qasm`` harness and QUASAR's measures in the sandbox (actors/verify/sandbox/harnesses/qasm.py,
measures/quasar/), the ``quasar`` reward, its settings ``verifier.rewards.quasar.*`` and its
default weight for the family in the parent (actors/verify/rewards/quasar.py).
"""

from __future__ import annotations

from typing import Any

from pipelines.tasks.families.registry import Family, RowReader, Synth, register
from pipelines.tasks.quasar.hub import HUB_FIELDS
from pipelines.tasks.quasar.metrics import quasar_metrics, report_section
from pipelines.tasks.quasar.synth import QuasarSynthSpec


def _synthesize(config: Any, run: Any) -> dict[str, Any]:
    from pipelines.tasks.quasar.synth import synthesize

    return synthesize(config, run)


def _hub_row_to_task(row: dict[str, Any]) -> Any:
    from pipelines.tasks.quasar.hub import hub_row_to_task

    return hub_row_to_task(row)


register(Family(
    "quasar",
    synth=Synth(section="quasar", spec=QuasarSynthSpec, run=_synthesize,
                doc="QUASAR's OpenQASM 3 graph problems with their ground truth"),
    rows=RowReader(columns=frozenset(HUB_FIELDS), to_task=_hub_row_to_task),
    metrics=quasar_metrics,
    report=report_section,
))
