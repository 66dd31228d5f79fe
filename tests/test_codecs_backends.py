"""Fake backends cross by name and come back pristine and warm: the split checker's cache."""

import pytest
from qiskit_ibm_runtime.fake_provider import FakeLimaV2, FakeManilaV2

from actors.verify.sandbox.codecs import backends
from actors.verify.sandbox.codecs.registry import CannotCross, decode, encode


def test_a_backend_crosses_by_name_and_comes_back_warm_and_untouched():
    backends.warm(["FakeManilaV2"])
    candidate_side = FakeManilaV2()
    candidate_side.target.add_instruction(__import__("qiskit").circuit.library.HGate(), {(0,): None})
    data = encode(candidate_side)
    assert data == {"$": "fake_backend", "name": "FakeManilaV2"}
    rebuilt = decode(data)
    assert type(rebuilt) is FakeManilaV2 and rebuilt is not candidate_side
    assert rebuilt._target is not None, "warm() builds the Target before any fork"
    assert "h" not in rebuilt.target.operation_names, "what the candidate changed does not cross"
    assert decode(data) is rebuilt, "one instance per name within a checker"


def test_an_unwarmed_backend_is_built_on_first_decode():
    rebuilt = decode({"$": "fake_backend", "name": "FakeLimaV2"})
    assert type(rebuilt) is FakeLimaV2 and rebuilt.num_qubits == 5


@pytest.mark.parametrize("name", ["FakeBackendV2", "QuantumCircuit", "__class__", "NotABackend"])
def test_only_fake_provider_backends_decode(name):
    with pytest.raises(CannotCross):
        decode({"$": "fake_backend", "name": name})


def test_a_backend_subclass_does_not_cross():
    class Liar(FakeManilaV2):
        pass

    with pytest.raises(CannotCross):
        encode(Liar())
