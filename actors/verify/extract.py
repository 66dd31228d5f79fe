"""Find the code in a model's answer.

Order: drop ``<think>`` blocks (an unclosed one runs to the end); inside ``<answer>`` if there is
one; then the task's harness takes its program from what is left (:meth:`Harness.extract
<actors.verify.sandbox.harnesses.registry.Harness.extract>`): by default the first fenced block
tagged python (else the first fenced block), else the raw text, which for full programs must at
least parse, and kept as it is where the answer continues the prompt (QHE's completion mode). A
harness that runs something else (e.g. an OpenQASM program) says which block it wants.
"""

from __future__ import annotations

import re

from actors.verify.sandbox.harnesses.registry import get

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)(</answer>|\Z)", re.DOTALL)


def extract_code(text: str, harness: str) -> str | None:
    """The code to run, or None when there is none."""
    text = _THINK.sub("", text)
    answer = _ANSWER.search(text)
    if answer:
        text = answer.group(1)
    return get(harness).extract(text)
