"""QUASAR's OpenQASM 3 graph problems (arXiv 2510.00967): problem types -> cost Hamiltonians
(problems.py), tasks with their ground truth (generate.py), the hub dataset's rows (hub.py),
`qvr synth`'s path for the family (synth.py) and its evaluation metrics and report section
(metrics.py). The family registers them in pipelines/tasks/families/quasar.py."""
