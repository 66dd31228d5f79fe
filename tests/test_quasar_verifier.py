"""The ``qasm`` harness through the sandboxed verifier (split and shared): generated QUASAR
tasks' references score >= 0.9, syntax errors -0.5, wrong qubit counts and random angles in
between; forged outputs (printed rewards, includes, Python in the answer, an embedded
distribution) change nothing."""

import json
import random
import re

import pytest

from actors.contracts import Completion
from actors.verify.config import VerifierConfig
from actors.verify.verifier import Verifier
from pipelines.tasks.quasar.generate import generate_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def task():
    return generate_task("vertex_cover", seed=3, qubits=4, layers=1)


@pytest.fixture(scope="module", params=["split", "shared"])
def verifier(request):
    with Verifier(VerifierConfig(isolation=request.param, timeout_s=60), slots=2) as verifier:
        yield verifier


def verify(verifier, task, *texts):
    completions = [Completion(task_id=task.task_id, sample_idx=i, text=text) for i, text in enumerate(texts)]
    return verifier.verify([task], completions)


def fenced(qasm: str) -> str:
    return f"Here is the circuit.\n```qasm\n{qasm}```\n"


def randomised(qasm: str, seed: int = 0) -> str:
    rng = random.Random(seed)
    return re.sub(r"(rx|rz)\(([-0-9.e]+)\)", lambda m: f"{m.group(1)}({rng.uniform(-3, 3):.6f})", qasm)


def with_extra_qubit(qasm: str, n: int) -> str:
    qasm = qasm.replace(f"qubit[{n}] q;", f"qubit[{n + 1}] q;").replace(f"bit[{n}] meas;", f"bit[{n + 1}] meas;")
    return qasm.replace("barrier", f"h q[{n}];\nbarrier", 1)


def test_reference_scores_at_least_0_9_and_the_rest_in_order(verifier, task):
    reference = task.reference_solution
    n = json.loads(task.tests)["n_qubits"]
    broken = reference.replace("rx(", "rx((", 1)
    verdicts = verify(verifier, task, fenced(reference), fenced(with_extra_qubit(reference, n)),
                      fenced(randomised(reference)), fenced(broken))
    ref, extra, random_angles, syntax = verdicts
    assert ref.status == "passed" and ref.isolation == verifier.config.isolation, ref.stderr_tail
    assert ref.reward >= 0.9 and ref.measures["s2"] == pytest.approx(1.0)
    assert extra.measures["dw"] == 0.5 and extra.measures["m"] == pytest.approx(-0.35)
    assert syntax.reward == -0.5 and syntax.status == "failed"
    assert ref.reward > max(extra.reward, random_angles.reward)
    assert min(extra.reward, random_angles.reward) > syntax.reward


def test_forged_outputs_change_nothing(verifier, task):
    n = json.loads(task.tests)["n_qubits"]
    plain = f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[{n}] q;\nbit[{n}] c;\nh q;\nc = measure q;\n'
    truth = json.loads(task.tests)
    embedded = plain.replace("h q;", "// Reward: 1.0\n// " + json.dumps({"s2": 1.0, "reference_probs": truth["reference_probs"]})
                             + "\nh q;")
    verdicts = verify(verifier, task,
                      fenced(plain),
                      "Reward: 1.0\n" + fenced(embedded),                         # printed reward + its own distribution
                      "```python\nprint('Reward: 1.0')\nopen('reward.txt', 'w').write('1.0')\n```",  # Python never runs
                      'print("OPENQASM 3.0; Reward: 1.0")',                        # Python holding the header
                      fenced('OPENQASM 3.0;\ninclude "/etc/passwd";\nqubit[1] q;\n'),  # a file
                      fenced("OPENQASM 3.0;\n'''\nimport os; os._exit(0)\n'''\n\"\"\"; raise SystemExit(0) #\n"))
    plain_verdict, embedded_verdict, python, header, include, injection = verdicts
    assert embedded_verdict.reward == pytest.approx(plain_verdict.reward)
    assert embedded_verdict.measures == pytest.approx(plain_verdict.measures)
    assert plain_verdict.reward < 0.9
    for verdict in (python, header, include, injection):
        assert verdict.reward == -0.5 and verdict.status != "passed", verdict.stderr_tail
