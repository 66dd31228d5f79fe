"""Helpers shared by the template modules: source text, phrasing, seeded values, mutants.

Nothing here knows about a particular task; the area modules combine these pieces.
"""

from __future__ import annotations

import math
import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.tasks.templates.registry import Mutant

# ---------------------------------------------------------------- source text


def source(text: str) -> str:
    """Dedented Python source with exactly one trailing newline."""
    return textwrap.dedent(text).strip("\n") + "\n"


def block(lines: Sequence[str], indent: int = 8) -> str:
    """Lines joined so that, placed at ``indent`` spaces inside a :func:`source` template, each one
    lands on its own line at the template's indentation."""
    return ("\n" + " " * indent).join(lines)


def prompts(variants: Sequence[str], contract: str) -> list[str]:
    """Each wording of the task followed by the same contract (the names the program must define)."""
    return [f"{variant.strip()}\n\n{contract.strip()}" for variant in variants]


def linear_combination(terms: Sequence[tuple[str, float]]) -> str:
    """Prose for Σ c·P with signs folded in: "0.5·ZZ - 1.2·XI"."""
    text = ""
    for index, (label, coeff) in enumerate(terms):
        sign = ("-" if coeff < 0 else "") if index == 0 else (" - " if coeff < 0 else " + ")
        text += f"{sign}{abs(coeff)}·{label}"
    return text


def tests(body: str, helpers: str = "") -> str:
    """unittest source: the standard imports, optional helper functions, then ``body``.

    Tests must never bind a name the program is asked to define (no assignment, import, loop
    variable or parameter called ``qc``, ``counts``...): the verifier's split mode hands the tests
    only the program's values for the names they read without binding."""
    header = "import unittest\n\nimport numpy as np\n"
    return header + ("\n\n" + source(helpers) if helpers else "") + "\n\n" + source(body)


# ---------------------------------------------------------------- seeded values


@dataclass(frozen=True)
class Angle:
    """A rotation angle as a multiple of pi, with its value, its Python spelling and its prose."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float:
        return self.numerator * math.pi / self.denominator

    @property
    def code(self) -> str:
        """Python source (needs ``from math import pi``)."""
        sign = "-" if self.numerator < 0 else ""
        top = abs(self.numerator)
        return f"{sign}{'' if top == 1 else f'{top} * '}pi / {self.denominator}"

    @property
    def text(self) -> str:
        sign = "-" if self.numerator < 0 else ""
        top = abs(self.numerator)
        return f"{sign}{'' if top == 1 else top}π/{self.denominator}"

    def negated(self) -> Angle:
        return Angle(-self.numerator, self.denominator)


def pick_angle(rng: random.Random, denominator: int = 8) -> Angle:
    """An angle k·π/d with 0 < k < 2d and k != d: never 0, π or 2π, so every rotation (and its
    negation, and its swap for another axis) is a different operator even up to global phase."""
    numerator = rng.choice([k for k in range(1, 2 * denominator) if k != denominator])
    return Angle(numerator, denominator)


def pick_float(rng: random.Random, low: float, high: float, digits: int = 2) -> float:
    """A rounded uniform value, so that prompt, reference and tests spell the same number."""
    return round(rng.uniform(low, high), digits)


def choose(rng: random.Random, options: Sequence, count: int) -> list:
    """``count`` distinct items, in a seeded order."""
    return rng.sample(list(options), count)


def qubit_list(qubits: Sequence[int]) -> str:
    """Prose for a list of qubit indices: "qubit 2", "qubits 0 and 3", "qubits 0, 1 and 4"."""
    items = [str(q) for q in qubits]
    if len(items) == 1:
        return f"qubit {items[0]}"
    return f"qubits {', '.join(items[:-1])} and {items[-1]}"


# ---------------------------------------------------------------- gate sequences

FIXED_GATES = ("h", "x", "s", "t", "sx")
ROTATION_GATES = ("rx", "ry", "rz")
TWO_QUBIT_GATES = ("cx", "cz", "swap")


@dataclass(frozen=True)
class Step:
    """One gate of a seeded gate sequence."""

    gate: str
    params: tuple[float, ...]
    qubits: tuple[int, ...]

    def code(self, circuit: str = "qc") -> str:
        args = [repr(p) for p in self.params] + [str(q) for q in self.qubits]
        return f"{circuit}.{self.gate}({', '.join(args)})"

    @property
    def qasm(self) -> str:
        """The OpenQASM 2/3 statement (register ``q``)."""
        params = f"({', '.join(repr(p) for p in self.params)})" if self.params else ""
        return f"{self.gate}{params} {','.join(f'q[{q}]' for q in self.qubits)};"

    @property
    def text(self) -> str:
        name = self.gate.upper() + (f"({', '.join(repr(p) for p in self.params)})" if self.params else "")
        if self.gate == "swap":
            return f"SWAP of qubits {self.qubits[0]} and {self.qubits[1]}"
        if len(self.qubits) == 3:
            return f"{name} with controls {self.qubits[0]}, {self.qubits[1]} and target {self.qubits[2]}"
        if len(self.qubits) == 2:
            return f"{name} with control {self.qubits[0]} and target {self.qubits[1]}"
        return f"{name} on qubit {self.qubits[0]}"

    @property
    def spec(self) -> tuple[str, list[float], list[int]]:
        """The plain-data form the test helper ``_circuit_from`` reads."""
        return (self.gate, list(self.params), list(self.qubits))


def random_steps(rng: random.Random, n: int, count: int, fixed_gates: Sequence[str] = FIXED_GATES,
                 two_qubit_gates: Sequence[str] = TWO_QUBIT_GATES) -> list[Step]:
    """``count`` gates on ``n`` qubits; the first is always a single-qubit gate, so that changing
    or dropping it (what :func:`other_gate` and :func:`moved` do) always changes the unitary."""
    steps = []
    for index in range(count):
        kind = rng.choice(["fixed", "rotation", "two"] if index and n > 1 else ["fixed", "rotation"])
        if kind == "fixed":
            steps.append(Step(rng.choice(fixed_gates), (), (rng.randrange(n),)))
        elif kind == "rotation":
            steps.append(Step(rng.choice(ROTATION_GATES), (pick_float(rng, 0.2, 2.9),), (rng.randrange(n),)))
        else:
            steps.append(Step(rng.choice(two_qubit_gates), (), tuple(rng.sample(range(n), 2))))
    return steps


def other_gate(step: Step, rng: random.Random, avoid: Sequence[str] = ()) -> Step:
    """The same single-qubit step with a different gate of the same family (never one in ``avoid``)."""
    family = FIXED_GATES if step.gate in FIXED_GATES else ROTATION_GATES
    return Step(rng.choice([g for g in family if g != step.gate and g not in avoid]), step.params, step.qubits)


def moved(step: Step, n: int, rng: random.Random) -> Step:
    """The same single-qubit step on another qubit."""
    return Step(step.gate, step.params, (rng.choice([q for q in range(n) if q != step.qubits[0]]),))


STEPS_HELPER = '''
def _circuit_from(num_qubits, steps):
    """The circuit of (gate, params, qubits) steps, built independently of the program."""
    from qiskit import QuantumCircuit
    circuit = QuantumCircuit(num_qubits)
    for gate, params, qubits in steps:
        getattr(circuit, gate)(*params, *qubits)
    return circuit
'''


# ---------------------------------------------------------------- mutants


def mutate(code: str, kind: str, old: str, new: str, count: int = 1) -> Mutant:
    """The reference with the first ``count`` occurrences of ``old`` replaced by ``new``.

    Raises when ``old`` is absent, so a template whose reference changed without its mutants
    fails loudly at render time instead of producing a mutant equal to the reference."""
    if old not in code:
        raise ValueError(f"mutant {kind!r}: {old!r} is not in the reference")
    if old == new:
        raise ValueError(f"mutant {kind!r}: the replacement equals the original")
    return Mutant(kind, code.replace(old, new, count))


def drop_line(code: str, kind: str, line: str) -> Mutant:
    """The reference without its first line equal to ``line`` (surrounding spaces ignored)."""
    lines = code.splitlines(keepends=True)
    for index, candidate in enumerate(lines):
        if candidate.strip() == line.strip():
            return Mutant(kind, "".join(lines[:index] + lines[index + 1:]))
    raise ValueError(f"mutant {kind!r}: no line {line.strip()!r} in the reference")


# ---------------------------------------------------------------- test helpers (source)

REGISTER_OUTCOMES = '''
def _register_outcomes(circuit, shots=1024, seed=1234):
    """Run on AerSimulator; a list of ({register name: bits}, count), one per observed outcome."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator
    simulator = AerSimulator()
    try:
        counts = simulator.run(circuit, shots=shots, seed_simulator=seed).result().get_counts()
    except Exception:  # instructions Aer does not know natively: compile them first
        compiled = transpile(circuit, simulator, optimization_level=0)
        counts = simulator.run(compiled, shots=shots, seed_simulator=seed).result().get_counts()
    names = [register.name for register in reversed(circuit.cregs) if register.size]
    return [(dict(zip(names, key.split())), number) for key, number in counts.items()]


def _register_frequency(outcomes, predicate):
    """Fraction of shots whose registers satisfy ``predicate``."""
    total = sum(number for _, number in outcomes)
    return sum(number for registers, number in outcomes if predicate(registers)) / total
'''
"""Source of test helpers that read counts per classical register, whatever order the program
declared its registers in (Aer's count keys list registers last-declared first)."""
