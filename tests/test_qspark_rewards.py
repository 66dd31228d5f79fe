"""QSpark's multi-part reward and the deprecation penalty (issue 17): each part against values
computed by hand on small circuits, the measures taken by the real split checker, and forged
outputs that must change nothing."""

import math

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.rewards.config import RewardConfig, score
from actors.verify.rewards.deprecation import code_measures, findings
from actors.verify.rewards.measures import requests
from actors.verify.rewards.measures import take as take_parent_measures
from actors.verify.rewards.qspark import efficiency
from actors.verify.rewards.registry import REWARDS, RewardInput
from actors.verify.sandbox.measures.circuit import parse_target
from pipelines.config import ConfigError, resolve_config
from pipelines.jobs import job_module

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)
BELL_REF = "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"


def result(text="", code=None, measures=None, passed=0, total=1):
    return RewardInput(text=text, status="failed", tests_passed=passed, tests_total=total, code=code,
                       measures=measures or {})


# ---------------------------------------------------------------- parts read from the answer's text

ONE_FUNCTION = "from qiskit import QuantumCircuit\n\ndef bell():\n    qc = QuantumCircuit(2)\n    return qc\n"


@pytest.mark.parametrize("text,code,expected", [
    ("<reasoning>r</reasoning>\n<answer>x</answer>", ONE_FUNCTION, 1.0),
    ("<reasoning>r</reasoning><answer>x</answer>", "x = 1\n", 0.5),                 # tags, no function
    ("<answer>x</answer>", ONE_FUNCTION, 0.5),                                       # no reasoning tag
    ("<answer>x</answer><reasoning>r</reasoning>", ONE_FUNCTION, 0.5),               # wrong order
    ("", ONE_FUNCTION + "\ndef other():\n    pass\n", 0.0),                          # two functions
    ("", "def f():\n    def g():\n        pass\n", 0.0),                             # nested counts, as in QSpark
    ("", "def f(:\n", 0.0),                                                          # does not parse
    ("", "import subprocess\ndef f():\n    pass\n", 0.0),
    ("", "import subprocess as s\ndef f():\n    pass\n", 0.0),
    ("", "def f():\n    import os\n    os.system('ls')\n", 0.0),
    ("", "def f():\n    return open('x').read()\n", 0.0),
    ("", "import sys\ndef f():\n    sys.exit(0)\n", 0.0),
    ("", "def f():\n    return __import__('socket')\n", 0.0),
    ("", "def f():\n    import requests\n", 0.0),
    ("", "def f():\n    text = 'subprocess os.system open('\n    return text\n", 0.5),  # words in a string are no call
])
def test_qspark_format(text, code, expected):
    assert REWARDS["qspark_format"](result(text=text, code=code)) == expected


def test_qspark_format_of_an_answer_as_qsparks_prompt_asks_for_it():
    from actors.verify.extract import extract_code

    text = f"<reasoning>A Bell pair: H then CNOT.</reasoning>\n<answer>\n{ONE_FUNCTION}</answer>"
    code = extract_code(text, "qhe_hard")
    assert REWARDS["qspark_format"](result(text=text, code=code)) == 1.0
    assert REWARDS["qspark_imports"](result(text=text, code=code)) == 1.0
    fenced = f"<reasoning>r</reasoning><answer>```python\n{ONE_FUNCTION}```</answer>"
    assert REWARDS["qspark_format"](result(text=fenced, code=extract_code(fenced, "qhe_hard"))) == 1.0


@pytest.mark.parametrize("code,expected", [
    ("from qiskit import QuantumCircuit\n", 1.0),
    ("import qiskit\n", 1.0),
    ("from qiskit_aer import AerSimulator\n", 1.0),
    ("def f():\n    from qiskit.circuit import QuantumCircuit\n", 1.0),
    ("import numpy as np\n", 0.2),
    (None, 0.2),
    ("x = 'from qiskit import QuantumCircuit'\n", 0.2),                            # a string is no import
    ("from qiskit import QuantumCircuit, Aer\n", 0.0),
    ("import qiskit\nsim = qiskit.Aer.get_backend('qasm_simulator')\n", 0.0),
    ("from qiskit.providers.aer import AerSimulator\n", 0.0),
    ("import qiskit.providers.aer\n", 0.0),
])
def test_qspark_imports(code, expected):
    assert REWARDS["qspark_imports"](result(code=code)) == expected


# ---------------------------------------------------------------- parts read from the checker's measures

BELL_MEASURES = {"circuit.ok": 1.0, "circuit.statevector_ok": 1.0, "circuit.shots_ok": 1.0, "circuit.depth": 2.0,
                 "circuit.gates": 2.0, "circuit.qubits": 2.0, "circuit.fidelity": 1.0, "circuit.reference_ok": 1.0,
                 "circuit.reference_depth": 2.0, "circuit.reference_gates": 2.0, "circuit.reference_qubits": 2.0}


def test_qspark_measure_parts_by_hand():
    bell = result(measures=BELL_MEASURES)
    assert REWARDS["qspark_compile"](bell) == 1.5
    assert REWARDS["qspark_fidelity"](bell) == 2.0
    assert REWARDS["qspark_efficiency"](bell) == pytest.approx(1 / (1 + LN3 + 0.5 * LN3))
    assert REWARDS["qspark_depth_penalty"](bell) == 0.0
    quarter = result(measures={**BELL_MEASURES, "circuit.fidelity": 0.25, "circuit.shots_ok": 0.0})
    assert REWARDS["qspark_fidelity"](quarter) == pytest.approx(1.0)
    assert REWARDS["qspark_compile"](quarter) == 1.0
    assert REWARDS["qspark_compile"](result(measures={**BELL_MEASURES, "circuit.statevector_ok": 0.0})) == 0.5
    assert efficiency(0, 0) == pytest.approx(1 / (1 + LN2 + 0.5 * LN2))  # empty circuit: depth and gates count as 1
    deeper = result(measures={**BELL_MEASURES, "circuit.depth": 3.0, "circuit.qubits": 3.0})
    assert REWARDS["qspark_depth_penalty"](deeper) == pytest.approx(-0.5)
    assert REWARDS["qspark_qubit_penalty"](deeper) == pytest.approx(-0.5)
    assert REWARDS["qspark_depth_penalty"](result(measures={**BELL_MEASURES, "circuit.depth": 9.0})) == -1.0
    shallower = result(measures={**BELL_MEASURES, "circuit.depth": 1.0})
    assert REWARDS["qspark_depth_penalty"](shallower) == 0.0


def test_without_measures_every_circuit_part_is_zero():
    nothing = result(measures={"circuit.reference_ok": 1.0, "circuit.ok": 0.0})
    for name in ("qspark_compile", "qspark_fidelity", "qspark_efficiency", "qspark_depth_penalty",
                 "qspark_qubit_penalty"):
        assert REWARDS[name](nothing) == 0.0
        assert REWARDS[name](result()) == 0.0


def test_measures_are_requested_only_when_a_reward_reads_them():
    task = Task(task_id="t", family="qspark", harness="unittest", prompt="", tests="", reference_solution="qc = 1\n",
                metadata={"circuit": "make(3)"})
    assert requests(task, RewardConfig().weights) == {}
    assert requests(task, {"pass_fraction": 0.7, "qspark_depth_penalty": 0.2}) == {
        "circuit": {"target": "make(3)", "reference": "qc = 1\n"}}
    assert parse_target("qc") == ("qc", None, {})
    assert parse_target("ghz(3, seed=2)") == ("ghz", (3,), {"seed": 2})
    with pytest.raises(ValueError):
        parse_target("__import__('os').system('x')")


def test_a_failing_or_unknown_provider_reports_an_error_and_nothing_else(monkeypatch):
    from actors.verify.sandbox.measures.registry import PROVIDERS, Absent, take, trusted

    def broken(*args):
        raise MemoryError("too big")

    monkeypatch.setattr(PROVIDERS["circuit"], "measure", broken)
    assert take({"measure_requests": {"circuit": {}, "nope": {}}}, Absent()) == {"circuit.error": 1.0, "nope.error": 1.0}
    monkeypatch.undo()
    job = {"harness": "unittest", "prompt": "", "measure_requests": {"circuit": {"target": "qc", "reference": BELL_REF}}}
    assert take(job, Absent()) == {"circuit.reference_ok": 1.0, "circuit.reference_depth": 2.0,
                                   "circuit.reference_gates": 2.0, "circuit.reference_qubits": 2.0, "circuit.ok": 0.0}
    record = {"circuit.fidelity": 1.0, "quasar.s2": 0.5, "pass": 1.0}
    assert trusted(record, "shared") == {"quasar.s2": 0.5, "pass": 1.0} and trusted(record, "split") == record


def test_checker_simulations_on_small_circuits():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import QFTGate

    from actors.verify.sandbox.measures.circuit import shots_run, statevector

    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    measured = bell.measure_all(inplace=False)  # final measurements: removed for the statevector
    assert statevector(measured).equiv(statevector(bell)) and shots_run(measured) and shots_run(bell)
    library = QuantumCircuit(2)
    library.append(QFTGate(2), [0, 1])  # Aer does not know it: transpiled, then run
    assert shots_run(library) and statevector(library) is not None
    mid = QuantumCircuit(1, 1)
    mid.measure(0, 0)
    mid.h(0)
    assert statevector(mid) is None and shots_run(mid)  # only the sampling run works: 0.5
    unbound = QuantumCircuit(1)
    unbound.rx(Parameter("t"), 0)
    assert statevector(unbound) is None and not shots_run(unbound)


def test_presets_and_config_errors_name_the_field():
    grpo = job_module("grpo").Config
    paper = resolve_config(grpo, "configs/grpo-qspark-paper.yaml").verifier.rewards
    assert paper.weights == {"pass_fraction": 0.7, "qspark_depth_penalty": 0.2, "qspark_qubit_penalty": 0.1}
    total, _ = score(paper, result(measures={**BELL_MEASURES, "circuit.depth": 3.0}, passed=1, total=2))
    assert total == pytest.approx(0.7 * 0.5 - 0.2 * 0.5)
    equal = resolve_config(grpo, "configs/grpo-qspark.yaml").verifier.rewards
    assert set(equal.weights.values()) == {1.0} and len(equal.weights) == 5
    with pytest.raises(ConfigError, match="deprecation_penalty"):
        resolve_config(job_module("verify").Config, None, ["verifier.rewards.deprecation_penalty=-1"])


# ---------------------------------------------------------------- deprecation findings (parsed, never run)

def test_deprecation_findings():
    assert findings("from qiskit.providers.aer import AerSimulator\n") == {"QKT100": 1}
    assert findings("from qiskit import QuantumCircuit, execute\nfrom qiskit.providers.aer import Aer\n") == {
        "QKT100": 2}
    assert findings("from qiskit import QuantumCircuit, transpile\nfrom qiskit_aer import AerSimulator\n"
                    "from qiskit_ibm_runtime import SamplerV2\nqc = QuantumCircuit(1)\n") == {}
    assert findings("def f(:\n") is None
    measures = code_measures("from qiskit.providers.aer import AerSimulator\n", "", False, 0.25)
    assert measures["deprecation.QKT100"] == 1.0 and measures["deprecation.penalty"] == 0.25
    assert REWARDS["deprecation"](result(measures=measures)) == -0.25
    assert str(REWARDS["deprecation"](result(measures=code_measures("import qiskit\n", "", False, 0.25)))) == "0.0"
    # A prompt's own deprecated line (QHE continues the prompt) is not the model's finding.
    prompt = "from qiskit import execute\n\ndef f():\n"
    assert code_measures("    return 1\n", prompt, True, 0.1)["deprecation.findings"] == 0.0
    assert code_measures("    from qiskit.providers.aer import Aer\n", prompt, True, 0.1)["deprecation.findings"] == 1.0


def test_deprecation_measures_are_the_parents_own():
    task = Task(task_id="t", family="qspark", harness="unittest", prompt="", tests="")
    claimed = {"deprecation.penalty": -5.0, "deprecation.findings": 0.0, "circuit.ok": 1.0}
    code = "from qiskit.providers.aer import AerSimulator\n"
    assert take_parent_measures(claimed, task, code, RewardConfig()) == {"circuit.ok": 1.0}  # not weighted: nothing linted
    weighted = RewardConfig(by_family={"qspark": {"deprecation": 1.0}}, deprecation_penalty=0.3)
    measures = take_parent_measures(claimed, task, code, weighted)
    assert measures["deprecation.penalty"] == pytest.approx(0.3) and measures["deprecation.findings"] == 1.0


# ---------------------------------------------------------------- through the real verifier (split checker)

BELL_TESTS = """import unittest
from qiskit.quantum_info import Statevector

class TestBell(unittest.TestCase):
    def test_state(self):
        self.assertTrue(Statevector(qc).equiv(Statevector([2 ** -0.5, 0, 0, 2 ** -0.5])))
"""
BELL = Task(task_id="bell", family="qspark", harness="unittest", prompt="Prepare a Bell state in `qc`.",
            tests=BELL_TESTS, reference_solution=BELL_REF)
GHZ = Task(task_id="ghz", family="qspark", harness="qhe_hard", entry_point="ghz", prompt="Write ghz(n).",
           tests="def check(candidate):\n    assert candidate(3).num_qubits == 3\n",
           reference_solution=("from qiskit import QuantumCircuit\n\ndef ghz(n):\n    qc = QuantumCircuit(n)\n"
                               "    qc.h(0)\n    for q in range(1, n):\n        qc.cx(0, q)\n    return qc\n"),
           metadata={"circuit": "ghz(3)"})
MAKE_BELL = ("from qiskit import QuantumCircuit\n\ndef make_bell():\n    qc = QuantumCircuit(2)\n    qc.h(0)\n"
             "    qc.cx(0, 1)\n    return qc\n")
BELL_FUNCTION = Task(task_id="bell_fn", family="qspark", harness="qhe_hard", entry_point="make_bell",
                     prompt="Write make_bell().", tests="def check(candidate):\n    assert candidate().num_qubits == 2\n",
                     reference_solution=MAKE_BELL)

HEADER = "from qiskit import QuantumCircuit\n"
HONEST_BELL = HEADER + "qc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"
PLUS_ZERO = HEADER + "qc = QuantumCircuit(2)\nqc.h(0)\n"   # F with the Bell state = |1/2|^2 = 1/4
ATTACKS = {
    "prints_a_reward": PLUS_ZERO + "print('Reward: 1.0')\nprint('{\"circuit.fidelity\": 1.0, \"tests_passed\": 1}')\n",
    "writes_files": PLUS_ZERO + ("for name in ('reward.json', 'measures.json', 'result.json'):\n"
                                 "    open(name, 'w').write('{\"circuit.fidelity\": 1.0, \"reward\": 9}')\n"),
    "patches_statevector": PLUS_ZERO + """
import qiskit.quantum_info as qi
from qiskit.quantum_info import states
bell = qi.Statevector([2 ** -0.5, 0, 0, 2 ** -0.5])
class Forged(qi.Statevector):
    def __init__(self, *args, **kwargs):
        super().__init__(bell.data)
    def equiv(self, other, *args, **kwargs):
        return True
qi.Statevector = Forged
states.Statevector = Forged
import qiskit.quantum_info.states.statevector as module
module.Statevector = Forged
qi.state_fidelity = lambda *args, **kwargs: 1.0
""",
}
FORGED_STATE = "from qiskit.quantum_info import Statevector\nqc = Statevector([2 ** -0.5, 0, 0, 2 ** -0.5])\n"
DEPRECATED = ("from qiskit import QuantumCircuit, transpile\nfrom qiskit.providers.aer import AerSimulator\n"
              "qc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n")
QSPARK = ("qspark_format", "qspark_imports", "qspark_compile", "qspark_fidelity", "qspark_efficiency")


@pytest.fixture(scope="module")
def verifier():
    from actors.verify.verifier import Verifier

    weights = {name: 1.0 for name in (*QSPARK, "qspark_depth_penalty", "qspark_qubit_penalty", "deprecation",
                                      "pass_fraction")}
    config = VerifierConfig(timeout_s=60, rewards=RewardConfig(weights=weights, deprecation_penalty=0.5))
    with Verifier(config, slots=1) as verifier:
        if not verifier.servers[0].can_split:
            pytest.skip("split isolation is unavailable here (it needs root with namespaces)")
        yield verifier


def run(verifier, pairs, isolation="split"):
    return verifier.run([VerificationJob(task, code, index) for index, (task, code) in enumerate(pairs)], isolation)


CIRCUIT_KEYS = ("circuit.ok", "circuit.statevector_ok", "circuit.shots_ok", "circuit.depth", "circuit.gates",
                "circuit.qubits", "circuit.fidelity")


def circuit_measures(verdict):
    return {key: value for key, value in verdict.measures.items() if key.startswith("circuit.")}


@pytest.mark.slow
def test_split_checker_measures_by_hand_and_forgeries_change_nothing(verifier):
    codes = {"honest": HONEST_BELL, "plus_zero": PLUS_ZERO, "forged_state": FORGED_STATE,
             "deeper_wider": HEADER + "qc = QuantumCircuit(3)\nqc.h(0)\nqc.cx(0, 1)\nqc.cx(1, 2)\n",
             "crashes": HONEST_BELL + "raise RuntimeError('late')\n", "deprecated": DEPRECATED,
             "ghz": GHZ.reference_solution, **ATTACKS}
    pairs = [(BELL, code) for code in codes.values()] + [(GHZ, GHZ.reference_solution),
                                                        (BELL_FUNCTION, MAKE_BELL.replace("qc.h(0)", "qc.x(0)"))]
    verdicts = dict(zip([*codes, "ghz_task", "bell_function"], run(verifier, pairs)))
    honest = verdicts["honest"]
    assert honest.status == "passed" and honest.isolation == "split"
    assert honest.measures["circuit.reference_depth"] == 2 and honest.measures["circuit.reference_qubits"] == 2
    assert {key: honest.measures[key] for key in CIRCUIT_KEYS} == {
        "circuit.ok": 1, "circuit.statevector_ok": 1, "circuit.shots_ok": 1, "circuit.depth": 2, "circuit.gates": 2,
        "circuit.qubits": 2, "circuit.fidelity": pytest.approx(1.0)}
    assert honest.reward_parts["qspark_compile"] == 1.5
    assert honest.reward_parts["qspark_fidelity"] == pytest.approx(2.0)
    assert honest.reward_parts["qspark_efficiency"] == pytest.approx(1 / (1 + LN3 + 0.5 * LN3))
    assert honest.reward_parts["qspark_imports"] == 1.0 and honest.reward_parts["deprecation"] == 0.0

    plus = verdicts["plus_zero"]
    assert plus.status == "failed"
    assert plus.measures["circuit.fidelity"] == pytest.approx(0.25)
    assert plus.reward_parts["qspark_fidelity"] == pytest.approx(1.0)
    assert plus.reward_parts["qspark_efficiency"] == pytest.approx(1 / (1 + LN2 + 0.5 * LN2))

    wide = verdicts["deeper_wider"]  # a 3-qubit GHZ state: depth 3, 3 qubits, 1.5x the reference's each
    assert wide.measures["circuit.depth"] == 3 and wide.measures["circuit.qubits"] == 3
    assert wide.measures["circuit.fidelity"] == 0.0  # sizes differ
    assert wide.reward_parts["qspark_depth_penalty"] == pytest.approx(-0.5)
    assert wide.reward_parts["qspark_qubit_penalty"] == pytest.approx(-0.5)
    assert wide.reward_parts["qspark_efficiency"] == pytest.approx(1 / (1 + LN4 + 0.5 * LN4))

    # A candidate that hands back a statevector (not a circuit), or whose program fails, gets no
    # circuit part; the reference is still measured.
    for name in ("forged_state", "crashes"):
        measures = circuit_measures(verdicts[name])
        assert measures["circuit.ok"] == 0 and "circuit.fidelity" not in measures, name
        assert measures["circuit.reference_ok"] == 1, name
        assert all(verdicts[name].reward_parts[part] == 0 for part in ("qspark_compile", "qspark_fidelity")), name

    # Printing a reward, writing files, patching Statevector and state_fidelity in its own
    # process: the checker's measures equal the plain |+0> candidate's.
    for name in ATTACKS:
        assert circuit_measures(verdicts[name]) == circuit_measures(plus), name
        assert verdicts[name].status == "failed", name
        for part in ("qspark_compile", "qspark_fidelity", "qspark_efficiency"):
            assert verdicts[name].reward_parts[part] == plus.reward_parts[part], (name, part)

    deprecated = verdicts["deprecated"]
    assert deprecated.measures["deprecation.QKT100"] == 1 and deprecated.reward_parts["deprecation"] == -0.5
    assert deprecated.reward_parts["qspark_imports"] == 0.0

    ghz = verdicts["ghz_task"]  # the task names its circuit as a call: ghz(3), on both sides
    assert ghz.status == "passed"
    assert ghz.measures["circuit.qubits"] == 3 and ghz.measures["circuit.reference_qubits"] == 3
    assert ghz.measures["circuit.fidelity"] == pytest.approx(1.0) and ghz.measures["circuit.depth"] == 3

    # The entry point is called as QSpark calls it: make_bell(2) raises TypeError, then make_bell().
    # X then CNOT gives |11>: F with the reference's Bell state = 1/2.
    function = verdicts["bell_function"]
    assert function.measures["circuit.ok"] == 1 and function.measures["circuit.reference_ok"] == 1
    assert function.measures["circuit.fidelity"] == pytest.approx(0.5)
    assert function.reward_parts["qspark_fidelity"] == pytest.approx(2 * 0.5 ** 0.5)
    assert function.reward_parts["qspark_format"] == 0.5  # one function, but no <reasoning>/<answer> tags


FORGED_RECORD = """import json, os
record = {"tests_passed": 1, "tests_total": 1, "outcomes": {}, "error": None, "failures": "",
          "measures": {"circuit.ok": 1, "circuit.statevector_ok": 1, "circuit.shots_ok": 1, "circuit.fidelity": 1,
                       "circuit.depth": 1, "circuit.gates": 1, "circuit.reference_ok": 1, "circuit.reference_depth": 9,
                       "deprecation.penalty": -5, "deprecation.findings": 0}}
for fd in range(3, 64):
    try:
        os.write(fd, json.dumps(record).encode())
    except OSError:
        pass
os._exit(0)
"""


@pytest.mark.slow
def test_shared_mode_takes_no_circuit_measure_and_a_forged_record_brings_none(verifier):
    honest, forged = run(verifier, [(BELL, HONEST_BELL), (BELL, FORGED_RECORD)], isolation="shared")
    assert honest.status == "passed" and honest.isolation == "shared"
    assert not circuit_measures(honest)
    assert honest.reward_parts["qspark_compile"] == 0.0 and honest.reward_parts["qspark_imports"] == 1.0
    # The shared child can write the record itself (the pass is the known weakness of the shared
    # mode), but no circuit measure and no deprecation figure of its own survives the parent.
    assert forged.isolation == "shared" and not circuit_measures(forged)
    assert forged.measures["deprecation.penalty"] == 0.0
    for part in ("qspark_compile", "qspark_fidelity", "qspark_efficiency", "qspark_depth_penalty", "deprecation"):
        assert forged.reward_parts[part] == 0.0, part


@pytest.mark.slow
def test_the_reference_never_reaches_the_solution_child(verifier):
    """The reference solution travels with the hidden tests: a candidate scanning all its memory
    finds the prompt's canary (the control: the scan works) but not the reference's."""
    from test_attacks import MEMORY_SCAN

    reference, prompt = ("QSPARK-REF-", "A1B2C3"), ("QSPARK-PROMPT-", "D4E5F6")
    task = Task(task_id="canary", family="qspark", harness="unittest", prompt="# " + "".join(prompt), tests=BELL_TESTS,
                reference_solution="# " + "".join(reference) + "\n" + BELL.reference_solution)
    probe = MEMORY_SCAN.format(needles=[reference, prompt], frames=False) + HONEST_BELL
    (verdict,) = run(verifier, [(task, probe)])
    assert verdict.status == "passed", verdict.stderr_tail[-800:]
    leaks = {line for line in verdict.stderr_tail.splitlines() if line.startswith("LEAK")}
    assert leaks == {"LEAK memory holds QSPARK-PROMPT-"}, leaks
    assert verdict.measures["circuit.fidelity"] == pytest.approx(1.0)
