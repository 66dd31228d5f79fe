"""The transformers engine: ``model.generate`` with sampling, one prompt's group at a time.

Slow next to vLLM but dependency-free, and the reference the tests hold vLLM to. Each prompt is
generated alone with its ``n`` rows (no padding, so logprobs are exactly the model's); the
sampling settings come only from :class:`SamplingConfig`, never from the checkpoint's
``generation_config``, so both engines sample the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from actors.rollout.config import RolloutConfig, SamplingConfig
from actors.rollout.engine import NamedTensors, RolloutEngine, Sample, check_model_source, resolve_dtype

log = logging.getLogger("qvr.rollout")


class _StopStrings:
    """A stopping criterion that ends a row once its new text contains a stop string, and
    remembers how many new tokens the row had then."""

    def __init__(self, tokenizer: Any, stop: list[str], prompt_len: int, rows: int) -> None:
        self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len
        self.ends: list[int | None] = [None] * rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            if self.ends[row] is None:
                new_ids = input_ids[row, self.prompt_len:].tolist()
                text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
                if any(string in text for string in self.stop):
                    self.ends[row] = len(new_ids)
            done[row] = self.ends[row] is not None
        return done


class TransformersEngine(RolloutEngine):
    name = "transformers"

    def __init__(self, config: RolloutConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        super().__init__(config)
        check_model_source(config.model)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, resolve_dtype(config.dtype))
        self.model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype).to(self.device).eval()
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        torch.manual_seed(config.seed)

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise ValueError(f"{self.config.model}: neither the model nor the tokenizer names an EOS token")
        return ids

    def max_model_len(self) -> int:
        return self.config.max_model_len or self.model.config.max_position_embeddings

    def _sample(self, prompt_ids: list[list[int]], sampling: SamplingConfig,
                seeds: list[int | None]) -> list[list[Sample]]:
        return [self._sample_group(ids, sampling, seed) for ids, seed in zip(prompt_ids, seeds, strict=True)]

    def _sample_group(self, ids: list[int], sampling: SamplingConfig, seed: int | None) -> list[Sample]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        if seed is not None:
            torch.manual_seed(seed)
        greedy = sampling.temperature == 0
        generation = GenerationConfig(
            max_new_tokens=min(sampling.max_tokens, self.max_model_len() - len(ids)),
            do_sample=not greedy, temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p, top_k=None if greedy else sampling.top_k,
            eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            return_dict_in_generate=True, output_logits=True)
        # n rows of the same prompt rather than num_return_sequences: that also works greedily.
        input_ids = torch.tensor([ids] * sampling.n, device=self.device)
        stop = _StopStrings(self.tokenizer, sampling.stop, len(ids), sampling.n) if sampling.stop else None
        with torch.no_grad():
            output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                         generation_config=generation,
                                         stopping_criteria=StoppingCriteriaList([stop] if stop else []))
        new_tokens = output.sequences[:, len(ids):]
        logits = torch.stack(output.logits, dim=1).float()  # rows x steps x vocab, before any warping
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
        samples = []
        for row in range(sampling.n):
            tokens = new_tokens[row].tolist()
            end, reason = len(tokens), "length"
            eos_at = next((i for i, token in enumerate(tokens) if token in self.eos_ids), None)
            if eos_at is not None:
                end, reason = eos_at + 1, "stop"
            if stop and stop.ends[row] is not None and stop.ends[row] <= end:
                end, reason = stop.ends[row], "stop"
            samples.append(Sample(tokens[:end], logprobs[row, :end].tolist(), reason))
        return samples

    def _load_weights(self, weights: NamedTensors) -> None:
        import torch

        # state_dict(keep_vars=True) lists tied tensors under each of their names (lm_head.weight too).
        targets = self.model.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, tensor in weights:
                if name not in targets:
                    raise KeyError(f"weight {name!r} is not in {self.config.model}'s state dict")
                target = targets[name]
                if tuple(target.shape) != tuple(tensor.shape):
                    raise ValueError(f"weight {name!r} has shape {tuple(tensor.shape)}; the model's is {tuple(target.shape)}")
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
