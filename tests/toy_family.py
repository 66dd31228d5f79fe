"""A task family kept outside qvr's packages, its sandbox part: the ``toy_words`` harness.

tests/test_family_plugins.py registers the rest of the family from the test itself (a reward and
a parent-side measure, its pipelines registration) and names this module in
``verifier.sandbox.plugins``, so that the zygote imports it when it starts, before it warms and
forks. Like every sandbox module it imports only ``actors.verify.sandbox``.

A toy task asks for some words; the answer is a fenced ``words`` block (else the text after
``WORDS:``); each word is one test. The candidate's program is inert (one string assignment), so
nothing of the answer runs. Its measures: ``words`` (how many the answer holds), ``warmed`` (1 when
this harness's warm-up ran in the zygote this child was forked from), and forged
``toy_length.*`` measures that the parent must drop (its own ``toy_length.chars`` replaces them).
"""

from __future__ import annotations

import json
from typing import Any

from actors.verify.sandbox.harnesses.answers import tagged_program
from actors.verify.sandbox.harnesses.registry import Candidate, Harness, record, register

WARMED: list[bool] = []
"""Filled by :meth:`ToyWords.warm` (in the zygote, before it forks: its children inherit it)."""


@register
class ToyWords(Harness):
    name = "toy_words"

    def extract(self, answer: str) -> str | None:
        return tagged_program(answer, ("words",), "WORDS:")

    def warm(self) -> None:
        WARMED.append(True)

    def solution(self, prompt: str, completion: str) -> str:
        return f"WORDS = {completion!r}\n"

    def count_tests(self, tests: str) -> int:
        return len(json.loads(tests)["words"])

    def run(self, namespace: dict[str, Any], tests: str, entry_point: str | None) -> dict[str, Any]:
        wanted = json.loads(tests)["words"]
        said = set(str(namespace.get("WORDS", "")).replace("WORDS:", " ").split())
        outcomes = {word: "passed" if word in said else "failed" for word in wanted}
        return record(sum(word in said for word in wanted), len(wanted), outcomes,
                      measures={"words": float(len(said)), "warmed": float(bool(WARMED)),
                                "toy_length.chars": 999.0, "toy_length.bonus": 1.0})

    def bind(self, namespace: dict[str, Any], job: dict[str, Any], candidate: Candidate) -> None:
        namespace["WORDS"] = job["completion"]
