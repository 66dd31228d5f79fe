"""QSpark's multi-part reward (arXiv 2507.12642, after its public GRPO code), issue 17.

Five parts, each its own reward so that a verdict's ``reward_parts`` shows them; QSpark's code sums
them with equal weights (TRL's default), which is what ``verifier.rewards.by_family.<family>``
gets from configs/grpo-qspark.yaml. Its parts:

- ``qspark_format``: 0.5 when the completion holds ``<reasoning>...</reasoning>`` followed by
  ``<answer>...</answer>``, + 0.5 when the answer's code is exactly one function definition with
  no banned call (``os.system``, ``subprocess``, ``sys.exit``, ``open``, ``requests``, ``socket``).
- ``qspark_imports``: 1.0 when the code imports Qiskit, 0.2 when it does not, 0.0 when it imports
  Aer the deprecated way (``from qiskit import Aer``, ``qiskit.Aer``, ``qiskit.providers.aer``).
- ``qspark_compile``: 1.0 when a statevector simulation of the candidate's circuit works, + 0.5
  when a 2048-shot run works.
- ``qspark_fidelity``: ``2 * sqrt(F)``, F the fidelity of the candidate's state with the state of
  the *task's own* reference solution (QSpark's code zips completions with references of other
  tasks; here the checker runs the job's own task's reference).
- ``qspark_efficiency``: ``1 / (1 + ln(1 + depth) + 0.5 * ln(1 + gates))`` (depth and gate
  count of 0 count as 1, as in QSpark's code), 0 without a circuit.

And the two penalties of the paper's description (configs/grpo-qspark-paper.yaml: unit-test pass
fraction 0.7, these two 0.2 and 0.1), both relative to the reference: ``qspark_depth_penalty`` =
``-min(1, max(0, depth / reference_depth - 1))`` and ``qspark_qubit_penalty`` likewise with
qubit counts; 0 when either circuit is missing.

The format and imports parts read the model's code as text (``ast``, never executed: it is the
answer itself, not something it printed). Like QSpark's, they judge a whole answer (harnesses
``unittest``, ``qhe_hard``, ``program``); a QHE continuation (a function body) has neither the
function's ``def`` nor the prompt's imports, and scores accordingly. Every other part reads only the measures the split
checker computed (actors/verify/sandbox/measures/circuit.py); a verdict without them (shared
mode, no circuit) scores 0 on those parts.
"""

from __future__ import annotations

import ast
import math
import re

from actors.verify.rewards.registry import RewardInput, reward

_TAGS = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL)
BANNED_MODULES = ("subprocess", "requests", "socket")
BANNED_CALLS = ("os.system", "sys.exit", "open")


def _parse(code: str | None) -> ast.Module | None:
    if not code or not code.strip():
        return None
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return f"{parent}.{node.attr}" if parent else None
    return None


def _imported(tree: ast.Module) -> list[str]:
    """Every dotted path an import names: ``import a.b`` -> a.b; ``from a import b`` -> a, a.b."""
    paths = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            paths += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            paths += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return paths


def _banned(tree: ast.Module) -> bool:
    def module_banned(path: str) -> bool:
        return path.split(".")[0] in BANNED_MODULES

    if any(module_banned(path) or path in BANNED_CALLS for path in _imported(tree)):
        return True
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted(node)
            if name and module_banned(name):
                return True
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in BANNED_CALLS:
                return True
            if name in ("__import__", "importlib.import_module") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and module_banned(node.args[0].value):
                return True
    return False


def one_safe_function(code: str | None) -> bool:
    """The code is exactly one function definition (nested ones count, as in QSpark) and calls
    nothing banned."""
    tree = _parse(code)
    if tree is None:
        return False
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return len(functions) == 1 and not _banned(tree)


@reward("qspark_format")
def qspark_format(result: RewardInput) -> float:
    """0.5 for ``<reasoning>``/``<answer>`` tags, + 0.5 for one function with no banned call."""
    return 0.5 * bool(_TAGS.search(result.text)) + 0.5 * one_safe_function(result.code)


def deprecated_aer(tree: ast.Module) -> bool:
    paths = _imported(tree) + [name for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                               for name in [_dotted(node)] if name]
    return any(path == "qiskit.Aer" or path == "qiskit.providers.aer" or path.startswith("qiskit.providers.aer.")
               for path in paths)


@reward("qspark_imports")
def qspark_imports(result: RewardInput) -> float:
    """1.0 Qiskit imported, 0.2 missing (or unparsable code), 0.0 Aer imported the deprecated way."""
    tree = _parse(result.code)
    if tree is None:
        return 0.2
    if deprecated_aer(tree):
        return 0.0
    return 1.0 if any(path.split(".")[0].startswith("qiskit") for path in _imported(tree)) else 0.2


@reward("qspark_compile", reads=("circuit",))
def qspark_compile(result: RewardInput) -> float:
    """1.0 when the checker's statevector simulation worked, + 0.5 when its 2048-shot run did."""
    statevector_ok = result.measures.get("circuit.statevector_ok") == 1.0
    return 1.0 * statevector_ok + 0.5 * (result.measures.get("circuit.shots_ok") == 1.0)


@reward("qspark_fidelity", reads=("circuit",))
def qspark_fidelity(result: RewardInput) -> float:
    """2 * sqrt(F) with the task's own reference state (0 without one)."""
    return 2.0 * math.sqrt(min(1.0, max(0.0, result.measures.get("circuit.fidelity", 0.0))))


def efficiency(depth: float, gates: float) -> float:
    depth, gates = depth or 1.0, gates or 1.0
    return 1.0 / (1.0 + math.log1p(depth) + 0.5 * math.log1p(gates))


@reward("qspark_efficiency", reads=("circuit",))
def qspark_efficiency(result: RewardInput) -> float:
    """1 / (1 + ln(1 + depth) + 0.5 ln(1 + gates)) of the candidate's circuit; 0 without one."""
    measures = result.measures
    if measures.get("circuit.ok") != 1.0:
        return 0.0
    return efficiency(measures.get("circuit.depth", 0.0), measures.get("circuit.gates", 0.0))


def _excess(result: RewardInput, quantity: str) -> float:
    measures = result.measures
    if measures.get("circuit.ok") != 1.0 or measures.get("circuit.reference_ok") != 1.0:
        return 0.0
    mine, reference = measures.get(f"circuit.{quantity}", 0.0), measures.get(f"circuit.reference_{quantity}", 0.0)
    return -min(1.0, max(0.0, mine / max(reference, 1.0) - 1.0))


@reward("qspark_depth_penalty", reads=("circuit",))
def qspark_depth_penalty(result: RewardInput) -> float:
    """-(depth / reference depth - 1), clipped to [-1, 0]: deeper than the reference costs."""
    return _excess(result, "depth")


@reward("qspark_qubit_penalty", reads=("circuit",))
def qspark_qubit_penalty(result: RewardInput) -> float:
    """-(qubits / reference qubits - 1), clipped to [-1, 0]: wider than the reference costs."""
    return _excess(result, "qubits")
