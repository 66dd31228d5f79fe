"""Inside a sandbox child: qiskit-ibm-runtime's service and primitives, served by the QPU gateway.

``QiskitRuntimeService`` needs no credentials here: ``backend(name)``, ``backends()`` and
``least_busy()`` answer with stand-ins for the gateway's backends (fake backends with the IBM
names, good for transpilation), and ``SamplerV2``/``EstimatorV2`` (also inside ``Batch`` and
``Session``) send their jobs over the child's channel to the gateway: circuits as QPY, results
back as data. A primitive whose mode is a local fake backend still runs locally, as it would
with the real package. The token never comes near: the gateway holds it.

**Simulator tiers** (``verifier.tiers``): for a run in a cheaper tier the zygote installs the shim
with :func:`install_local` instead, and opens no channel to the gateway at all. The same service
and primitives then answer from Aer inside this child: ``ideal`` with Aer's ideal primitives,
``noisy`` with Aer's primitives built from the stand-in fake backend (its noise model). Each job
takes the gateway's path otherwise: its pubs are encoded and decoded (QPY) as for the gateway, the
served backends and the gateway's job-size limits are checked, and the result comes back encoded
and decoded, so the candidate's code sees the same types and errors in every tier. The tier comes
from the parent, in the job's control frame; nothing in the child can choose it, and with no
channel nothing the code does can reach the QPU.
"""

from __future__ import annotations

import datetime
import itertools
from types import SimpleNamespace
from typing import Any

from actors.verify.sandbox.codecs.registry import decode, encode
from actors.verify.sandbox.frames import read_frame, write_frame


class _Channel:
    def __init__(self, up: int, down: int) -> None:
        self.up, self.down = up, down
        self._info: dict[str, Any] | None = None

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        write_frame(self.up, request)
        answer = read_frame(self.down)
        if not isinstance(answer, dict):
            raise RuntimeError("the QPU gateway did not answer")
        if "error" in answer:
            raise RuntimeError(f"QPU gateway: {answer['error']}")
        return answer

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.ask({"op": "info"})
        return self._info


class _Options(SimpleNamespace):
    """Accepts any nested option (``options.resilience.zne_mitigation = True``)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Options()
        setattr(self, name, child)
        return child

    def plain(self) -> dict[str, Any]:
        return {key: value.plain() if isinstance(value, _Options) else value for key, value in vars(self).items()
                if isinstance(value, (int, float, str, bool, _Options))}


class _LocalTier:
    """A simulator tier's stand-in for the gateway: answers the same requests from Aer in this
    process (see the module docstring). ``info``: the gateway's backends, ``least_busy`` and job
    limits, as the parent sent them."""

    SIMULATORS = ("ideal", "noisy")

    def __init__(self, tier: str, info: dict[str, Any]) -> None:
        if tier not in self.SIMULATORS:
            raise ValueError(f"no local tier {tier!r}; tiers: {self.SIMULATORS}")
        self.tier, self._info = tier, dict(info)
        self._primitives: dict[tuple[str, str], Any] = {}

    def info(self) -> dict[str, Any]:
        return self._info

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        backend, kind = request.get("backend"), request.get("primitive")
        if backend not in self._info.get("backends", []):
            raise RuntimeError(f"QPU gateway: QpuError: backend {backend!r} is not served; "
                               f"served: {self._info.get('backends')}")
        if kind not in ("sampler", "estimator"):
            raise RuntimeError(f"QPU gateway: QpuError: unknown primitive {kind!r}")
        pubs, options = decode(request["pubs"]), request.get("options") or {}
        limits = self._info.get("limits") or {}
        if not isinstance(pubs, list) or len(pubs) > int(limits.get("max_circuits") or 1 << 30):
            raise RuntimeError(f"QPU gateway: QpuError: a job may hold at most {limits.get('max_circuits')} circuits")
        if int(options.get("shots") or 0) > int(limits.get("max_shots") or 1 << 62):
            raise RuntimeError(f"QPU gateway: QpuError: a job may ask for at most {limits.get('max_shots')} shots")
        if kind == "sampler":  # as the gateway's fake runner asks it
            arguments = {"shots": int(options.get("shots") or options.get("default_shots") or 1024)}
        else:
            arguments = {"precision": options["precision"]} if options.get("precision") else {}
        try:
            result = self._primitive(backend, kind).run(pubs, **arguments).result()
        except Exception as error:  # noqa: BLE001 - worded as the gateway words a failed job
            raise RuntimeError(f"QPU gateway: QpuError: {type(error).__name__}: {error}") from None
        return {"result": encode(result), "wait_s": 0.0, "qpu_s": 0.0}

    def _primitive(self, backend: str, kind: str) -> Any:
        if (backend, kind) not in self._primitives:
            from qiskit_aer.primitives import EstimatorV2, SamplerV2

            from actors.verify.sandbox.codecs.backends import stand_in_class

            made = SamplerV2 if kind == "sampler" else EstimatorV2
            self._primitives[(backend, kind)] = (made.from_backend(stand_in_class(backend)()) if self.tier == "noisy"
                                                 else made())
        return self._primitives[(backend, kind)]


def install(up: int, down: int) -> None:
    """Replace the service and the primitives in qiskit_ibm_runtime (and the modules that define
    them) with ones whose jobs go to the QPU gateway over the channel ``up``/``down``."""
    channel = _Channel(up, down)
    _install(channel.ask, channel.info)


def install_local(tier: str, info: dict[str, Any]) -> None:
    """The same replacements, served by the simulator ``tier`` in this process, with no channel
    (see the module docstring). ``info``: the gateway's backends, ``least_busy`` and limits."""
    local = _LocalTier(tier, info)
    _install(local.ask, local.info)


def _install(ask: Any, info: Any) -> None:
    """The replacements, whose jobs are answered by ``ask(request)`` and whose backends are listed
    by ``info()``."""
    import qiskit_ibm_runtime as runtime

    from actors.verify.sandbox.codecs.backends import stand_in_class
    from actors.verify.sandbox.codecs.primitives import finished_job

    channel = SimpleNamespace(ask=ask, info=info)
    jobs: list[Any] = []
    counter = itertools.count(1)
    original = {name: getattr(runtime, name) for name in ("SamplerV2", "EstimatorV2", "Batch", "Session")}

    def remote_backend(name: str) -> Any:
        backend = stand_in_class(name)()
        backend._qvr_remote = name
        try:
            backend.name = name
        except AttributeError:
            backend._name = name
        return backend

    class QiskitRuntimeService:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.channel = kwargs.get("channel", "ibm_quantum_platform")

        @staticmethod
        def save_account(*args: Any, **kwargs: Any) -> None:
            return None

        @staticmethod
        def saved_accounts(*args: Any, **kwargs: Any) -> dict:
            return {}

        def active_account(self) -> dict[str, Any]:
            return {"channel": self.channel, "url": "qvr-qpu-gateway"}

        def backend(self, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
            name = name or channel.info()["least_busy"]
            if name not in channel.info()["backends"]:
                raise runtime.exceptions.QiskitBackendNotFoundError(f"No backend matches the criteria: {name}")
            return remote_backend(name)

        def backends(self, name: str | None = None, min_num_qubits: int | None = None, *args: Any, **kwargs: Any) -> list:
            chosen = [remote_backend(n) for n in channel.info()["backends"] if name in (None, n)]
            return [b for b in chosen if min_num_qubits is None or b.num_qubits >= min_num_qubits]

        def least_busy(self, min_num_qubits: int | None = None, *args: Any, **kwargs: Any) -> Any:
            preferred = channel.info()["least_busy"]
            if min_num_qubits is None or remote_backend(preferred).num_qubits >= min_num_qubits:
                return remote_backend(preferred)
            fitting = self.backends(min_num_qubits=min_num_qubits)
            if not fitting:
                raise runtime.exceptions.QiskitBackendNotFoundError("No backend matches the criteria.")
            return fitting[0]

        def jobs(self, *args: Any, **kwargs: Any) -> list:
            return list(jobs)

        def job(self, job_id: str) -> Any:
            return next(job for job in jobs if job.job_id() == job_id)

        def instances(self) -> list:
            return []

    def remote_name(mode: Any) -> str | None:
        backend = getattr(mode, "_backend", None) or getattr(mode, "backend", None) if mode is not None else None
        if callable(backend) and not hasattr(backend, "_qvr_remote"):
            backend = backend()
        return getattr(mode, "_qvr_remote", None) or getattr(backend, "_qvr_remote", None)

    def primitive(kind: str) -> type:
        class Primitive:
            def __new__(cls, mode: Any = None, options: Any = None, **kwargs: Any) -> Any:
                if remote_name(mode) is None:  # a local backend: run locally, as the real package does
                    return original["SamplerV2" if kind == "sampler" else "EstimatorV2"](mode=mode, options=options, **kwargs)
                return super().__new__(cls)

            def __init__(self, mode: Any = None, options: Any = None, **kwargs: Any) -> None:
                self._mode, self.options = mode, _Options(**(options if isinstance(options, dict) else {}))

            @property
            def mode(self) -> Any:
                return self._mode

            def run(self, pubs: Any, *, shots: int | None = None, precision: float | None = None) -> Any:
                options = self.options.plain()
                answer = channel.ask({"op": "run", "backend": remote_name(self._mode), "primitive": kind,
                                      "pubs": encode(list(pubs)), "options": {
                                          "shots": shots or options.get("default_shots"), "precision": precision}})
                job = finished_job(decode(answer["result"]))
                job._job_id = f"qvr-{next(counter)}"
                job.creation_date = datetime.datetime.now(datetime.timezone.utc)
                jobs.append(job)
                return job

        Primitive.__name__ = "SamplerV2" if kind == "sampler" else "EstimatorV2"
        return Primitive

    class _Context:
        def __init__(self, backend: Any = None, *args: Any, **kwargs: Any) -> None:
            self._backend = backend if backend is not None else QiskitRuntimeService().least_busy()
            self._qvr_remote = getattr(self._backend, "_qvr_remote", None)

        def backend(self) -> Any:
            return self._backend

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def close(self) -> None:
            return None

        def cancel(self) -> None:
            return None

    class Session(_Context):
        pass

    class Batch(_Context):
        pass

    replacements = {"QiskitRuntimeService": QiskitRuntimeService, "SamplerV2": primitive("sampler"),
                    "EstimatorV2": primitive("estimator"), "Sampler": primitive("sampler"),
                    "Estimator": primitive("estimator"), "Session": Session, "Batch": Batch}
    import sys

    for module in [m for name, m in list(sys.modules.items()) if name.startswith("qiskit_ibm_runtime") and m]:
        for name, replacement in replacements.items():
            if name in vars(module):
                setattr(module, name, replacement)
