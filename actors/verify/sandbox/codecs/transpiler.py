"""Transpiler data: coupling maps as edge lists.

Aer noise models do not cross: ``NoiseModel.from_dict`` cannot rebuild every model that
``to_dict`` writes (Kraus errors), so a correct candidate could fail for the codec's sake.
Tasks whose tests read a noise model therefore run in the shared mode (calibration finds them)."""

from __future__ import annotations

from qiskit.transpiler import CouplingMap

from actors.verify.sandbox.codecs.registry import Codec, register

register(Codec("couplingmap", (CouplingMap,),
               lambda v, child: {"edges": child([list(edge) for edge in v.get_edges()]), "size": v.size()},
               lambda d, child: _coupling_map(child(d["edges"]), int(d["size"]))))


def _coupling_map(edges: list, size: int) -> CouplingMap:
    coupling = CouplingMap([tuple(int(q) for q in edge) for edge in edges])
    for qubit in range(size):
        if qubit not in coupling.physical_qubits:
            coupling.add_physical_qubit(qubit)
    return coupling
