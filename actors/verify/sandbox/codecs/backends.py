"""IBM fake backends by name: the checker gets a pristine instance of the same class.

Only classes that qiskit_ibm_runtime.fake_provider itself exports cross, so the data is a
name from a fixed list; whatever the candidate changed on its instance does not cross.

Building a fake backend's Target parses its calibration JSON (~9 ms for a 5-qubit device, far
more for 127 qubits): more than a whole small verification. So decoded backends come from a
per-process cache: the zygote warms the backends its tasks use (:func:`warm`), every checker it
forks starts from those untouched instances, and within one checker each name decodes to one
instance. A checker is one verification, so nothing crosses from one job to the next."""

from __future__ import annotations

from qiskit_ibm_runtime import fake_provider
from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

from actors.verify.sandbox.codecs.registry import Codec, register


def _encode(value: FakeBackendV2, _) -> dict:
    name = type(value).__name__
    if getattr(fake_provider, name, None) is not type(value):
        raise TypeError(f"{name} is not one of qiskit_ibm_runtime.fake_provider's backends")
    return {"name": name}


_INSTANCES: dict[str, FakeBackendV2] = {}


def _backend(name: str) -> FakeBackendV2:
    kind = getattr(fake_provider, name, None)
    if not (isinstance(kind, type) and issubclass(kind, FakeBackendV2)):
        raise ValueError(f"unknown fake backend {name!r}")
    if name not in _INSTANCES:
        _INSTANCES[name] = kind()
    return _INSTANCES[name]


def stand_in_class(name: str) -> type:
    """The fake backend class that stands in for an IBM device name: 'ibm_kyoto' or 'fake_kyoto'
    -> FakeKyotoV2 (or FakeKyoto). ValueError when none does."""
    stem = name.split("_", 1)[1] if "_" in name else name
    for candidate in (f"Fake{stem.capitalize()}V2", f"Fake{stem.capitalize()}"):
        kind = getattr(fake_provider, candidate, None)
        if isinstance(kind, type):
            return kind
    raise ValueError(f"no fake backend stands in for {name!r}")


def warm(names: list[str]) -> None:
    """Build these backends and their Targets now (in the zygote, before it forks)."""
    for name in names:
        _ = _backend(name).target


def _decode(data, _) -> FakeBackendV2:
    return _backend(str(data["name"]))


register(Codec("fake_backend", (FakeBackendV2,), _encode, _decode))
