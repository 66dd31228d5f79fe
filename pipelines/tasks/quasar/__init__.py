"""QUASAR's OpenQASM 3 graph problems (arXiv 2510.00967): problem types -> cost Hamiltonians
(problems.py), tasks with their ground truth (generate.py), the hub dataset's rows (hub.py)."""
