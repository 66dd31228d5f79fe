"""Qiskit HumanEval facts that jobs and tests share."""

# Canonical solutions that cannot pass offline on today's stack (qiskit 2.6, qiskit-ibm-runtime
# 0.51), with why. The QPU gateway brings back those that only need an IBM account.
CANNOT_PASS_OFFLINE: dict[int, str] = {
    43: "needs an IBM Quantum account", 97: "needs an IBM Quantum account", 98: "needs an IBM Quantum account",
    133: "needs an IBM Quantum account", 134: "needs an IBM Quantum account", 146: "needs an IBM Quantum account",
    122: "needs IBM's cloud transpiler (qiskit-ibm-transpiler, which pins an old qiskit-ibm-runtime)",
    129: "uses a retired IBM channel", 29: "needs the Graphviz binary",
    123: "needs the Graphviz binary (and seaborn)", 46: "imports a module qiskit 2.x moved",
    103: "expects numbers that changed in qiskit 2.x", 104: "expects numbers that changed in qiskit 2.x",
}


def task_number(task_id: str) -> int:
    """'qiskitHumanEval/100' -> 100."""
    return int(task_id.rsplit("/", 1)[1])


def passes_offline(task_id: str) -> bool:
    return task_number(task_id) not in CANNOT_PASS_OFFLINE


def whole_program_row(row: dict) -> dict:
    """A QHE row in QHE-hard form (for tests and offline stand-ins; the real QHE-hard is the hub
    dataset ``Qiskit/qiskit_humaneval_hard``): the prompt becomes a plain description (the
    docstring, then "You must implement this using a function named `f` with the following
    arguments: a, b."), the canonical solution the whole program (QHE's prompt + its canonical
    solution, imports included), and the test gets the prompt's imports it relied on (in QHE it
    ran after the prompt's code; in QHE-hard nothing of the prompt runs)."""
    import ast

    tree = ast.parse(row["prompt"])
    function = next((node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.name == row["entry_point"]), None)
    if function is None:
        raise ValueError(f"{row['task_id']}: the prompt defines no function {row['entry_point']!r}")
    arguments = [arg.arg for arg in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]]
    docstring = " ".join((ast.get_docstring(function) or "").split())
    description = (f"{docstring} You must implement this using a function named `{function.name}` with the "
                   f"following arguments: {', '.join(arguments) if arguments else 'none'}.").strip()
    imports = [ast.get_source_segment(row["prompt"], node) for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    return {**row, "prompt": description, "canonical_solution": row["prompt"] + row["canonical_solution"],
            "test": "\n".join([*imports, "", row["test"]]) if imports else row["test"]}
