"""QuantumCircuit (and its library subclasses), instructions and DAGs as QPY; what comes back is
a plain QuantumCircuit (or the instruction it holds, or its DAG)."""

from __future__ import annotations

import base64
import io

from qiskit import QuantumCircuit, qpy
from qiskit.circuit import Instruction
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.dagcircuit import DAGCircuit

from actors.verify.sandbox.codecs.registry import Codec, register

MAX_QPY_BYTES = 48 * 1024 * 1024


def _encode(value: QuantumCircuit, _) -> dict:
    stream = io.BytesIO()
    qpy.dump(value, stream)
    return {"qpy": base64.b64encode(stream.getvalue()).decode()}


def _decode(data, _) -> QuantumCircuit:
    raw = data["qpy"]
    if type(raw) is not str or len(raw) > MAX_QPY_BYTES * 4 // 3 + 4:
        raise ValueError("QPY too large")
    circuits = qpy.load(io.BytesIO(base64.b64decode(raw, validate=True)))
    if len(circuits) != 1 or type(circuits[0]) is not QuantumCircuit:
        raise ValueError("QPY must hold exactly one QuantumCircuit")
    return circuits[0]


register(Codec("circuit", (QuantumCircuit,), _encode, _decode))


def _instruction_encode(value: Instruction, _) -> dict:
    holder = QuantumCircuit(value.num_qubits, value.num_clbits)
    holder.append(value, range(value.num_qubits), range(value.num_clbits))
    return _encode(holder, None)


def _instruction_decode(data, _) -> Instruction:
    holder = _decode(data, None)
    if len(holder.data) != 1:
        raise ValueError("an instruction crosses as a circuit holding exactly it")
    return holder.data[0].operation


def _dag_encode(value: DAGCircuit, _) -> dict:
    return _encode(dag_to_circuit(value), None)


register(Codec("instruction", (Instruction,), _instruction_encode, _instruction_decode))
register(Codec("dag", (DAGCircuit,), _dag_encode, lambda data, _: circuit_to_dag(_decode(data, None))))
