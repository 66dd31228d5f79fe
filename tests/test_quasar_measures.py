"""QUASAR's measures (actors/verify/sandbox/measures/quasar/) against hand-computed values on
1-2 qubit circuits, and the hierarchical reward (actors/verify/rewards/quasar.py) tier by tier."""

import math

import numpy as np
import pytest

from actors.verify.rewards.config import RewardConfig, score
from actors.verify.rewards.quasar import QuasarRewardConfig, hierarchical_reward
from actors.verify.rewards.registry import RewardInput
from actors.verify.sandbox.measures import quasar as qm

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def program(body: str, qubits: int = 1) -> str:
    return f"{HEADER}qubit[{qubits}] q;\nbit[{qubits}] c;\n{body}\nc = measure q;\n"


# One qubit, H = Z: energies [+1 (|0>), -1 (|1>)]; the reference prepares |1>.
TRUTH_Z = {"n_qubits": 1, "paulis": ["Z"], "coeffs": [1.0], "emin": -1.0, "emax": 1.0,
           "reference_probs": [0.0, 1.0], "energy_ref": -1.0}


def test_js_alignment_of_a_basis_state_against_the_uniform_distribution_is_hand_computed():
    # m = (0.75, 0.25); JS = 0.5 ln(1/0.75) + 0.5 (0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)) = 0.215762 nats
    assert qm.js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(0.215762, abs=1e-5)
    assert qm.alignment([1, 0], [0.5, 0.5]) == pytest.approx(1 - math.sqrt(0.215762 / math.log(2)), abs=1e-5)
    assert qm.alignment([0.3, 0.7], [0.3, 0.7]) == pytest.approx(1.0)
    assert qm.alignment([1, 0], [0, 1]) == pytest.approx(0.0, abs=1e-5)


def test_relative_entropy_is_in_bits():
    assert qm.kl_bits([1, 0], [0.5, 0.5]) == pytest.approx(1.0, abs=1e-9)
    assert qm.kl_bits([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0, abs=1e-12)


def test_z_diagonal_follows_qiskit_qubit_order():
    # "IZ" is Z on qubit 0: index bit 0; "ZI" on qubit 1.
    assert qm.z_diagonal(["IZ"], [1.0], 2).tolist() == [1, -1, 1, -1]
    assert qm.z_diagonal(["ZI"], [1.0], 2).tolist() == [1, 1, -1, -1]
    assert qm.z_diagonal(["ZZ", "II"], [2.0, 0.5], 2).tolist() == [2.5, -1.5, -1.5, 2.5]
    with pytest.raises(ValueError):
        qm.z_diagonal(["XZ"], [1.0], 2)


@pytest.mark.parametrize("body, s2, s3", [
    ("x q[0];", 1.0, 1.0),                                      # |1>: the reference, the ground state
    ("h q[0];", 1 - math.sqrt(0.215762 / math.log(2)), 0.5),    # uniform: E = 0
    ("", 0.0, 0.0),                                             # |0>: disjoint from |1>, E = +1 = Emax
])
def test_alignment_and_energy_on_one_qubit(body, s2, s3):
    measures = qm.measure(program(body), TRUTH_Z)
    assert measures["syntax_valid"] == 1.0 and (measures["m"], measures["dw"]) == (0.0, 1.0)
    assert measures["s2"] == pytest.approx(s2, abs=1e-5)
    assert measures["s3"] == pytest.approx(s3, abs=1e-9)


def test_optimisation_progress_is_one_at_an_optimum_and_lower_elsewhere():
    at_optimum = qm.measure(program("rx(pi) q[0];"), TRUTH_Z)
    assert at_optimum["nfev"] == 1 and at_optimum["s4"] == pytest.approx(0.8 + 0.2 * 1.0, abs=1e-6)
    away = qm.measure(program("rx(0.3) q[0];"), TRUTH_Z)
    assert away["nfev"] > 1 and away["s3_after"] > 0.99
    assert away["s4"] == pytest.approx(0.8 / away["nfev"] + 0.2 * away["s3_after"])
    no_angles = qm.measure(program("x q[0];"), TRUTH_Z)
    assert no_angles["s4"] == pytest.approx(0.2 * 1.0)  # nothing to optimise: no progress credit


def test_equal_angles_share_one_parameter():
    circuit = qm.parse_qasm(program("rx(0.25) q[0];\nrz(0.25) q[1];\nry(0.5) q[0];", qubits=2))
    template, start = qm.parametrize(circuit)
    assert start == [0.25, 0.5] and len(template.parameters) == 2


def test_qubit_mismatch_penalty_and_common_marginals():
    # Two qubits for a one-qubit task, qubit 1 acted on: m = -0.2 - 0.05*1 - 0.1*1, JS on qubit 0 at weight 0.5
    measures = qm.measure(program("x q[0];\nh q[1];", qubits=2), TRUTH_Z)
    assert (measures["m"], measures["dw"]) == (pytest.approx(-0.35), 0.5)
    assert measures["s2"] == pytest.approx(1.0) and measures["s3"] == pytest.approx(1.0)
    # Three qubits, the extra two idle: m = -0.2 - 0.05*2
    assert qm.measure(program("x q[0];", qubits=3), TRUTH_Z)["m"] == pytest.approx(-0.3)
    assert qm.mismatch(20, 1, 19) == (-1.0, 0.5)  # clipped
    # Fewer qubits than the task: the missing ones are |0>
    truth = {**TRUTH_Z, "n_qubits": 2, "paulis": ["ZI"], "reference_probs": [0.0, 0.0, 1.0, 0.0]}
    fewer = qm.measure(program("x q[0];"), truth)
    assert fewer["m"] == pytest.approx(-0.25) and fewer["s3"] == pytest.approx(0.0)


@pytest.mark.parametrize("text", [
    "qubit q; h q;",                                            # no header
    HEADER + "qubit[1] q;\nfoo q[0];\n",                        # unknown gate
    'OPENQASM 3.0;\ninclude "/etc/passwd";\nqubit[1] q;\n',     # a file
    'OPENQASM 3.0;\ninclude "stdgates.inc";\ninclude "other.inc";\nqubit[1] q;\n',
    HEADER + "input float theta;\nqubit[1] q;\nrx(theta) q[0];\n",  # an angle without a value
    HEADER + "qubit[1000000] q;\nh q[0];\n",                      # refused before the importer sees it
    None,
])
def test_invalid_programs_measure_only_their_syntax(text):
    assert qm.measure(text, TRUTH_Z) == {"syntax_valid": 0.0}


def test_reference_distribution_is_simulated_when_only_the_circuit_is_given():
    truth = {**TRUTH_Z, "reference_probs": None, "energy_ref": None, "reference_qasm": program("x q[0];")}
    measures = qm.measure(program("x q[0];"), truth)
    assert measures["s2"] == pytest.approx(1.0) and measures["energy_ref"] == pytest.approx(-1.0)


# ---------------------------------------------------------------- the hierarchical reward


def reward(**measures):
    return hierarchical_reward({"syntax_valid": 1.0, "m": 0.0, "dw": 1.0, **measures}, QuasarRewardConfig())


def test_public_form_tiers_by_hand():
    assert hierarchical_reward({"syntax_valid": 0.0}, QuasarRewardConfig()) == -0.5
    assert hierarchical_reward({}, QuasarRewardConfig()) == -0.5  # timeout / no code: no measures
    assert reward(s2=0.95, s3=0.2, s4=0.5) == pytest.approx(0.6 * 0.95 + 0.4 * 0.5)
    assert reward(s2=0.05, s3=0.95, s4=0.5) == pytest.approx(0.3 * 0.05 + 0.3 * 0.95 + 0.4 * 0.5)
    assert reward(s2=0.05, s3=0.5, s4=0.9) == pytest.approx(0.3 * 0.05 + 0.3 * 0.5)
    assert reward(s2=0.5, s3=1.0, s4=1.0) == pytest.approx(0.5)
    assert reward(s2=0.95, s3=0, s4=0.5, m=-0.35, dw=0.5) == pytest.approx(-0.35 + 0.6 * 0.5 * 0.95 + 0.4 * 0.5)


def test_paper_form_and_every_weight_from_config():
    paper = QuasarRewardConfig(form="paper", w2=0.5, w3=0.25, w4=0.25)
    assert hierarchical_reward({"syntax_valid": 0.0}, paper) == -1.0
    assert hierarchical_reward({"syntax_valid": 1.0, "s2": 0.4, "s3": 0.8, "s4": 0.2}, paper) == pytest.approx(0.45)
    config = RewardConfig(quasar=QuasarRewardConfig(high_s2=0.99))
    result = RewardInput(text="", status="failed", tests_passed=1, tests_total=2, family="quasar",
                         measures={"syntax_valid": 1.0, "m": 0.0, "dw": 1.0, "s2": 0.95, "s3": 0.0, "s4": 1.0})
    assert score(config, result) == (pytest.approx(0.95), {"quasar": pytest.approx(0.95)})  # middle tier now
    assert score(RewardConfig(), result)[0] == pytest.approx(0.6 * 0.95 + 0.4)


def test_reward_of_hand_scored_candidates_in_order():
    """Reference > wrong qubit count > random angles > syntax error, on the one-qubit task."""
    def total(text):
        return hierarchical_reward(qm.measure(text, TRUTH_Z), QuasarRewardConfig())

    reference = total(program("rx(pi) q[0];"))
    wrong_count = total(program("rx(pi) q[0];\nh q[1];", qubits=2))
    random_angles = total(program("rx(1.1) q[0];"))
    syntax = total(HEADER + "qubit[1] q;\nrx( q[0];")
    assert reference == pytest.approx(1.0, abs=1e-6)
    assert reference > wrong_count > random_angles > syntax == -0.5


def test_the_fast_simulator_agrees_with_qiskit_on_every_gate_kind():
    from qiskit.quantum_info import Statevector

    text = program("h q[0];\nrx(0.3) q[1];\nry(0.7) q[2];\nrz(1.1) q[0];\ncx q[0], q[2];\np(0.4) q[1];\n"
                   "cp(0.2) q[1], q[2];\nU(0.1, 0.2, 0.3) q[1];\nu3(0.5, 0.2, 0.3) q[2];\ncrx(0.6) q[0], q[1];\n"
                   "swap q[0], q[1];\nccx q[0], q[1], q[2];\nsdg q[2];\nrx(0.3) q[0];", qubits=3)
    circuit = qm.parse_qasm(text)
    template, start = qm.parametrize(circuit)
    fast = qm.compile_template(template)(np.array(start))
    assert np.allclose(fast, qm.probabilities(circuit), atol=1e-12)
    other = np.array(start) + 0.37
    bound = template.assign_parameters(dict(zip(template.parameters, other)))
    assert np.allclose(qm.compile_template(template)(other), np.abs(Statevector(bound).data) ** 2, atol=1e-12)
    from qiskit import QuantumCircuit  # rzz is not in stdgates.inc, but qiskit circuits may hold it

    rzz = QuantumCircuit(2)
    rzz.h([0, 1])
    rzz.rzz(0.9, 1, 0)
    rzz.rx(0.4, 1)
    template, start = qm.parametrize(rzz)
    assert np.allclose(qm.compile_template(template)(np.array(start)), qm.probabilities(rzz), atol=1e-12)


def test_more_angles_than_cobyla_can_start_with_are_not_optimised():
    body = "\n".join(f"rx({0.01 * (i + 1):.2f}) q[0];" for i in range(79))
    measures = qm.measure(program(body), TRUTH_Z)
    assert measures["nfev"] == 0 and measures["s4"] == pytest.approx(0.2 * measures["s3"])
