"""`qvr bench TARGET`: benchmarks whose figures are ratios measured side by side in one run."""

from __future__ import annotations

import argparse
import importlib
from typing import Any, Literal

from pipelines.benches.verifier import VerifierBenchConfig
from pipelines.job import JobConfig
from pipelines.runs import Run

HELP = "benchmarks, printed as ratios measured side by side (targets: verifier)"
BENCHES = {"verifier": "pipelines.benches.verifier"}


class Config(JobConfig):
    target: Literal["verifier"] = "verifier"
    """Which benchmark runs."""

    verifier: VerifierBenchConfig = VerifierBenchConfig()
    """`qvr bench verifier`: subprocess vs forked sandbox vs in-process, on small and QHE workloads."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bench_target", nargs="?", metavar="TARGET", help=f"one of: {', '.join(BENCHES)}")


def overrides_from(args: argparse.Namespace) -> list[str]:
    """TARGET is a shorthand of ``target=TARGET``; an override in its place is taken as one."""
    target = getattr(args, "bench_target", None)
    if not target:
        return []
    return [target if "=" in target else f"target={target}"]


def run(config: Config, run: Run) -> dict[str, Any]:
    module = importlib.import_module(BENCHES[config.target])
    results = module.run(getattr(config, config.target))
    for workload, figures in results.items():
        run.log_metrics({f"{workload}/{key}": value for key, value in figures.items() if isinstance(value, float)}, step=0)
    return results
