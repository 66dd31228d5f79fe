"""Benchmarks: a task source plus how its prompts reach the model, and how samples are drawn.

A benchmark is any task source the loader reads (pipelines/tasks/loader.py): Qiskit HumanEval
(``qhe``), QHE-hard (``qhe_hard``), HumanEval (``humaneval``) or a file of Tasks such as a
held-out split of synthetic tasks. Its prompts go to the model either as they are, for the model
to continue (``completion``: QHE's own protocol, the answer continues the function), or as one
chat message through the tokenizer's chat template (``chat``: the code block is extracted).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from actors.config import Config
from actors.rollout.turns import TurnsConfig
from pipelines.tasks.loader import TaskSourceConfig

PromptMode = Literal["auto", "chat", "completion"]

CONTINUE_INSTRUCTION = ("Complete the following Python code. Reply with the whole function, imports included, in "
                        "one ```python code block.\n\n```python\n{prompt}\n```")
"""The chat message for a task whose answer continues the prompt's code (QHE, HumanEval)."""

PROGRAM_INSTRUCTION = "{prompt}"
"""The chat message for a task whose answer is the whole program (QHE-hard, synthetic tasks):
the task's prompt as it is, as GRPO trains on it."""

COMPLETION_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```"]
"""Stop strings in completion mode (after Codex/HumanEval): the function ends where top-level
code begins."""


class BenchmarkConfig(Config):
    """One benchmark: its tasks and how they are prompted."""

    tasks: TaskSourceConfig = TaskSourceConfig()
    """The task source (``tasks.format`` tells QHE, QHE-hard and HumanEval apart where the source's
    name does not)."""

    prompt_mode: PromptMode = "auto"
    """``completion``: the prompt as it is, the model continues it (only for tasks whose harness
    continues the prompt: QHE, HumanEval). ``chat``: ``instruction`` as one user message through
    the chat template, the code block of the answer extracted. ``auto``: chat for whole-program
    tasks (QHE-hard, synthetic); for prompt-continuing tasks chat when the tokenizer has a chat
    template, else completion."""

    instruction: str | None = None
    """Chat mode's user message; ``{prompt}`` stands for the task's prompt. None: for tasks that
    continue the prompt, a request for the whole function in one code block (the prompt quoted);
    for whole-program tasks the prompt as it is."""

    system: str | None = None
    """An optional system message before the instruction (chat mode)."""

    max_tokens: int = Field(1024, ge=1, le=1_000_000)
    """Most new tokens per sample."""

    sampled_n: int | None = Field(None, ge=0, le=4096)
    """Samples per task for this benchmark's pass@k; None: ``sampled.n``; 0: greedy only here."""

    stop: list[str] | None = None
    """Stop strings; None: completion mode stops where top-level code begins (``\\ndef ``,
    ``\\nclass ``, ``\\nif __name__``, ``\\nprint(``, ``\\n#``), chat mode at the end of the turn."""

    @field_validator("instruction")
    @classmethod
    def _instruction_has_the_prompt(cls, instruction: str | None) -> str | None:
        if instruction is not None and "{prompt}" not in instruction:
            raise ValueError("the instruction must contain {prompt} (where the task's prompt goes)")
        return instruction


class SampledConfig(Config):
    """Sampled pass@k: n samples per task (IBM paper: n=64, T=1, top-p 1, k=1..64)."""

    n: int = Field(0, ge=0, le=4096)
    """Samples per task; 0 draws none (greedy pass@1 only)."""

    k: list[int] = [1, 5, 10]
    """The k of pass@k (each <= n). For ``--completions`` every task needs at least max(k) samples."""

    temperature: float = Field(1.0, gt=0.0, le=100.0)
    """Sampling temperature (the greedy run is temperature 0)."""

    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling."""

    top_k: int = Field(0, ge=0)
    """Keep only the k most likely tokens; 0 keeps all."""

    seed: int | None = 0
    """Sampling seed (prompt i gets seed + i); None draws fresh randomness."""

    @field_validator("k")
    @classmethod
    def _positive_ks(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("k must be a non-empty list of integers >= 1")
        return sorted(set(ks))

    @model_validator(mode="after")
    def _enough_samples(self) -> SampledConfig:
        if self.n and self.n < max(self.k):
            raise ValueError(f"n ({self.n}) must be at least the largest k ({max(self.k)}): pass@k needs n >= k")
        return self


class EvalPlan(Config):
    """What one evaluation samples: greedy pass@1 and/or sampled pass@k."""

    greedy: bool = True
    """Greedy pass@1: one sample per task at temperature 0, as the IBM paper's table."""

    sampled: SampledConfig = SampledConfig()
    """Sampled pass@k (off while ``sampled.n`` is 0)."""

    shard_prompts: int = Field(4, ge=1, le=100_000)
    """Prompts per rollout request: verification starts on a shard's samples while later shards
    are generated (smaller overlaps more; larger batches more in the engine)."""

    turns: TurnsConfig = TurnsConfig()
    """Multi-turn sampling: the verifier's feedback comes back and the model answers again (QUASAR,
    arXiv 2510.00967), so the gain from feedback is measured: each benchmark reports
    ``pass_at_1_by_turn``. max_turns 1 is single-turn."""

    @model_validator(mode="after")
    def _something_to_sample(self) -> EvalPlan:
        if not self.greedy and not self.sampled.n:
            raise ValueError("nothing to sample: set greedy=true or sampled.n > 0")
        return self


def resolve_prompt_mode(mode: PromptMode, continues_prompt: bool, has_chat_template: bool) -> str:
    """``chat`` or ``completion`` for a task (see BenchmarkConfig.prompt_mode)."""
    if mode == "completion" and not continues_prompt:
        raise ValueError("prompt_mode 'completion' needs tasks whose answer continues the prompt (QHE, HumanEval); "
                         "whole-program tasks (QHE-hard, synthetic) are prompted in chat mode")
    if mode == "chat" and not has_chat_template:
        raise ValueError("prompt_mode 'chat' but the tokenizer has no chat template; use 'completion'")
    if mode != "auto":
        return mode
    if not continues_prompt:
        if not has_chat_template:
            raise ValueError("whole-program tasks (QHE-hard, synthetic) need a chat model: the tokenizer has no "
                             "chat template")
        return "chat"
    return "chat" if has_chat_template else "completion"


def render_prompt(task: Any, benchmark: BenchmarkConfig, mode: str) -> Any:
    """The rollout prompt for ``task``: its text to continue, or chat messages."""
    from actors.rollout.prompts import Prompt
    from actors.verify.sandbox.harnesses.registry import get

    task_id = task.task_id
    if mode == "completion":
        return Prompt(task_id=task_id, text=task.prompt)
    default = CONTINUE_INSTRUCTION if get(task.harness).continues_prompt else PROGRAM_INSTRUCTION
    content = (benchmark.instruction or default).replace("{prompt}", task.prompt.rstrip("\n"))
    messages = [{"role": "system", "content": benchmark.system}] if benchmark.system else []
    return Prompt(task_id=task_id, messages=[*messages, {"role": "user", "content": content}])


def stop_strings(benchmark: BenchmarkConfig, mode: str) -> list[str]:
    if benchmark.stop is not None:
        return list(benchmark.stop)
    return list(COMPLETION_STOP) if mode == "completion" else []
