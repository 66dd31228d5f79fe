"""LearnerConfig: the model the learner trains, how DeepSpeed shards it, and its optimizer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from actors.config import Config


class LoraConfig(Config):
    """Low-rank adapters (Hu et al. 2021, arXiv 2106.09685) through peft. With LoRA on, the
    reference policy for the KL term is the base model with the adapters switched off, so no
    second copy of the weights is held."""

    enabled: bool = False
    """Train LoRA adapters instead of every weight."""

    r: int = Field(16, ge=1, le=4096)
    """Rank of each adapter."""

    alpha: int = Field(32, ge=1)
    """Scaling numerator: the update is (alpha / r) * B @ A."""

    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapters' input (0 keeps runs deterministic)."""

    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    """Module names that get adapters (Qwen/Llama naming)."""

    save_adapter: bool = True
    """Beside the merged final policy (``hf_model/``), write the adapter alone (``hf_adapter/``, PEFT's
    format: megabytes instead of the whole model; loads with ``PeftModel.from_pretrained`` over the
    base, or serves as a vLLM LoRA)."""


class ScheduleConfig(Config):
    """The learning-rate schedule: linear warmup from 0, then constant, linear decay or cosine
    decay to ``min_lr_ratio * lr`` at the last step (the IBM paper's SFT and DPO: warmup then cosine)."""

    kind: Literal["constant", "linear", "cosine"] = "constant"
    """After warmup: keep lr, decay it linearly, or along a half cosine (Loshchilov and Hutter 2017,
    SGDR, arXiv 1608.03983) to the floor."""

    warmup_steps: int = Field(0, ge=0)
    """Optimizer steps of linear warmup from 0 to lr (Goyal et al. 2017, arXiv 1706.02677)."""

    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    """The floor of the decay, as a fraction of lr."""


def lr_factor(schedule: ScheduleConfig, step: int, steps: int) -> float:
    """The multiplier of lr for optimizer step ``step`` (0-based) of ``steps``: a pure function of the
    step, so a resumed run follows the same schedule as an uninterrupted one."""
    import math

    if step < schedule.warmup_steps:
        return (step + 1) / (schedule.warmup_steps + 1)
    if schedule.kind == "constant":
        return 1.0
    decay = max(steps - schedule.warmup_steps, 1)
    progress = min(max(step - schedule.warmup_steps, 0) / decay, 1.0)
    shape = 1.0 - progress if schedule.kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return schedule.min_lr_ratio + (1.0 - schedule.min_lr_ratio) * shape

class LearnerConfig(Config):
    """The learner ranks (Ray Train workers) and what each runs."""

    model: str | None = None
    """Starting weights (local directory or hub id); None = the rollout model, so the policy the
    engines sample is the policy that learns."""

    workers: int = Field(2, ge=1, le=4096)
    """Ray Train workers (data-parallel ranks)."""

    use_gpu: bool = False
    """One GPU per worker, NCCL and bf16; False = CPU with gloo and float32."""

    cpus_per_worker: float = Field(1.0, gt=0.0, le=1024.0)
    """Ray logical CPUs per worker. Fractional on small machines so the rollout and verifier
    actors still find room (Ray's CPUs are logical)."""

    zero_stage: Literal[0, 1, 2, 3] = 2
    """DeepSpeed ZeRO stage (Rajbhandari et al. 2020, arXiv 1910.02054): 1 shards optimizer
    state, 2 also gradients, 3 also parameters (gathered for forward passes and for publishing)."""

    lr: float = Field(1e-6, gt=0.0, le=1.0)
    """Adam learning rate; 1e-6 as in the IBM Qiskit GRPO paper."""

    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    """AdamW weight decay."""

    adam_betas: tuple[float, float] = (0.9, 0.99)
    """Adam's beta1, beta2 (0.99 is common for RL fine-tuning: faster-adapting second moment)."""

    max_grad_norm: float = Field(1.0, ge=0.0)
    """Clip the global gradient norm to this; 0 = no clipping."""

    micro_batch_size: int = Field(4, ge=1, le=65536)
    """Sequences per forward/backward on one rank; gradients accumulate over micro-batches to one
    optimizer step per experience batch."""

    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Training dtype: ``auto`` is bfloat16 on GPU, float32 on CPU."""

    gradient_checkpointing: bool = False
    """Recompute activations in backward (less memory, ~30% more compute)."""

    lora: LoraConfig = LoraConfig()
    """Optional LoRA adapters."""

    schedule: ScheduleConfig = ScheduleConfig()
    """Learning-rate schedule (warmup, then constant, linear or cosine); constant by default."""

    seed: int = 0
    """Seeds torch, numpy and random on every rank (offset by the rank)."""

    fail_at_steps: list[int] = []
    """Fault injection for tests and drills: the last rank raises once just before each of these
    steps, so Ray Train's FailureConfig restarts the ranks from the latest checkpoint (or, with
    no restarts left, the run stops there and ``qvr grpo --resume`` continues it)."""

