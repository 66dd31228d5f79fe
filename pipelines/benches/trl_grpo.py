"""The TRL side of `qvr bench step`: TRL's GRPOTrainer on the work qvr's GRPO steps do, so the two are
compared on one machine in one run.

Same policy, tasks (their prompts rendered the way qvr renders them), group size, prompts per step,
max tokens, temperature, learning rate and warm-up, beta (k3 KL against the starting policy),
clipping, token-mean loss (TRL's ``dapo``) and truncated-completion masking. The reward is qvr's own
verifier (:class:`~actors.verify.verifier.Verifier`: the same sandbox, extraction and reward) with
no verdict cache, so the reward is identical and TRL gets no qvr feature. TRL runs as a TRL user
runs it on one machine: one process, transformers' ``generate`` (TRL's vLLM modes need a vLLM server
or colocated CUDA engine), the reference model in the same process.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.contracts import Task

log = logging.getLogger("qvr.bench")


@dataclass(frozen=True)
class StepWork:
    """What one GRPO step does, on either side."""

    policy: str
    tasks: list[Task]
    steps: int
    prompts_per_step: int
    group_size: int
    max_tokens: int
    temperature: float
    lr: float
    warmup_steps: int
    beta: float
    clip_low: float
    clip_high: float
    micro_batch_size: int
    seed: int = 0


class VerifierReward:
    """TRL's reward function: each completion verified by qvr's Verifier against its task's hidden
    tests, its reward the verdict's. Keeps each call's seconds and pass count."""

    __name__ = "qvr_verifier"  # TRL names a reward function's metrics after it

    def __init__(self, verifier: Any, tasks: list[Task]) -> None:
        self.verifier = verifier
        self.tasks = {task.task_id: task for task in tasks}
        self.calls: list[dict[str, float]] = []

    def __call__(self, prompts: list, completions: list, task_id: list[str], **_: Any) -> list[float]:
        from actors.rollout.stream import answer_job

        texts = [completion if isinstance(completion, str) else completion[-1]["content"] for completion in completions]
        jobs = [answer_job(self.tasks[task], text, index) for index, (task, text) in enumerate(zip(task_id, texts))]
        started, started_at = time.monotonic(), time.time()
        verdicts = self.verifier.run(jobs)
        self.calls.append({"reward_s": time.monotonic() - started, "reward_start": started_at, "samples": float(len(jobs)),
                           "passed": float(sum(verdict.status == "passed" for verdict in verdicts)),
                           "reward_mean": sum(verdict.reward for verdict in verdicts) / max(len(verdicts), 1)})
        return [verdict.reward for verdict in verdicts]


def prompt_rows(work: StepWork, tokenizer: Any) -> list[dict[str, Any]]:
    """One row per task: the prompt as qvr's renderer sends it (a chat turn where the tokenizer has
    a chat template, else the text) and the task id the reward function reads."""
    from actors.rollout.prompts import PromptRenderer

    chat = PromptRenderer(tokenizer, "auto").chat
    return [{"prompt": [{"role": "user", "content": task.prompt}] if chat else task.prompt, "task_id": task.task_id}
            for task in work.tasks]


def grpo_config(work: StepWork, output_dir: Path) -> Any:
    """GRPOConfig for the same step as qvr's: ``prompts_per_step x group_size`` completions per
    optimizer step, generated at once and learned in micro-batches."""
    from trl import GRPOConfig

    completions = work.prompts_per_step * work.group_size
    # The largest micro-batch up to qvr's that divides the step (TRL learns a generation in equal ones).
    micro = max(size for size in range(1, min(work.micro_batch_size, completions) + 1) if completions % size == 0)
    accumulation = completions // micro
    return GRPOConfig(
        output_dir=str(output_dir), report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        max_steps=work.steps, seed=work.seed, use_cpu=True, bf16=False, dataloader_num_workers=0,
        per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation, num_generations=work.group_size,
        max_completion_length=work.max_tokens, temperature=work.temperature, top_p=1.0, top_k=0,
        learning_rate=work.lr, warmup_steps=work.warmup_steps, lr_scheduler_type="constant_with_warmup",
        adam_beta2=0.99, weight_decay=0.0, max_grad_norm=1.0,
        beta=work.beta, epsilon=work.clip_low, epsilon_high=work.clip_high, loss_type="dapo",
        scale_rewards="group", mask_truncated_completions=True, use_vllm=False)


def run(work: StepWork, verifier_config: Any, slots: int, output_dir: Path) -> list[dict[str, float]]:
    """``work.steps`` steps of TRL's GRPOTrainer; per step: its start and end (wall clock; a step
    starts where the one before ended, the first at the start of training), its seconds, when its
    reward call started and its seconds, samples, passes, reward mean. TRL generates, scores the
    completions under the reference model, calls the reward, then learns: the reward call splits
    a step into generation (with that scoring) before it and learning after it."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from actors.verify.verifier import Verifier

    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ends.append(time.time())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ends.append(time.time())

    tokenizer = AutoTokenizer.from_pretrained(work.policy)
    model = AutoModelForCausalLM.from_pretrained(work.policy, dtype="float32")
    rows = prompt_rows(work, tokenizer)
    with Verifier(verifier_config, slots=slots) as verifier:
        reward = VerifierReward(verifier, work.tasks)
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=grpo_config(work, output_dir),
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              callbacks=[StepClock()])
        trainer.train()
    if len(ends) != work.steps + 1 or len(reward.calls) != work.steps:
        raise RuntimeError(f"TRL ran {len(ends) - 1} steps and {len(reward.calls)} reward calls for {work.steps} steps")
    return [{"start": start, "end": end, "step_s": end - start, **call}
            for start, end, call in zip(ends, ends[1:], reward.calls)]
