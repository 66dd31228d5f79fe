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
