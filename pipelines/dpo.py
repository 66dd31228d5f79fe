"""`qvr dpo`: DPO on the offline learner (Ray Data -> Ray Train + DeepSpeed), Rafailov et al. 2023;
the reference is the base with adapters off under LoRA, otherwise a frozen copy.

Rows: ``prompt`` + ``chosen`` + ``rejected`` (what ``qvr pairs`` writes: hard negatives mined by
embedding similarity from buckets A and B). The recipe is :mod:`pipelines.offline.job`.
"""

from __future__ import annotations

from typing import Any

from actors.learner.algorithms.dpo import DpoConfig
from pipelines.offline.job import OfflineJobConfig, add_arguments, overrides_from, run_path  # noqa: F401
from pipelines.runs import Run


class Config(OfflineJobConfig):
    dpo: DpoConfig = DpoConfig()
    """The DPO objective."""


def check(config: Config) -> None:
    from pipelines.offline.job import check as check_inputs

    check_inputs(config, "pairs")


def run(config: Config, run: Run) -> dict[str, Any]:
    from pipelines.offline.job import run_offline

    return run_offline(config, config.dpo, "pairs", run)
