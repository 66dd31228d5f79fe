"""pass@k of an offline job's starting and final policy on held-out tasks (``eval:`` in `qvr sft`,
`qvr dpo`, `qvr orpo`), with the hook GRPO uses (pipelines/evaluation/hook.py).

The held-out loss (SFT) or preference accuracy (DPO, ORPO) says how the policy fits its rows; this
says whether its code passes: after the learner has finished (its CPUs free), a rollout group
serves the starting model, then the final Hugging Face folder, and the verifier pool scores their
samples on the benchmarks (a held-out split of synthetic tasks, QHE). Offline checkpoints hold no
servable folder but the last, so ``every`` stays 0: before and after, as the IBM paper reports.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import model_validator

from actors.rollout.config import RolloutConfig
from actors.verify.config import VerifierConfig
from actors.verify.pool.config import PoolConfig
from pipelines.evaluation.hook import TrainingEvalConfig

log = logging.getLogger("qvr.offline")


class OfflineEvalConfig(TrainingEvalConfig):
    """Held-out pass@k of the starting (``at_start``) and final (``at_end``) policy."""

    at_start: bool = True
    """Also evaluate the starting model (logged at step 0), so the report shows what training added."""

    rollout: RolloutConfig = RolloutConfig(workers=1, num_cpus=0.25, max_model_len=1024)
    """The engine that serves each policy for the evaluation (its model is set per evaluation)."""

    verifier: VerifierConfig = VerifierConfig(timeout_s=30)
    """How the samples are verified."""

    pool: PoolConfig = PoolConfig(workers=1, slots_per_worker=2, cpus_per_slot=0.25)
    """The verifier workers of the evaluation."""

    @model_validator(mode="after")
    def _only_start_and_end(self) -> OfflineEvalConfig:
        if self.every:
            raise ValueError("every: an offline job evaluates its starting and final policy only (at_start, "
                             "at_end); its checkpoints are not servable folders. Set eval.every=0")
        return self


def evaluate_policies(config: OfflineEvalConfig, policies: dict[int, str], steps: int, run: Any
                      ) -> dict[str, dict[str, float]]:
    """``{"before"|"after": flat metrics}`` of each policy (step -> model folder) that is due; each
    evaluation is logged at its step and printed as one line."""
    from actors.rollout.group import RolloutGroup
    from actors.verify.pool.pool import VerifierPool
    from pipelines.evaluation.hook import PolicyEvaluator, eval_line, hidden_paths, load_sets

    evaluator = PolicyEvaluator(config, load_sets(config), steps)
    due = {step: model for step, model in policies.items() if evaluator.due(step)}
    if not due:
        return {}
    results: dict[str, dict[str, float]] = {}
    pool = VerifierPool(config.verifier, config.pool, hidden_paths=[*hidden_paths(config), str(run.path.resolve())])
    group = None
    try:
        for step, model in sorted(due.items()):
            print(f"evaluating the {'starting' if step == 0 else 'final'} policy on held-out tasks ...", flush=True)
            if group is None:
                group = RolloutGroup(config.rollout.model_copy(update={"model": model}))
            else:  # the engines that served the starting policy load the final one: no second start
                group.serve_folder(step, model)
            flat = evaluator(group, pool, step)
            run.log_metrics(flat, step=step)
            tag = "before" if step == 0 else "after"
            results[tag] = flat
            print(eval_line(flat), flush=True)
    finally:
        if group is not None:
            group.close()
        pool.close()
    return results
