"""Evaluation: pass@k metrics, the sampling-and-verification run shared by ``qvr eval`` and the
in-training hook, and the reports. Importing this package is light (no ray, torch or qiskit).

A task family's own metrics and report section are registered with the family
(pipelines/tasks/families) and asked for by :mod:`pipelines.evaluation.metrics` and
:mod:`pipelines.evaluation.report`."""
