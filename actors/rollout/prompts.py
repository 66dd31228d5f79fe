"""Prompts and how they become token ids.

Rendering happens once, here, for every engine: vLLM and transformers then see the very same
prompt tokens, and the learner can score exactly what was sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]


@dataclass
class Prompt:
    """One prompt: plain ``text``, chat ``messages`` or already rendered ``token_ids`` (exactly one
    of them). ``token_ids`` continue a conversation token for token (a multi-turn rollout's prefix:
    the sampled answers are never re-tokenized). ``seed`` overrides the call's seed for this prompt."""

    task_id: str
    text: str | None = None
    messages: list[Message] | None = None
    token_ids: list[int] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if sum(value is not None for value in (self.text, self.messages, self.token_ids)) != 1:
            raise ValueError(f"prompt {self.task_id!r}: give exactly one of text, messages and token_ids")
        if self.messages is not None:
            if not self.messages:
                raise ValueError(f"prompt {self.task_id!r}: messages is empty")
            for message in self.messages:
                if not isinstance(message, dict) or not {"role", "content"} <= message.keys():
                    raise ValueError(f"prompt {self.task_id!r}: each message needs 'role' and 'content', got {message!r}")


PromptLike = Prompt | str


def as_prompts(prompts: Sequence[PromptLike]) -> list[Prompt]:
    """Prompts as :class:`Prompt`; a bare string becomes a text prompt with task_id its index."""
    if isinstance(prompts, (str, Prompt)):
        raise TypeError("generate() takes a list of prompts, not a single prompt")
    result = []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            result.append(Prompt(task_id=str(index), text=prompt))
        elif isinstance(prompt, Prompt):
            result.append(prompt)
        else:
            raise TypeError(f"prompt {index} is a {type(prompt).__name__}; expected a str or a Prompt")
    return result


class PromptRenderer:
    """Turns prompts into token ids with one tokenizer and one prompt format."""

    def __init__(self, tokenizer: Any, prompt_format: str) -> None:
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if prompt_format == "chat" and not has_template:
            raise ValueError("prompt_format is 'chat' but the tokenizer has no chat template; use 'completion'")
        self.tokenizer = tokenizer
        self.chat = prompt_format == "chat" or (prompt_format == "auto" and has_template)

    def token_ids(self, prompt: Prompt) -> list[int]:
        if prompt.token_ids is not None:
            return list(prompt.token_ids)
        if prompt.messages is not None:
            return self._chat(prompt.messages, prompt.task_id)
        if self.chat:
            return self._chat([{"role": "user", "content": prompt.text}], prompt.task_id)
        return list(self.tokenizer(prompt.text, add_special_tokens=True)["input_ids"])

    def _chat(self, messages: list[Message], task_id: str) -> list[int]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"prompt {task_id!r} is chat messages but the tokenizer has no chat template")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The template writes the special tokens itself; adding them again would double a BOS.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
