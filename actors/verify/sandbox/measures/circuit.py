"""``circuit``: the candidate's circuit, simulated and sized by the checker (QSpark's rewards, issue 17).

What "the candidate's circuit" is, per task: ``metadata["circuit"]`` when the task names it, as a
variable (``"qc"``, the synthetic templates' contract) or a call with literal arguments
(``"ghz_circuit(3)"``); else the task's entry point; else ``qc``. A name that holds a function is
called as QSpark's public code calls it: with ``2``, then with no argument if that raises a
TypeError. The value must be a ``QuantumCircuit`` (it crossed as QPY; a Statevector or anything
else the candidate returns is not a circuit, so nothing of it is used).

The task's reference solution (the same program run the same way, here in the clean checker:
it is the task's own trusted code) gives the reference circuit and its state.

Measures (each ``circuit.<name>``): ``ok`` (a circuit came back), ``statevector_ok`` (a
``Statevector`` of it, final measurements removed, could be computed), ``shots_ok`` (a
2048-shot AerSimulator run, with ``measure_all`` when it measures nothing, returned 2048
counts), ``depth``, ``gates`` (instructions, as ``len(circuit.data)``), ``qubits``,
``fidelity`` (``state_fidelity`` with the reference's state; 0 when their sizes differ), and the
reference's ``reference_ok``, ``reference_depth``, ``reference_gates``, ``reference_qubits``.
Circuits wider than :data:`MAX_QUBITS` are sized but not simulated.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from actors.verify.sandbox.harnesses.registry import Candidate, get
from actors.verify.sandbox.measures.registry import Provider, register

SHOTS = 2048
"""QSpark's shot count for the sampling run."""

MAX_QUBITS = 20
"""Widest circuit simulated (a statevector of 20 qubits is 16 MiB); wider ones count as not simulated."""

SEED = 1234


def parse_target(spec: str) -> tuple[str, tuple[Any, ...] | None, dict[str, Any]]:
    """``"qc"`` -> (``qc``, None, {}); ``"ghz(3, n=2)"`` -> (``ghz``, (3,), {"n": 2}). Literals only."""
    node = ast.parse(spec.strip(), mode="eval").body
    if isinstance(node, ast.Name):
        return node.id, None, {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and all(k.arg for k in node.keywords):
        return (node.func.id, tuple(ast.literal_eval(arg) for arg in node.args),
                {k.arg: ast.literal_eval(k.value) for k in node.keywords})
    raise ValueError(f"circuit target {spec!r} is neither a name nor a call with literal arguments")


def resolve(lookup: Callable[[str], Any], spec: str) -> Any:
    """The value the target names, calling it as the spec (or QSpark's convention) says."""
    name, args, kwargs = parse_target(spec)
    value = lookup(name)
    if args is not None:
        return value(*args, **kwargs)
    if callable(value) and not isinstance(value, type):
        try:
            return value(2)
        except TypeError:
            return value()
    return value


def statevector(circuit: Any) -> Any:
    """The circuit's state (final measurements removed), or None when it cannot be simulated."""
    from qiskit.quantum_info import Statevector

    if circuit.num_qubits > MAX_QUBITS:
        return None
    try:
        return Statevector(circuit.remove_final_measurements(inplace=False))
    except Exception:  # noqa: BLE001 - mid-circuit measurements, resets, unbound parameters ...
        return None


def shots_run(circuit: Any) -> bool:
    """Whether a 2048-shot AerSimulator run of the circuit works (QSpark's second simulation,
    which transpiles first). Here the circuit runs as it is, and is transpiled for the simulator
    only when Aer rejects an instruction: transpiling for AerSimulator's target costs 100-300 ms
    a circuit on a 2-core machine, the run of a small one about 10 ms (`qvr bench rewards`)."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    if circuit.num_qubits > MAX_QUBITS:
        return False
    try:
        measured = circuit.copy()
        if not any(instruction.operation.name == "measure" for instruction in measured.data):
            measured.measure_all()
        simulator = AerSimulator()
        try:
            result = simulator.run(measured, shots=SHOTS, seed_simulator=SEED).result()
        except Exception:  # noqa: BLE001 - an instruction Aer does not know: transpile, as QSpark does
            result = simulator.run(transpile(measured, simulator), shots=SHOTS, seed_simulator=SEED).result()
        return sum(result.get_counts().values()) == SHOTS
    except Exception:  # noqa: BLE001
        return False


def sized(circuit: Any) -> dict[str, float]:
    return {"depth": circuit.depth(), "gates": len(circuit.data), "qubits": circuit.num_qubits}


def as_circuit(value: Any) -> Any:
    from qiskit import QuantumCircuit

    return value if isinstance(value, QuantumCircuit) else None


@register
class CircuitMeasures(Provider):
    name = "circuit"

    def params(self, task: Any) -> dict[str, Any]:
        return {"target": task.metadata.get("circuit") or task.entry_point or "qc",
                "reference": task.reference_solution}

    def measure(self, params: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> dict[str, float]:
        target = str(params.get("target") or "qc")
        measures: dict[str, float] = {}
        reference_state = None
        reference = self.reference_circuit(params, job, target)
        measures["reference_ok"] = float(reference is not None)
        if reference is not None:
            measures.update({f"reference_{key}": value for key, value in sized(reference).items()})
            reference_state = statevector(reference)
        circuit = self.candidate_circuit(candidate, target)
        measures["ok"] = float(circuit is not None)
        if circuit is None:
            return measures
        measures.update(sized(circuit))
        state = statevector(circuit)
        measures["statevector_ok"] = float(state is not None)
        measures["shots_ok"] = float(shots_run(circuit))
        if state is not None and reference_state is not None:
            measures["fidelity"] = fidelity(state, reference_state)
        return measures

    @staticmethod
    def candidate_circuit(candidate: Candidate, target: str) -> Any:
        def lookup(name: str) -> Any:
            namespace: dict[str, Any] = {}
            candidate.bind(namespace, name)
            return namespace.get(name)

        try:
            return as_circuit(resolve(lookup, target))
        except BaseException:  # noqa: BLE001 - the candidate raised, or its value cannot cross
            return None

    @staticmethod
    def reference_circuit(params: dict[str, Any], job: dict[str, Any], target: str) -> Any:
        """The reference's circuit, run here (trusted task code) in a namespace of its own."""
        from actors.verify.sandbox.harness import fresh_namespace

        if not params.get("reference"):
            return None
        namespace = fresh_namespace()
        try:
            program = get(job["harness"]).solution(job.get("prompt") or "", params["reference"])
            exec(compile(program, "<reference>", "exec"), namespace)
            return as_circuit(resolve(namespace.get, target))
        except BaseException:  # noqa: BLE001 - a broken reference (even sys.exit) gives no reference measures
            return None


def fidelity(state: Any, reference: Any) -> float:
    from qiskit.quantum_info import state_fidelity

    if state.dim != reference.dim:
        return 0.0
    return float(min(1.0, max(0.0, state_fidelity(state, reference))))
