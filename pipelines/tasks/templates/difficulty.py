"""One rule that turns a template's circuit features into a difficulty label.

Every template reports the same features for what its reference solution builds:

- ``num_qubits``: qubits of the largest circuit the program handles;
- ``gate_count``: gates (and measurements) the program writes, loops unrolled;
- ``concepts``: the distinct Qiskit ideas the task combines (e.g. ``"if_test"``, ``"transpile"``).

Each feature adds points; the points pick the label. The thresholds sit where a task stops being
a one-liner (a few gates on two qubits) and where it needs several APIs to work together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DIFFICULTIES: tuple[str, ...] = ("basic", "intermediate", "difficult")


def difficulty_points(features: Mapping[str, Any]) -> int:
    """The score behind :func:`difficulty_from`: 0 for a tiny one-concept task, more for bigger ones."""
    qubits = int(features.get("num_qubits", 1))
    gates = int(features.get("gate_count", 0))
    concepts = len(features.get("concepts", ()))
    return ((qubits >= 3) + (qubits >= 5)
            + (gates >= 8) + (gates >= 20)
            + max(0, concepts - 1))


def difficulty_from(features: Mapping[str, Any]) -> str:
    """``basic`` | ``intermediate`` | ``difficult`` for a template's features."""
    points = difficulty_points(features)
    if points <= 1:
        return "basic"
    if points <= 3:
        return "intermediate"
    return "difficult"
