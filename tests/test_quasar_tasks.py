"""QUASAR's task generator (pipelines/tasks/quasar): problems as cost Hamiltonians, ground truth,
prompts, and the mapping of the hub dataset's rows."""

import itertools
import json

import numpy as np
import pytest

from actors.verify.sandbox.measures.quasar import measure, z_diagonal
from pipelines.tasks.loader import row_to_task
from pipelines.tasks.quasar.generate import PROMPT, generate_task, qaoa_circuit, qaoa_state
from pipelines.tasks.quasar.hub import parse_hamiltonian
from pipelines.tasks.quasar.problems import PROBLEMS, instance, to_pauli


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_each_hamiltonian_equals_its_cost_function_on_every_basis_state(problem):
    item = instance(problem, seed=1, qubits=5)
    paulis, coeffs, _ = to_pauli(item.polynomial, item.n_qubits)
    diagonal = z_diagonal(paulis, coeffs, item.n_qubits)
    for index in range(2**item.n_qubits):
        x = [(index >> q) & 1 for q in range(item.n_qubits)]
        cost = sum(c * np.prod([x[v] for v in variables]) for variables, c in item.polynomial.items())
        assert diagonal[index] == pytest.approx(cost, abs=1e-9)


def test_at_least_eight_problem_types_and_their_optima_are_right_on_small_cases():
    assert len(PROBLEMS) >= 8
    import networkx as nx

    item = instance("vertex_cover", seed=2, qubits=5)
    graph = nx.node_link_graph(item.graph, edges="edges")
    paulis, coeffs, _ = to_pauli(item.polynomial, item.n_qubits)
    best = int(np.argmin(z_diagonal(paulis, coeffs, item.n_qubits)))
    cover = {v for v in graph.nodes if (best >> v) & 1}
    smallest = min(len(s) for r in range(6) for s in itertools.combinations(graph.nodes, r)
                   if all(u in s or v in s for u, v in graph.edges))
    assert all(u in cover or v in cover for u, v in graph.edges) and len(cover) == smallest


def test_the_fast_qaoa_simulation_matches_the_circuit():
    from qiskit.quantum_info import Statevector

    item = instance("kclique", seed=0, qubits=4)
    paulis, coeffs, _ = to_pauli(item.polynomial, 4)
    diagonal = z_diagonal(paulis, coeffs, 4)
    circuit = qaoa_circuit(paulis, coeffs, 4, [0.3, 0.7], [0.4, 0.1])
    exact = np.abs(Statevector(circuit.remove_final_measurements(inplace=False)).data) ** 2
    fast = np.abs(qaoa_state(diagonal, 4, np.array([0.3, 0.7]), np.array([0.4, 0.1]))) ** 2
    assert np.allclose(exact, fast, atol=1e-10)


@pytest.mark.slow
def test_a_generated_task_holds_its_ground_truth_in_the_tests_only():
    task = generate_task("min_cut", seed=0, qubits=5, layers=2)
    truth = json.loads(task.tests)
    assert (task.family, task.harness, task.area) == ("quasar", "qasm", "min_cut")
    assert task.prompt.startswith("Design a QASM 3.0 quantum circuit with 5 qubits and 2 layers to solve the min_cut")
    assert task.prompt.endswith("Provide valid QASM 3.0 code with optimal parameters.")
    graph = json.loads(task.prompt.split("given the graph: ", 1)[1].rsplit(". Provide", 1)[0])
    assert {"nodes", "edges"} <= graph.keys()
    for hidden in ("emin", "reference_probs", "paulis"):
        assert hidden not in task.prompt
    diagonal = z_diagonal(truth["paulis"], truth["coeffs"], 5)
    assert (truth["emin"], truth["emax"]) == (diagonal.min(), diagonal.max())
    assert sum(truth["reference_probs"]) == pytest.approx(1.0)
    assert truth["emin"] <= truth["energy_ref"] < np.mean(diagonal)  # QAOA beats the uniform superposition
    measures = measure(task.reference_solution, truth)
    assert measures["s2"] == pytest.approx(1.0) and measures["nfev"] == 1  # polished: optimal for the checker
    assert generate_task("min_cut", seed=0, qubits=5, layers=2).tests == task.tests  # seeded


def test_hub_rows_map_to_qasm_tasks():
    """A hand-made row with the hub's columns as QUASAR's preprocessing reads them."""
    reference = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nx q[0];\n'
                 'c = measure q;\n')
    row = {"prompt": PROMPT.format(n=2, p=1, problem="min_cut from source node 0 to sink node 1",
                                   graph='{"nodes":[{"id":0},{"id":1}],"edges":[{"source":0,"target":1}]}'),
           "circuit_with_params": reference,
           "cost_hamiltonian": "0.5 * (Z(0) @ Z(1)) + -1.0 * Z(1) + 0.25 * I(0)",
           "exact_solution": json.dumps({"smallest_eigenvalues": [-1.25], "largest_eigenvalues": [1.75]})}
    task = row_to_task(row)
    truth = json.loads(task.tests)
    assert (task.family, task.harness, task.area, truth["n_qubits"]) == ("quasar", "qasm", "min_cut", 2)
    assert truth["paulis"] == ["ZZ", "ZI", "II"] and truth["coeffs"] == [0.5, -1.0, 0.25]
    assert (truth["emin"], truth["emax"]) == (-1.25, 1.75)  # agrees with the hub's exact solution
    measures = measure(reference, truth)  # the checker simulates the reference circuit
    assert measures["s2"] == pytest.approx(1.0) and measures["energy_ref"] == pytest.approx(-1.25)
    with pytest.raises(ValueError, match="only Z"):
        parse_hamiltonian("1.0 * X(0)")


def test_the_checker_settings_of_the_synth_config_reach_the_task():
    from pipelines.tasks.quasar.synth import QuasarCheckerConfig, generate_batch

    checker = QuasarCheckerConfig(cobyla_maxiter=40, pass_s2=0.95).model_dump()
    rows = generate_batch({"problem": ["matching"], "seed": [0], "qubits": [3], "layers": [1]}, checker)
    truth = json.loads(json.loads(rows["task"][0])["tests"])
    assert truth["settings"]["cobyla_maxiter"] == 40 and truth["settings"]["pass_s2"] == 0.95
    assert measure(json.loads(rows["task"][0])["reference_solution"], truth)["nfev"] == 1
