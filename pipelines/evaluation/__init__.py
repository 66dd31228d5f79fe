"""Evaluation: pass@k metrics, the sampling-and-verification run shared by ``qvr eval`` and the
in-training hook, and the reports. Importing this package is light (no ray, torch or qiskit).

A task family's own metrics register into :mod:`pipelines.evaluation.metrics` from their module,
loaded here (QUASAR's: :mod:`pipelines.evaluation.quasar`)."""

from pipelines.evaluation import quasar  # noqa: F401 - registers QUASAR's metrics
