"""Evaluation: pass@k metrics, the sampling-and-verification run shared by ``qvr eval`` and the
in-training hook, and the reports. Importing this package is light (no ray, torch or qiskit)."""
