"""Find the code in a model's answer.

Order: drop ``<think>`` blocks (an unclosed one runs to the end); inside ``<answer>`` if there is
one; then the first fenced block tagged python (else the first fenced block); else the raw text,
which for full programs must at least parse. A harness that continues the prompt (QHE's
completion mode) keeps raw text as it is: the model continues the prompt's function body.
OpenQASM answers (harness ``qasm``): the first fenced block tagged qasm / openqasm / qasm3 (else
the first fenced block that holds ``OPENQASM``), else the text from ``OPENQASM`` on.
"""

from __future__ import annotations

import ast
import re

from actors.verify.sandbox.harnesses.registry import get

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)(</answer>|\Z)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)(```|\Z)", re.DOTALL)


def extract_code(text: str, harness: str) -> str | None:
    """The code to run, or None when there is none."""
    text = _THINK.sub("", text)
    answer = _ANSWER.search(text)
    if answer:
        text = answer.group(1)
    if harness == "qasm":
        return extract_qasm(text)
    fences = list(_FENCE.finditer(text))
    if fences:
        python = [fence for fence in fences if fence.group("lang").lower() in ("python", "py", "python3")]
        code = (python or fences)[0].group("code")
        return code if code.strip() else None
    if not text.strip():
        return None
    if get(harness).continues_prompt:
        return text  # completion mode: continues the prompt, need not parse alone
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text


def extract_qasm(text: str) -> str | None:
    """The OpenQASM program of an answer (see the module docstring), or None."""
    fences = list(_FENCE.finditer(text))
    tagged = [fence for fence in fences if fence.group("lang").lower() in ("qasm", "openqasm", "qasm3", "openqasm3")]
    holding = [fence for fence in fences if "OPENQASM" in fence.group("code")]
    for fence in tagged + holding:
        if fence.group("code").strip():
            return fence.group("code")
    start = text.find("OPENQASM")
    return text[start:] if start >= 0 else None
