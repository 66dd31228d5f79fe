"""`qvr sft`: supervised fine-tuning on the offline learner (Ray Data -> Ray Train + DeepSpeed).

Rows: ``prompt`` + ``completion`` (bucket A of ``qvr synth --sample N``, with its task's prompt), the
loss on the completion's tokens (the IBM paper's SFT); or ``text`` with ``sft.loss_on: all`` (its
extended pretraining, packed to the context length). With ``teacher:`` a teacher model first
writes each row's explanation (:mod:`pipelines.offline.teacher`). The recipe is
:mod:`pipelines.offline.job`.
"""

from __future__ import annotations

from typing import Any

from actors.learner.algorithms.sft import SftConfig
from pipelines.offline.job import OfflineJobConfig, add_arguments, overrides_from, run_path  # noqa: F401
from pipelines.offline.teacher import TeacherConfig
from pipelines.runs import Run


class Config(OfflineJobConfig):
    sft: SftConfig = SftConfig()
    """The SFT objective."""

    teacher: TeacherConfig | None = None
    """Rewrite every row's completion as an explanation in <think>...</think> then its code, the
    explanation written by this teacher model over the rows (bucket A), as the IBM paper's SFT data
    (its teacher: DeepSeek-V3). None: train on the rows as they are."""


def kind(config: Config) -> str:
    return "sft_text" if config.sft.loss_on == "all" else "sft"


def check(config: Config) -> None:
    from pipelines.offline.job import check as check_inputs

    check_inputs(config, kind(config))


def run(config: Config, run: Run) -> dict[str, Any]:
    from pipelines.offline.job import run_offline
    from pipelines.offline.teacher import with_explanations

    return run_offline(config, config.sft, kind(config), run, rewrite=with_explanations)
