"""The one engine interface every rollout engine implements, and what it returns.

An engine turns rendered prompts into ``n`` samples each (token ids, per-token logprobs, finish
reason) and swaps its weights in place. Everything above it (prompt rendering, text decoding,
stop-string cutting, versioning) lives in :class:`RolloutEngine` so the engines cannot drift
apart; :func:`actors.rollout.factory.make_engine` is the only place that knows which engine a config
picks.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from actors.contracts import Completion
from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.prompts import PromptLike, PromptRenderer, as_prompts

log = logging.getLogger("qvr.rollout")

NamedTensors = Iterable[tuple[str, Any]]


def folder_weights(path: str | Path) -> NamedTensors:
    """The ``(name, tensor)`` pairs of a saved Hugging Face model folder (its safetensors files), one
    file at a time, with ``lm_head.weight`` added where the folder's config ties it to the input
    embedding: ``save_pretrained`` leaves it out, and an engine given only the embedding keeps its
    old output layer."""
    import json

    from safetensors.torch import load_file

    folder = Path(path)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no *.safetensors weights")
    config_file = folder / "config.json"
    tied = config_file.is_file() and json.loads(config_file.read_text()).get("tie_word_embeddings", False)
    embedding, seen_head = None, False
    for file in files:
        for name, tensor in load_file(file).items():
            seen_head = seen_head or name == "lm_head.weight"
            if name.endswith("embed_tokens.weight"):
                embedding = tensor
            yield name, tensor
    if tied and not seen_head and embedding is not None:
        yield "lm_head.weight", embedding


@dataclass
class RolloutCompletion(Completion):
    """A :class:`Completion` plus the prompt's token ids, so the learner scores exactly the tokens
    that were sampled."""

    prompt_token_ids: list[int] = field(default_factory=list)
    loss_mask: list[float] = field(default_factory=list)
    """Per completion token: 1 where the policy sampled it, 0 where it was inserted (a multi-turn
    rollout's feedback message). Empty: every token is the policy's (single-turn)."""
    token_policy_versions: list[int] = field(default_factory=list)
    """Per completion token: the policy version that sampled it, where a generation spanned weight
    updates. Empty: every token is ``policy_version``'s (actors/learner/staleness.py)."""

    def to_completion(self) -> Completion:
        return Completion(**{f.name: getattr(self, f.name) for f in fields(Completion)})


@dataclass
class Sample:
    """One sampled continuation as an engine produces it."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str


def check_model_source(name: str) -> None:
    """A name that looks like a path must exist: say so, instead of a hub lookup error."""
    looks_local = name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()
    if looks_local and not Path(name).expanduser().is_dir():
        raise FileNotFoundError(f"model directory {name!r} does not exist")


def resolve_dtype(dtype: str) -> str:
    """``auto``: bfloat16 where CUDA is available, float32 elsewhere (CPU kernels want it)."""
    if dtype != "auto":
        return dtype
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def load_tokenizer(config: RolloutConfig) -> Any:
    from transformers import AutoTokenizer

    source = config.tokenizer or config.model
    check_model_source(source)
    return AutoTokenizer.from_pretrained(source)


def as_sampling(sampling: SamplingConfig | Mapping[str, Any] | None) -> SamplingConfig:
    if sampling is None:
        return SamplingConfig()
    if isinstance(sampling, SamplingConfig):
        return sampling
    if isinstance(sampling, Mapping):
        return SamplingConfig.model_validate(dict(sampling))
    raise TypeError(f"sampling must be a SamplingConfig or a dict, got {type(sampling).__name__}")


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest stop string in it."""
    positions = [text.find(string) for string in stop if string in text]
    return text[: min(positions)] if positions else text


class RolloutEngine(ABC):
    """Samples completions from one policy and takes new weights in place.

    Subclasses implement :meth:`_sample` (token ids in, samples out) and :meth:`_load_weights`;
    callers use :meth:`generate` and :meth:`update_weights` only.
    """

    name: str = "engine"

    def __init__(self, config: RolloutConfig) -> None:
        self.config = config
        self.tokenizer = load_tokenizer(config)
        self.renderer = PromptRenderer(self.tokenizer, config.prompt_format)
        self.policy_version = 0

    def generate(self, prompts: Sequence[PromptLike],
                 sampling: SamplingConfig | Mapping[str, Any] | None = None) -> list[RolloutCompletion]:
        """``sampling.n`` completions per prompt, prompt by prompt, sample_idx 0..n-1 within each."""
        sampling = as_sampling(sampling)
        prompts = as_prompts(prompts)
        if not prompts:
            return []
        prompt_ids = [self.renderer.token_ids(prompt) for prompt in prompts]
        limit = self.max_model_len()
        for prompt, ids in zip(prompts, prompt_ids):
            if not ids:
                raise ValueError(f"prompt {prompt.task_id!r} renders to no tokens")
            if len(ids) >= limit:
                raise ValueError(f"prompt {prompt.task_id!r} has {len(ids)} tokens; the model's limit is {limit}")
        seeds = [prompt.seed if prompt.seed is not None else None if sampling.seed is None else sampling.seed + index
                 for index, prompt in enumerate(prompts)]
        groups = self._sample(prompt_ids, sampling, seeds)
        completions = []
        for prompt, ids, samples in zip(prompts, prompt_ids, groups, strict=True):
            if len(samples) != sampling.n:
                raise RuntimeError(f"{self.name} returned {len(samples)} samples for {prompt.task_id!r}, not {sampling.n}")
            for index, sample in enumerate(samples):
                text = self.tokenizer.decode(sample.token_ids, skip_special_tokens=True)
                if sample.finish_reason == "stop":
                    text = cut_at_stop(text, sampling.stop)
                completions.append(RolloutCompletion(
                    task_id=prompt.task_id, sample_idx=index, text=text, token_ids=list(sample.token_ids),
                    logprobs=list(sample.logprobs), policy_version=self.policy_version,
                    finish_reason=sample.finish_reason, prompt_token_ids=list(ids)))
        return completions

    def update_weights(self, version: int, weights: NamedTensors) -> None:
        """Load ``(name, tensor)`` pairs in the model's checkpoint naming (a Hugging Face
        ``state_dict()``; all of it or whole layers) and report ``version`` from now on."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ValueError(f"policy version must be a non-negative int, got {version!r}")
        self._load_weights(weights)
        self.policy_version = version
        log.info("%s engine now serves policy version %d", self.name, version)

    @abstractmethod
    def max_model_len(self) -> int:
        """Longest prompt + completion the engine accepts, in tokens."""

    @abstractmethod
    def _sample(self, prompt_ids: list[list[int]], sampling: SamplingConfig,
                seeds: list[int | None]) -> list[list[Sample]]:
        """``sampling.n`` samples for each prompt, in prompt order; prompt i seeded with ``seeds[i]``."""

    @abstractmethod
    def _load_weights(self, weights: NamedTensors) -> None:
        """Copy the given tensors into the serving model; later calls to generate use them."""

    def close(self) -> None:  # noqa: B027 - optional: engines without resources keep the default
        """Free the engine's resources; the default has none to free."""
