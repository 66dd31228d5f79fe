"""Transpiler and Aer data: coupling maps as edge lists, noise models as their dict form."""

from __future__ import annotations

from qiskit.transpiler import CouplingMap
from qiskit_aer.noise import NoiseModel

from actors.verify.codecs import Codec, register

register(Codec("couplingmap", (CouplingMap,),
               lambda v, child: {"edges": child([list(edge) for edge in v.get_edges()]), "size": v.size()},
               lambda d, child: _coupling_map(child(d["edges"]), int(d["size"]))))
register(Codec("noisemodel", (NoiseModel,), lambda v, child: {"model": child(v.to_dict(serializable=True))},
               lambda d, child: NoiseModel.from_dict(child(d["model"]))))


def _coupling_map(edges: list, size: int) -> CouplingMap:
    coupling = CouplingMap([tuple(int(q) for q in edge) for edge in edges])
    for qubit in range(size):
        if qubit not in coupling.physical_qubits:
            coupling.add_physical_qubit(qubit)
    return coupling
