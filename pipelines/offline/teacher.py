"""Teacher-written explanations for SFT rows (``teacher:`` in `qvr sft`), as the IBM paper's SFT data.

The paper trains on bucket A (samples the verifier accepted) in one format: an explanation in
``<think>...</think>``, then the code in a python block; its explanations were written by a larger
model (DeepSeek-V3) shown the task and the accepted code. Here the rollout workers serve the
teacher the user names (any model the engine loads: a hub id on a cluster, a local folder), one
greedy request per row; the row's code is what the verifier ran (extracted as the verifier
extracts it), never the teacher's: an explanation may be wrong, the code was proven. Rows whose
code cannot be extracted, or whose explanation comes back empty, keep their completion as it was
and are counted. The rewritten rows are written to the run directory and trained on from there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config
from actors.rollout.config import RolloutConfig, SamplingConfig

log = logging.getLogger("qvr.offline")

EXPLAIN = ("Here is a programming task and a correct Qiskit solution to it.\n\nTask:\n{prompt}\n\n"
           "Solution:\n```python\n{code}\n```\n\nExplain briefly, step by step, how this solution solves the task. "
           "Write only the explanation, no code.")


class TeacherConfig(Config):
    """The model that writes the explanations and how it is asked."""

    rollout: RolloutConfig = RolloutConfig(workers=1, num_cpus=0.25)
    """The teacher's engine and model (``teacher.rollout.model``; the IBM paper used DeepSeek-V3)."""

    sampling: SamplingConfig = SamplingConfig(max_tokens=512, temperature=0.0)
    """How the teacher writes (greedy by default: one explanation per row, reproducible)."""

    instruction: str = EXPLAIN
    """The teacher's user message; ``{prompt}`` is the task, ``{code}`` the accepted code."""

    harness: str = "unittest"
    """Which harness's rules extract the code from a row's completion (as the verifier did)."""

    shard_prompts: int = Field(16, ge=1)
    """Rows per request to a rollout worker."""


def explained(explanation: str, code: str) -> str:
    """The paper's SFT format."""
    return f"<think>\n{explanation.strip()}\n</think>\n```python\n{code.rstrip()}\n```"


def write_explanations(config: TeacherConfig, source: str, prompt_field: str, completion_field: str,
                       output: Path) -> dict[str, int]:
    """Rewrite ``source``'s completions as explanation + code into ``output`` (JSONL); counts."""
    from actors.rollout.group import RolloutGroup
    from actors.rollout.prompts import Prompt
    from actors.verify.extract import extract_code
    from pipelines.offline.data import read_rows

    rows = read_rows(source)
    codes = [extract_code(str(row.get(completion_field) or ""), config.harness) for row in rows]
    asked = [index for index, code in enumerate(codes) if code and str(rows[index].get(prompt_field) or "").strip()]
    prompts = [Prompt(task_id=str(index), messages=[{"role": "user", "content": config.instruction.format(
        prompt=rows[index][prompt_field], code=codes[index])}]) for index in asked]
    counts = {"rows": len(rows), "explained": 0, "no_code": len(rows) - len(asked), "empty_explanation": 0}
    if prompts:
        print(f"teacher {config.rollout.model}: explaining {len(prompts)} row(s) ...", flush=True)
        with RolloutGroup(config.rollout, shard_prompts=config.shard_prompts) as group:
            answers = group.generate(prompts, config.sampling.model_copy(update={"n": 1}))
        for index, answer in zip(asked, answers):
            if answer.text.strip():
                rows[index] = {**rows[index], completion_field: explained(answer.text, codes[index])}
                counts["explained"] += 1
            else:
                counts["empty_explanation"] += 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(row, default=str) + "\n" for row in rows))
    return counts


def with_explanations(config: Any, run: Any) -> tuple[Any, dict[str, Any]]:
    """The SFT job's config with its training (and held-out) rows rewritten by ``config.teacher``
    (nothing when it is None); a resumed run reuses the rows its first invocation wrote."""
    if config.teacher is None:
        return config, {}
    data, report = config.data, {}
    for setting in ("train", "heldout"):
        source = getattr(data, setting)
        if source is None:
            continue
        output = run.path / f"teacher-{setting}.jsonl"
        if output.exists() and config.resume:
            report[setting] = {"reused": str(output)}
        else:
            report[setting] = write_explanations(config.teacher, source, data.prompt_field, data.completion_field,
                                                 output)
            log.info("teacher rewrote %s -> %s: %s", source, output, report[setting])
        data = data.model_copy(update={setting: str(output)})
    return config.model_copy(update={"data": data}), {"teacher": report}
