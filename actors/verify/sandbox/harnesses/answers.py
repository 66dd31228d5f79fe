"""The program in a model's answer: the fenced block a harness asks for.

The parent (actors/verify/extract.py) drops ``<think>`` blocks and keeps the ``<answer>`` tag's
content, then asks the task's harness for its program (:meth:`Harness.extract
<actors.verify.sandbox.harnesses.registry.Harness.extract>`): the harness knows what code it
runs, so a new test format brings its own rule. These are the rules the harnesses share.
"""

from __future__ import annotations

import ast
import re

FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)(```|\Z)", re.DOTALL)
"""A fenced block, its language tag and its code (an unclosed fence runs to the end)."""

PYTHON = ("python", "py", "python3")


def fenced(text: str) -> list[tuple[str, str]]:
    """(language tag in lower case, code) of every fenced block, in order."""
    return [(match.group("lang").lower(), match.group("code")) for match in FENCE.finditer(text)]


def python_program(text: str, continues_prompt: bool = False) -> str | None:
    """The first fenced block tagged python (else the first fenced block); else the raw text, which
    must parse unless the answer continues the prompt's code (QHE's completion mode). None: no code."""
    blocks = fenced(text)
    if blocks:
        python = [code for lang, code in blocks if lang in PYTHON]
        code = (python or [code for _, code in blocks])[0]
        return code if code.strip() else None
    if not text.strip():
        return None
    if continues_prompt:
        return text  # completion mode: continues the prompt, need not parse alone
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text


def tagged_program(text: str, languages: tuple[str, ...], marker: str) -> str | None:
    """The first non-empty fenced block tagged one of ``languages`` (else the first that holds
    ``marker``), else the text from ``marker`` on; None when there is neither."""
    blocks = fenced(text)
    tagged = [code for lang, code in blocks if lang in languages]
    holding = [code for _, code in blocks if marker in code]
    for code in tagged + holding:
        if code.strip():
            return code
    start = text.find(marker)
    return text[start:] if start >= 0 else None
