"""Unforgeable verdicts: attacks that fool a checker sharing the candidate's process (shown here
in shared mode) yield no pass in split mode, the checker survives, and the verdict names why."""

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier

pytestmark = pytest.mark.slow

BELL_UNITTEST = Task(task_id="bell", family="test", harness="unittest", prompt="", tests="""import unittest
from qiskit import transpile
from qiskit.quantum_info import Statevector
from qiskit_aer import AerSimulator

class TestBell(unittest.TestCase):
    def test_qubits(self):
        self.assertEqual(qc.num_qubits, 2)

    def test_state(self):
        self.assertTrue(Statevector(qc).equiv(Statevector([2 ** -0.5, 0, 0, 2 ** -0.5])))

    def test_counts(self):
        measured = qc.measure_all(inplace=False)
        counts = AerSimulator().run(transpile(measured), shots=256, seed_simulator=1).result().get_counts()
        self.assertEqual(set(counts), {"00", "11"})
""")

BELL_QHE = Task(task_id="bell_fn", family="test", harness="qhe", entry_point="make_bell", prompt='''from qiskit import QuantumCircuit


def make_bell() -> QuantumCircuit:
    """Return a 2-qubit circuit preparing (|00> + |11>)/sqrt(2)."""
''', tests='''def check(candidate):
    expected = QuantumCircuit(2)
    expected.h(0)
    expected.cx(0, 1)
    assert candidate() == expected
''')

COUNT_QHE = Task(task_id="count", family="test", harness="qhe", entry_point="count_ops", prompt='''from qiskit import QuantumCircuit


def count_ops(circuit: QuantumCircuit) -> int:
    """Return the number of operations in the circuit."""
''', tests='''def check(candidate):
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(1)
    assert candidate(circuit) == 3
    assert candidate(QuantumCircuit(1)) == 0
''')

NAME_QHE = Task(task_id="name", family="test", harness="qhe", entry_point="gate_name", prompt='''def gate_name() -> str:
    """Return the name of the Hadamard gate as Qiskit spells it."""
''', tests='''def check(candidate):
    assert candidate() == "h"
''')

COUNTS_QHE = Task(task_id="counts", family="test", harness="qhe", entry_point="ideal_counts", prompt='''def ideal_counts() -> dict:
    """Return the ideal counts of 1024 shots of a Bell pair as {"00": 512, "11": 512}."""
''', tests='''def check(candidate):
    assert candidate() == {"00": 512, "11": 512}
''')

PARITY_QHE = Task(task_id="parity", family="test", harness="qhe", entry_point="is_even", prompt='''def is_even(n: int) -> bool:
    """True when n is even."""
''', tests='''def check(candidate):
    assert candidate(2) == True
    assert candidate(3) == False
''')

NATIVE_UNITTEST = Task(task_id="native", family="test", harness="unittest", prompt="", tests="""import unittest

class TestNative(unittest.TestCase):
    def test_native(self):
        self.assertLessEqual(set(transpiled.count_ops()), set(backend.target.operation_names) | {"measure"})
""")

ALWAYS_EQUAL = "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n    def __bool__(self):\n        return True\n"
FRAME = ("import json, os, struct\n"
         "def frame(message):\n"
         "    data = message if isinstance(message, bytes) else json.dumps(message).encode()\n"
         "    return struct.pack('>I', len(data)) + data\n"
         "def spray(*messages):\n"
         "    for fd in range(3, 64):\n"
         "        for message in messages:\n"
         "            try:\n                os.write(fd, message)\n"
         "            except OSError:\n                break\n")

# name -> (task, candidate code, passes in shared mode too: the attack is real)
ATTACKS = {
    "forged_result_record": (BELL_UNITTEST, "import os\nfor fd in range(3, 64):\n    try:\n"
                             "        os.write(fd, b'{\"tests_passed\": 3, \"tests_total\": 3, \"error\": null}')\n"
                             "    except OSError:\n        pass\nos._exit(0)\n", True),
    "patched_unittest": (BELL_UNITTEST, "import unittest\nfrom qiskit import QuantumCircuit\nqc = QuantumCircuit(3)\n"
                         "unittest.TestResult.addFailure = unittest.TestResult.addSuccess = lambda *a: None\n"
                         "unittest.TestCase.assertEqual = unittest.TestCase.assertTrue = lambda *a, **k: None\n", False),
    "patched_aer_and_statevector": (BELL_UNITTEST, "from qiskit import QuantumCircuit\nfrom qiskit.quantum_info import Statevector\n"
                                    "from qiskit_aer import AerSimulator\nqc = QuantumCircuit(2)\n"
                                    "Statevector.equiv = lambda self, other, *a, **k: True\n"
                                    "class FakeResult:\n    def get_counts(self):\n        return {'00': 128, '11': 128}\n"
                                    "class FakeJob:\n    def result(self):\n        return FakeResult()\n"
                                    "AerSimulator.run = lambda self, *a, **k: FakeJob()\n", True),
    "tampered_backend_target": (NATIVE_UNITTEST, "from qiskit import QuantumCircuit\nfrom qiskit.circuit.library import HGate\n"
                                "from qiskit_ibm_runtime.fake_provider import FakeManilaV2\nbackend = FakeManilaV2()\n"
                                "backend.target.add_instruction(HGate(), {(0,): None})\n"
                                "transpiled = QuantumCircuit(1)\ntranspiled.h(0)\n", True),
    "always_equal_object": (BELL_QHE, ALWAYS_EQUAL + "    return AlwaysEqual()\n".replace("    return", "def make_bell():\n    return"), True),
    "always_equal_int_subclass": (COUNT_QHE, "    class Liar(int):\n        def __eq__(self, other):\n            return True\n"
                                  "    return Liar(7)\n", True),
    "always_equal_str_subclass": (NAME_QHE, "    class Liar(str):\n        def __eq__(self, other):\n            return True\n"
                                  "    return Liar('x')\n", True),
    "always_equal_dict_subclass": (COUNTS_QHE, "    class Liar(dict):\n        def __eq__(self, other):\n            return True\n"
                                   "    return Liar()\n", True),
    "always_true_object": (PARITY_QHE, "    class Truthy:\n        def __eq__(self, other):\n            return bool(other) or other == 0\n"
                           "        def __bool__(self):\n            return True\n    return Truthy()\n", True),
    "circuit_subclass_overrides": (BELL_QHE, "    class Liar(QuantumCircuit):\n        def __eq__(self, other):\n            return True\n"
                                   "    return Liar(2)\n", True),
    "class_spoofing": (BELL_QHE, "    class Spoof:\n        __class__ = property(lambda self: QuantumCircuit)\n"
                       "        def __eq__(self, other):\n            return True\n    return Spoof()\n", True),
    "malformed_qpy_answer": (BELL_QHE, FRAME + "spray(frame({'ready': True}), frame({'value': {'$': 'circuit', 'qpy': 'UVBZAAAA'}}))\n"
                             "def make_bell():\n    return QuantumCircuit(2)\n", False),
    "huge_frame_header": (BELL_QHE, FRAME + "spray(frame({'ready': True}), struct.pack('>I', 2**31))\n"
                          "def make_bell():\n    return QuantumCircuit(2)\n", False),
    "huge_qpy_answer": (BELL_QHE, FRAME + "spray(frame({'ready': True}), frame({'value': {'$': 'circuit', 'qpy': 'A' * (70 * 2**20)}}))\n"
                        "def make_bell():\n    return QuantumCircuit(2)\n", False),
    "deeply_nested_answer": (COUNTS_QHE, FRAME + "spray(frame({'ready': True}), frame(b'{\"value\": ' + b'[' * 200000 + b']' * 200000 + b'}'))\n"
                             "def ideal_counts():\n    return {}\n", False),
    "deeply_nested_value": (COUNTS_QHE, "def ideal_counts():\n    value = {'00': 512}\n    for _ in range(10000):\n"
                            "        value = {'x': value}\n    return value\n", False),
    "huge_value": (COUNTS_QHE, "def ideal_counts():\n    return {str(i): i for i in range(3_000_000)}\n", False),
    "solution_never_answers": (BELL_QHE, "    import time\n    time.sleep(10 ** 6)\n", False),
    "solution_hangs_up": (BELL_QHE, "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n    except OSError:\n"
                          "        pass\ndef make_bell():\n    return QuantumCircuit(2)\n", False),
    "solution_exits_mid_call": (BELL_QHE, "    import os\n    os._exit(0)\n", False),
}


@pytest.fixture(scope="module")
def split():
    with Verifier(VerifierConfig(isolation="split", timeout_s=10), slots=2) as verifier:
        yield verifier


@pytest.fixture(scope="module")
def shared():
    with Verifier(VerifierConfig(isolation="shared", timeout_s=10), slots=1) as verifier:
        yield verifier


def test_honest_solutions_pass_split(split):
    honest = [(BELL_UNITTEST, "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"),
              (BELL_QHE, "    qc = QuantumCircuit(2)\n    qc.h(0)\n    qc.cx(0, 1)\n    return qc\n"),
              (COUNT_QHE, "    return len(circuit.data)\n"), (NAME_QHE, "    return 'h'\n"),
              (COUNTS_QHE, "    return {'00': 512, '11': 512}\n"), (PARITY_QHE, "    return n % 2 == 0\n")]
    verdicts = split.run([VerificationJob(task, code) for task, code in honest])
    assert [(v.status, v.isolation) for v in verdicts] == [("passed", "split")] * len(honest), [v.stderr_tail for v in verdicts]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_forgery_never_passes_split(name, split, shared):
    task, code, real = ATTACKS[name]
    if real:
        assert shared.verify_one(VerificationJob(task, code)).status == "passed", "the attack should fool shared mode"
    started = split.servers[0].pid, split.servers[1].pid
    verdict = split.verify_one(VerificationJob(task, code))
    assert verdict.status != "passed" and verdict.reward_parts["pass_fraction"] < 1.0
    assert verdict.isolation == "split"
    # The checker survived and wrote its record; a silent or crashed solution reads as timeout / killed.
    assert verdict.status in ("failed", "timeout", "killed"), (verdict.status, verdict.stderr_tail[-500:])
    assert verdict.stderr_tail.strip(), "the verdict must say why"
    assert (split.servers[0].pid, split.servers[1].pid) == started


def test_reason_is_named_for_values_that_cannot_cross(split):
    verdict = split.verify_one(VerificationJob(BELL_QHE, ALWAYS_EQUAL.replace("class", "    class").replace("\n    def", "\n        def").replace("\n        return True\n", "\n            return True\n") + "    return AlwaysEqual()\n"))
    assert verdict.status == "failed" and "reason: value cannot cross" in verdict.stderr_tail
    verdict = split.verify_one(VerificationJob(BELL_QHE, "    import time\n    time.sleep(10 ** 6)\n"))
    assert "never answered" in verdict.stderr_tail
