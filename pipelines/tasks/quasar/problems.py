"""QUASAR's graph problems (arXiv 2510.00967) as binary cost functions -> cost Hamiltonians.

Each problem draws a small seeded graph (networkx) and writes its cost as a polynomial in binary
variables x_i in {0, 1} (constraints as penalties); :func:`to_pauli` turns it into a sum of Z
products with x = (1 - Z)/2, so that the lowest eigenvalue of the Hamiltonian is the best
solution. Variable i is qubit i (qiskit's order: the rightmost Pauli character is qubit 0).

A problem instance: its name (as the prompt says it), the graph (node-link JSON for the prompt),
the number of qubits and the polynomial ``{tuple(sorted variables): coefficient}``.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PENALTY = 2.0
"""Weight of constraint penalties relative to the objective (larger than any one objective gain)."""


@dataclass
class Instance:
    problem: str
    """The problem type (a key of :data:`PROBLEMS`)."""
    description: str
    """How the prompt names it, e.g. ``min_cut from source node 0 to sink node 4``."""
    graph: dict[str, Any]
    """Node-link JSON of the graph (hypergraphs: ``hyperedges`` beside it)."""
    n_qubits: int
    polynomial: dict[tuple[int, ...], float]


Polynomial = dict[tuple[int, ...], float]


def _add(poly: Polynomial, variables: tuple[int, ...], coeff: float) -> None:
    key = tuple(sorted(set(variables)))  # x^2 = x for binaries
    poly[key] = poly.get(key, 0.0) + coeff


def _square_of_linear(poly: Polynomial, terms: list[tuple[int | None, float]], scale: float) -> None:
    """Add scale * (sum of c_i x_i + constant)^2; a term with variable None is the constant."""
    for (a, ca), (b, cb) in itertools.product(terms, terms):
        _add(poly, tuple(v for v in (a, b) if v is not None), scale * ca * cb)


def to_pauli(poly: Polynomial, n: int) -> tuple[list[str], list[float], float]:
    """(Pauli labels, coefficients, constant) of the Z Hamiltonian equal to ``poly`` on basis
    states. The constant (the identity's coefficient) is returned apart and also kept as an
    all-I term, so energies are the cost function's values."""
    terms: dict[tuple[int, ...], float] = defaultdict(float)
    for variables, coeff in poly.items():
        # prod (1 - Z_i)/2 = 2^-k sum over subsets S of (-1)^|S| prod_{i in S} Z_i
        k = len(variables)
        for size in range(k + 1):
            for subset in itertools.combinations(variables, size):
                terms[subset] += coeff * (-1) ** size / 2**k
    labels, coeffs = [], []
    for subset, coeff in sorted(terms.items()):
        if abs(coeff) < 1e-12:
            continue
        label = ["I"] * n
        for qubit in subset:
            label[n - 1 - qubit] = "Z"
        labels.append("".join(label))
        coeffs.append(round(coeff, 12))
    return labels, coeffs, terms.get((), 0.0)


def _graph(rng: random.Random, nodes: int, density: float = 0.5, connected: bool = True) -> Any:
    import networkx as nx

    for _ in range(200):
        graph = nx.gnp_random_graph(nodes, density, seed=rng.randrange(2**31))
        if graph.number_of_edges() and (not connected or nx.is_connected(graph)):
            return graph
    return nx.path_graph(nodes)


def _link(graph: Any) -> dict[str, Any]:
    import networkx as nx

    return nx.node_link_data(graph, edges="edges")


def _weighted(graph: Any, rng: random.Random) -> Any:
    for u, v in graph.edges:
        graph.edges[u, v]["weight"] = rng.randint(1, 4)
    return graph


# ---------------------------------------------------------------- the problem types


def hypermaxcut(rng: random.Random, qubits: int) -> Instance:
    """Maximise the split pairs inside each hyperedge (nodes = qubits)."""
    nodes = list(range(qubits))
    hyperedges = sorted({tuple(sorted(rng.sample(nodes, rng.choice((2, 3))))) for _ in range(qubits + 1)})
    poly: Polynomial = {}
    for edge in hyperedges:
        for i, j in itertools.combinations(edge, 2):  # pair split: x_i + x_j - 2 x_i x_j; maximise
            _add(poly, (i,), -1.0)
            _add(poly, (j,), -1.0)
            _add(poly, (i, j), 2.0)
    graph = {"directed": False, "multigraph": False, "graph": {}, "nodes": [{"id": v} for v in nodes],
             "hyperedges": [list(edge) for edge in hyperedges]}
    return Instance("hypermaxcut", "hypermaxcut", graph, qubits, poly)


def vertex_cover(rng: random.Random, qubits: int) -> Instance:
    """Fewest nodes touching every edge (nodes = qubits)."""
    graph = _graph(rng, qubits)
    poly: Polynomial = {}
    for v in graph.nodes:
        _add(poly, (v,), 1.0)
    for u, v in graph.edges:  # penalty (1 - x_u)(1 - x_v)
        _add(poly, (), PENALTY)
        _add(poly, (u,), -PENALTY)
        _add(poly, (v,), -PENALTY)
        _add(poly, (u, v), PENALTY)
    return Instance("vertex_cover", "vertex_cover", _link(graph), qubits, poly)


def _edge_graph(rng: random.Random, edges: int) -> Any:
    """A connected graph with exactly ``edges`` edges (edges = qubits)."""
    import networkx as nx

    for _ in range(500):
        nodes = rng.randint(max(3, int((1 + (1 + 8 * edges) ** 0.5) / 2) + 1), edges + 1)
        graph = nx.gnm_random_graph(nodes, edges, seed=rng.randrange(2**31))
        if nx.is_connected(graph):
            return nx.convert_node_labels_to_integers(graph)
    return nx.path_graph(edges + 1)


def edge_cover(rng: random.Random, qubits: int) -> Instance:
    """Fewest edges touching every node (edges = qubits): penalty prod over a node's edges of (1 - x_e)."""
    graph = _edge_graph(rng, qubits)
    index = {edge: i for i, edge in enumerate(graph.edges)}
    poly: Polynomial = {}
    for e in index.values():
        _add(poly, (e,), 1.0)
    for v in graph.nodes:
        incident = [index[edge] if edge in index else index[edge[::-1]] for edge in graph.edges(v)]
        for size in range(len(incident) + 1):  # prod (1 - x_e) expanded
            for subset in itertools.combinations(incident, size):
                _add(poly, subset, PENALTY * (-1) ** size)
    return Instance("edge_cover", "edge_cover", _link(graph), qubits, poly)


def matching(rng: random.Random, qubits: int) -> Instance:
    """Most edges with no shared node (edges = qubits)."""
    graph = _edge_graph(rng, qubits)
    index = {edge: i for i, edge in enumerate(graph.edges)}
    poly: Polynomial = {}
    for e in index.values():
        _add(poly, (e,), -1.0)
    for v in graph.nodes:
        incident = [index[edge] if edge in index else index[edge[::-1]] for edge in graph.edges(v)]
        for a, b in itertools.combinations(incident, 2):
            _add(poly, (a, b), PENALTY)
    return Instance("matching", "matching", _link(graph), qubits, poly)


def graph_coloring(rng: random.Random, qubits: int) -> Instance:
    """k colours (one-hot per node; qubit = node * k + colour), adjacent nodes differ."""
    colours = 2 if qubits % 3 else 3
    nodes = max(2, qubits // colours)
    graph = _graph(rng, nodes, density=0.6)
    poly: Polynomial = {}
    var = lambda v, c: v * colours + c  # noqa: E731
    for v in graph.nodes:
        _square_of_linear(poly, [(None, 1.0)] + [(var(v, c), -1.0) for c in range(colours)], PENALTY)
    for u, v in graph.edges:
        for c in range(colours):
            _add(poly, (var(u, c), var(v, c)), 1.0)
    return Instance("graph_coloring", f"graph_coloring with {colours} colors", _link(graph), nodes * colours, poly)


def kclique(rng: random.Random, qubits: int) -> Instance:
    """k nodes, all adjacent (nodes = qubits): A (k - sum x)^2 + B (k(k-1)/2 - sum_edges x_u x_v)."""
    graph = _graph(rng, qubits, density=0.6)
    k = rng.choice((2, 3)) if qubits > 3 else 2
    poly: Polynomial = {}
    _square_of_linear(poly, [(None, float(k))] + [(v, -1.0) for v in graph.nodes], PENALTY)
    _add(poly, (), k * (k - 1) / 2)
    for u, v in graph.edges:
        _add(poly, (u, v), -1.0)
    return Instance("kclique", f"kclique with k={k}", _link(graph), qubits, poly)


def min_cut(rng: random.Random, qubits: int) -> Instance:
    """Lightest edge set separating source (x=0) from sink (x=1) (nodes = qubits)."""
    graph = _weighted(_graph(rng, qubits), rng)
    source, sink = 0, qubits - 1
    weight = sum(graph.edges[e]["weight"] for e in graph.edges)
    poly: Polynomial = {}
    for u, v in graph.edges:
        w = float(graph.edges[u, v]["weight"])
        _add(poly, (u,), w)
        _add(poly, (v,), w)
        _add(poly, (u, v), -2 * w)
    _add(poly, (source,), weight + 1.0)  # source on side 0, sink on side 1
    _add(poly, (), weight + 1.0)
    _add(poly, (sink,), -(weight + 1.0))
    return Instance("min_cut", f"min_cut from source node {source} to sink node {sink}", _link(graph), qubits, poly)


def community_detection(rng: random.Random, qubits: int) -> Instance:
    """Two communities maximising modularity Q (nodes = qubits): cost -Q scaled by (2m)^2, which
    makes every coefficient an integer (A_ij 2m - k_i k_j), so that the QAOA circuit's angles
    repeat (a checker's optimiser shares equal angles: fewer than its 80 evaluations' worth)."""
    graph = _graph(rng, qubits, density=0.45)
    edges, degree = graph.number_of_edges(), dict(graph.degree)
    poly: Polynomial = {}
    for i, j in itertools.combinations(graph.nodes, 2):
        # same community <=> s_i s_j = 1; s_i s_j = 1 - 2 x_i - 2 x_j + 4 x_i x_j; -Q = -(1/2m) sum_{i<j} b_ij s_i s_j
        # with b_ij = A_ij - k_i k_j / 2m; times (2m)^2: -(A_ij 2m - k_i k_j) s_i s_j
        scale = -float((1 if graph.has_edge(i, j) else 0) * 2 * edges - degree[i] * degree[j])
        _add(poly, (), scale)
        _add(poly, (i,), -2 * scale)
        _add(poly, (j,), -2 * scale)
        _add(poly, (i, j), 4 * scale)
    return Instance("community_detection", "community_detection with 2 communities", _link(graph), qubits, poly)


def connected_components(rng: random.Random, qubits: int) -> Instance:
    """The connected component of node 0 (nodes = qubits): x_0 = 1, no edge crossing, fewest nodes."""
    graph = _graph(rng, qubits, density=0.25, connected=False)
    poly: Polynomial = {}
    for v in graph.nodes:
        _add(poly, (v,), 1.0)
    for u, v in graph.edges:  # (x_u - x_v)^2 = x_u + x_v - 2 x_u x_v
        _add(poly, (u,), PENALTY * qubits)
        _add(poly, (v,), PENALTY * qubits)
        _add(poly, (u, v), -2 * PENALTY * qubits)
    _add(poly, (), PENALTY * qubits)
    _add(poly, (0,), -PENALTY * qubits)
    return Instance("connected_components", "connected_components for node 0", _link(graph), qubits, poly)


PROBLEMS: dict[str, Callable[[random.Random, int], Instance]] = {
    "hypermaxcut": hypermaxcut, "vertex_cover": vertex_cover, "edge_cover": edge_cover, "matching": matching,
    "graph_coloring": graph_coloring, "kclique": kclique, "min_cut": min_cut,
    "community_detection": community_detection, "connected_components": connected_components,
}
"""Problem type -> generator(rng, qubits). Qubits of graph_coloring round down to a multiple of its colours."""


def instance(problem: str, seed: int, qubits: int) -> Instance:
    if problem not in PROBLEMS:
        raise ValueError(f"unknown QUASAR problem {problem!r}; known: {sorted(PROBLEMS)}")
    return PROBLEMS[problem](random.Random(f"{problem}/{seed}/{qubits}"), qubits)
