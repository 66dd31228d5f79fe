"""The runners the QPU gateway drives: each takes one primitive job (a sampler or estimator run of
some pubs on a named backend), runs it, and tells the gateway when the backend has it.
:class:`FakeRunner` runs qiskit-ibm-runtime's fake backends locally with Aer (with their noise
models or ideal), with fault injection for tests; :class:`IbmRunner` runs on IBM hardware through
QiskitRuntimeService and is the only place the IBM token is read. Transient backend errors are
raised as :class:`~actors.verify.qpu.errors.TransientQpuError` for the gateway's retry policy.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.errors import QpuError, TransientQpuError


def fake_backend_class(name: str) -> type:
    """'ibm_kyoto' or 'fake_kyoto' -> FakeKyoto."""
    from actors.verify.sandbox.codecs.backends import stand_in_class

    try:
        return stand_in_class(name)
    except ValueError as error:
        raise QpuError(str(error)) from None


class FakeRunner:
    """Runs primitive jobs locally on fake backends with their noise models (Aer's primitives,
    built once per backend: what qiskit-ibm-runtime's local mode does, without rebuilding the
    noise model for every job)."""

    def __init__(self, config: QpuConfig) -> None:
        self.config = config
        self._primitives: dict[tuple[str, str], Any] = {}
        self._runs = 0
        self._lock = threading.Lock()

    def primitive(self, name: str, kind: str) -> Any:
        if (name, kind) not in self._primitives:
            from qiskit_aer.primitives import EstimatorV2, SamplerV2

            backend = fake_backend_class(name)()
            kind_class = SamplerV2 if kind == "sampler" else EstimatorV2
            self._primitives[(name, kind)] = kind_class.from_backend(backend) if self.config.noise else kind_class()
        return self._primitives[(name, kind)]

    def run(self, name: str, primitive: str, pubs: list, options: dict[str, Any],
            submitted: Any = None) -> Any:
        """Run one submission (in a worker thread). ``submitted()`` is called once the backend has
        the job (the gateway counts it in the rolling minute from then on)."""
        with self._lock:
            self._runs += 1
            runs = self._runs
        if submitted:
            submitted()
        if self.config.always_fail:
            raise QpuError(f"backend {name} failed the job (fault injection: always_fail)")
        every = self.config.transient_failure_every
        if every and runs % every == 0:
            raise TransientQpuError(f"backend {name} is temporarily unavailable (fault injection)")
        if primitive == "sampler":
            arguments = {"shots": int(options.get("shots") or options.get("default_shots") or 1024)}
        else:
            arguments = {"precision": options["precision"]} if options.get("precision") else {}
        return self.primitive(name, primitive).run(pubs, **arguments).result()


class IbmRunner:
    """Runs primitive jobs on IBM hardware. The token is read here, and only here."""

    def __init__(self, config: QpuConfig) -> None:
        from qiskit_ibm_runtime import QiskitRuntimeService

        token = os.environ.get(config.token_env)
        if config.token_file:
            token = Path(config.token_file).read_text().strip()
        if not token:
            raise QpuError(f"ibm backends need a token: set {config.token_env} or qpu.token_file")
        self.service = QiskitRuntimeService(channel="ibm_quantum_platform", token=token, instance=config.instance)

    def backend(self, name: str) -> Any:
        return self.service.backend(name)

    def run(self, name: str, primitive: str, pubs: list, options: dict[str, Any],
            submitted: Any = None) -> Any:
        from qiskit_ibm_runtime import EstimatorV2, SamplerV2

        kind = SamplerV2 if primitive == "sampler" else EstimatorV2
        try:
            job = kind(mode=self.backend(name)).run(pubs, **({"shots": options["shots"]} if options.get("shots") else {}))
            if submitted:
                submitted()  # IBM has the job (it has an id)
            return job.result()
        except Exception as error:  # noqa: BLE001 - classify for the retry policy (at submission or after)
            text = str(error).lower()
            if any(word in text for word in ("temporarily", "timeout", "503", "502", "rate", "queue is full")):
                raise TransientQpuError(str(error)) from error
            raise
