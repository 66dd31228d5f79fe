"""IBM fake backends by name: the checker builds a fresh instance of the same class.

Only classes that qiskit_ibm_runtime.fake_provider itself exports cross, so the data is a
name from a fixed list; whatever the candidate changed on its instance does not cross."""

from __future__ import annotations

from qiskit_ibm_runtime import fake_provider
from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

from actors.verify.codecs import Codec, register


def _encode(value: FakeBackendV2, _) -> dict:
    name = type(value).__name__
    if getattr(fake_provider, name, None) is not type(value):
        raise TypeError(f"{name} is not one of qiskit_ibm_runtime.fake_provider's backends")
    return {"name": name}


def _decode(data, _) -> FakeBackendV2:
    kind = getattr(fake_provider, str(data["name"]), None)
    if not (isinstance(kind, type) and issubclass(kind, FakeBackendV2)):
        raise ValueError(f"unknown fake backend {data['name']!r}")
    return kind()


register(Codec("fake_backend", (FakeBackendV2,), _encode, _decode))
