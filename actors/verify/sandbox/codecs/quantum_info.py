"""quantum_info types as arrays plus the metadata that rebuilds them."""

from __future__ import annotations

from qiskit.quantum_info import (
    PTM,
    Chi,
    Choi,
    Clifford,
    CNOTDihedral,
    DensityMatrix,
    Operator,
    Pauli,
    ScalarOp,
    SparsePauliOp,
    StabilizerState,
    Statevector,
    SuperOp,
)

from actors.verify.sandbox.codecs.arrays import decode_array, encode_array
from actors.verify.sandbox.codecs.registry import Codec, register


def _dims(value) -> list[int]:
    return [int(d) for d in value.dims()]


register(Codec("statevector", (Statevector,),
               lambda v, _: {"data": encode_array(v.data), "dims": _dims(v)},
               lambda d, _: Statevector(decode_array(d["data"]), dims=tuple(int(x) for x in d["dims"]))))
register(Codec("densitymatrix", (DensityMatrix,),
               lambda v, _: {"data": encode_array(v.data), "dims": _dims(v)},
               lambda d, _: DensityMatrix(decode_array(d["data"]), dims=tuple(int(x) for x in d["dims"]))))
register(Codec("operator", (Operator,),
               lambda v, _: {"data": encode_array(v.data), "input_dims": list(v.input_dims()),
                             "output_dims": list(v.output_dims())},
               lambda d, _: Operator(decode_array(d["data"]), input_dims=tuple(int(x) for x in d["input_dims"]),
                                     output_dims=tuple(int(x) for x in d["output_dims"]))))
register(Codec("pauli", (Pauli,), lambda v, _: {"label": v.to_label()}, lambda d, _: Pauli(str(d["label"]))))
register(Codec("sparsepauliop", (SparsePauliOp,),
               lambda v, _: {"labels": [str(label) for label in v.paulis.to_labels()], "coeffs": encode_array(v.coeffs)},
               lambda d, _: SparsePauliOp([str(label) for label in d["labels"]], coeffs=decode_array(d["coeffs"]))))
register(Codec("clifford", (Clifford,), lambda v, child: {"tableau": child(v.to_dict())},
               lambda d, child: Clifford.from_dict(child(d["tableau"]))))
register(Codec("stabilizerstate", (StabilizerState,), lambda v, child: {"clifford": child(v.clifford)},
               lambda d, child: StabilizerState(child(d["clifford"]))))
register(Codec("cnotdihedral", (CNOTDihedral,), lambda v, child: {"circuit": child(v.to_circuit())},
               lambda d, child: CNOTDihedral(child(d["circuit"]))))
register(Codec("scalarop", (ScalarOp,), lambda v, child: {"dims": child(v.input_dims()), "coeff": child(v.coeff)},
               lambda d, child: ScalarOp(dims=child(d["dims"]), coeff=child(d["coeff"]))))


def _channel(kind):
    return Codec(kind.__name__.lower(), (kind,),
                 lambda v, _: {"data": encode_array(v.data), "input_dims": list(v.input_dims()),
                               "output_dims": list(v.output_dims())},
                 lambda d, _: kind(decode_array(d["data"]), input_dims=tuple(int(x) for x in d["input_dims"]),
                                   output_dims=tuple(int(x) for x in d["output_dims"])))


for _kind in (Choi, SuperOp, PTM, Chi):
    register(_channel(_kind))
