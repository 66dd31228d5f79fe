"""`qvr sft`: supervised fine-tuning on the offline learner (Ray Data -> Ray Train + DeepSpeed).

Rows: ``prompt`` + ``completion`` (bucket A of ``qvr synth --sample N``, with its task's prompt), the
loss on the completion's tokens (the IBM paper's SFT); or ``text`` with ``sft.loss_on: all`` (its
extended pretraining). The recipe is :mod:`pipelines.offline.job`.
"""

from __future__ import annotations

from typing import Any

from actors.learner.algorithms.sft import SftConfig
from pipelines.offline.job import OfflineJobConfig, add_arguments, overrides_from, run_path  # noqa: F401
from pipelines.runs import Run

HELP = "SFT: supervised fine-tuning on prompt/completion rows with Ray Data + Ray Train + DeepSpeed"


class Config(OfflineJobConfig):
    sft: SftConfig = SftConfig()
    """The SFT objective."""


def kind(config: Config) -> str:
    return "sft_text" if config.sft.loss_on == "all" else "sft"


def check(config: Config) -> None:
    from pipelines.offline.job import check as check_inputs

    check_inputs(config, kind(config))


def run(config: Config, run: Run) -> dict[str, Any]:
    from pipelines.offline.job import run_offline

    return run_offline(config, config.sft, kind(config), run)
