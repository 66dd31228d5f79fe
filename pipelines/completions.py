"""Read completions to verify: JSONL rows ``{task_id, completion[, sample_idx]}`` (or ``text``)."""

from __future__ import annotations

import json
from pathlib import Path

from actors.contracts import Completion


def load_completions(path: str | Path) -> list[Completion]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: completions file not found")
    completions: list[Completion] = []
    next_index: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON: {error}") from None
        text = row.get("completion", row.get("text")) if isinstance(row, dict) else None
        if not isinstance(row, dict) or "task_id" not in row or not isinstance(text, str):
            raise ValueError(f"{path}:{number}: expected {{\"task_id\": ..., \"completion\": \"...\"}}")
        task_id = str(row["task_id"])
        sample_idx = int(row.get("sample_idx", next_index.get(task_id, 0)))
        next_index[task_id] = sample_idx + 1
        completions.append(Completion(task_id=task_id, sample_idx=sample_idx, text=text))
    if not completions:
        raise ValueError(f"{path}: no completions")
    return completions
