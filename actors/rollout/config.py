"""RolloutConfig: which engine samples, from which weights, on how many workers; SamplingConfig:
how one ``generate`` call samples."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from actors.config import Config


class SamplingConfig(Config):
    """How completions are sampled; the same meaning on every engine."""

    n: int = Field(1, ge=1, le=1024)
    """Samples per prompt: GRPO's group size G. vLLM samples them as one request, so the group
    shares the prompt's KV cache."""

    max_tokens: int = Field(256, ge=1, le=1_000_000)
    """Most new tokens per sample; a sample cut here has finish_reason ``length``."""

    temperature: float = Field(1.0, ge=0.0, le=100.0)
    """Softmax temperature of sampling; 0 is greedy. Reported logprobs are always those of the
    model itself (temperature 1, before top-p/top-k), the quantity GRPO's importance ratio needs."""

    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p."""

    top_k: int = Field(0, ge=0)
    """Keep only the k most likely tokens; 0 keeps all."""

    stop: list[str] = Field(default_factory=list)
    """Stop strings: a sample ends at the first one (finish_reason ``stop``). The text is cut before
    it; token_ids and logprobs keep every sampled token, the stop string's included."""

    seed: int | None = None
    """Seed of the request: prompt i is sampled with seed + i, so one call is reproducible
    whatever the batching. None draws fresh randomness every call."""

    @field_validator("stop")
    @classmethod
    def _stop_strings_are_not_empty(cls, stop: list[str]) -> list[str]:
        if any(not string for string in stop):
            raise ValueError("stop strings must be non-empty (an empty one would end every sample at once)")
        return stop


class VllmConfig(Config):
    """Settings only the vLLM engine reads."""

    enforce_eager: bool = True
    """Run the model eagerly (no CUDA graphs / torch.compile): faster start, slower steps on GPU."""

    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    """Share of GPU memory vLLM may take (weights + KV cache); ignored on CPU."""

    cpu_kvcache_space_gib: int = Field(1, ge=1, le=4096)
    """KV cache size on CPU in GiB (``VLLM_CPU_KVCACHE_SPACE``); ignored on GPU."""

    enable_prefix_caching: bool = True
    """Reuse KV blocks across requests with a common prefix. The cache is reset after every weight
    update, so no block computed with old weights serves a new request."""

    enable_chunked_prefill: bool | None = None
    """Split long prefills over several engine steps. None: vLLM's default on GPU, off on CPU, where
    a seeded request whose prefill was split fails (the CPU build rewinds its random generator with
    ``set_offset``, which only CUDA generators have)."""


class RolloutConfig(Config):
    """Rollout workers: the engine, the policy's starting weights, the workers that serve it."""

    engine: Literal["vllm", "transformers"] = "vllm"
    """``vllm``: the vLLM engine inside the worker (fast; the ``vllm`` extra on CUDA, the
    ``vllm-cpu`` build on CPU). ``transformers``: ``model.generate`` (slow, no extra
    dependency; also the reference the tests check vLLM against)."""

    model: str = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    """Starting weights: a local directory saved with ``save_pretrained``, or a hub id where the
    network (or the local hub cache) allows."""

    tokenizer: str | None = None
    """Tokenizer directory or hub id; None = the model's."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype in the engine; ``auto`` is bfloat16 where CUDA is available, else float32."""

    max_model_len: int | None = Field(None, ge=16)
    """Longest prompt + completion in tokens; None = the model's own limit."""

    prompt_format: Literal["auto", "chat", "completion"] = "auto"
    """How a text prompt becomes tokens. ``chat``: one user message through the tokenizer's chat
    template, ending with the assistant's turn. ``completion``: the text as it is (a base model
    continuing code). ``auto``: chat when the tokenizer has a template. Prompts given as messages
    always use the template."""

    seed: int = 0
    """Engine-level seed: what requests without a seed start from."""

    vllm: VllmConfig = VllmConfig()
    """vLLM-only settings."""

    transport: Literal["object_store"] = "object_store"
    """How new weights reach the workers. ``object_store``: the state dict in chunks through
    Ray's object store (any device, any node)."""

    chunk_mb: float = Field(256.0, gt=0.0, le=65536.0)
    """Target size of one weight chunk in MiB. A chunk holds whole layers (fused projections must
    arrive together), so one layer larger than this travels alone."""

    workers: int = Field(1, ge=1, le=1024)
    """Rollout workers (Ray actors) in a RolloutGroup."""

    num_cpus: float = Field(0.5, gt=0.0, le=1024.0)
    """Ray logical CPUs each worker holds. Fractional so a small machine keeps room for the other
    actors (an idle actor still holds its share)."""

    num_gpus: float = Field(0.0, ge=0.0, le=64.0)
    """GPUs each worker holds (1 for a vLLM worker on a GPU machine)."""

    max_restarts: int = Field(3, ge=0, le=1000)
    """How often a RolloutGroup may replace failed workers within one ``generate`` call before it
    gives up and raises."""
