"""Benchmarks behind `qvr bench TARGET`: one module per target, registered in pipelines/bench.py."""
