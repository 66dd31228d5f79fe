"""The policy on a learner rank: loading it (with optional LoRA), its reference, token scoring,
and its weights in Hugging Face naming for the rollout engines."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

from actors.learner.config import LearnerConfig


def training_dtype(config: LearnerConfig) -> Any:
    import torch

    if config.dtype == "auto":
        return torch.bfloat16 if config.use_gpu else torch.float32
    return getattr(torch, config.dtype)


def load_policy(config: LearnerConfig, model_name: str, with_reference: bool) -> tuple[Any, Any]:
    """The trainable policy and, when ``with_reference``, a frozen reference: the same module
    with adapters off under LoRA (returned as None: see :func:`reference_context`), else a copy."""
    from transformers import AutoModelForCausalLM

    from actors.rollout.engine import check_model_source

    check_model_source(model_name)
    model = AutoModelForCausalLM.from_pretrained(model_name, dtype=training_dtype(config))
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    reference = None
    if config.lora.enabled:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        lora = config.lora
        model = get_peft_model(model, PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    elif with_reference:
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    return model, reference


@contextlib.contextmanager
def reference_context(model: Any, reference: Any, lora: bool) -> Iterator[Any]:
    """The module that scores the reference policy: the LoRA model with its adapters off, or
    the frozen copy."""
    if lora:
        with model.disable_adapter():
            yield model
    else:
        yield reference


def token_logprobs(model: Any, batch: dict[str, Any], with_entropy: bool = False) -> tuple[Any, Any]:
    """Per-token logprobs of each completion under ``model``, shape [B, T] aligned with
    ``batch["completion_mask"]`` (the completion's first token at column 0), and the per-token
    entropy of the model's distribution at the same places (no grad) when asked.

    ``batch``: ``input_ids`` [B, L] (prompt then completion, right-padded), ``attention_mask``
    [B, L], ``prompt_lengths`` [B], ``completion_mask`` [B, T]."""
    import torch

    input_ids, prompt_lengths = batch["input_ids"], batch["prompt_lengths"]
    logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"], use_cache=False).logits
    columns = batch["completion_mask"].shape[1]
    # The token at position p is predicted by the logits at p - 1.
    positions = (prompt_lengths[:, None] - 1 + torch.arange(columns, device=input_ids.device)[None, :])
    positions = positions.clamp(max=input_ids.shape[1] - 2)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)[:, None]
    selected = logits[rows, positions].float()  # [B, T, V] without a [B, T, V] index tensor
    targets = input_ids.gather(1, positions + 1)
    log_probs = torch.log_softmax(selected, dim=-1)
    logprobs = log_probs.gather(2, targets[:, :, None]).squeeze(2)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(log_probs.exp() * log_probs).sum(-1)
    return logprobs, entropy


def hf_state_dict(model: Any, lora: bool) -> dict[str, Any]:
    """The policy's full weights in the base model's Hugging Face names, as the rollout engines
    load them. Under LoRA each adapted weight is W + scale * B @ A, computed aside so the trained
    module is never merged and unmerged (which would drift the base weights)."""
    import torch

    if not lora:
        return {name: tensor.detach() for name, tensor in model.state_dict().items()}
    base = model.get_base_model()
    weights: dict[str, Any] = {}
    for name, tensor in base.state_dict().items():
        if "lora_" in name:
            continue
        weights[name.replace(".base_layer.", ".")] = tensor.detach()
    with torch.no_grad():
        for name, module in base.named_modules():
            if hasattr(module, "get_delta_weight") and "default" in getattr(module, "lora_A", {}):
                key = f"{name}.weight"
                weights[key] = weights[key] + module.get_delta_weight("default").to(weights[key].dtype)
    return weights
