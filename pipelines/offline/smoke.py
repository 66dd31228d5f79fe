"""What the CPU smoke presets start from, built locally (nothing is downloaded): rows made from the
synthetic task templates and a tiny random model whose tokenizer has seen them.

SFT rows: a template's prompt -> its reference solution in a python block. Preference rows: the
same prompt, chosen = the reference, rejected = one of its mutants (a small wrong variant the
hidden tests reject: a hard negative by construction). Training rows use seeds 0..n-1, held-out
rows seeds from 1000 on, so held-out prompts are unseen instantiations of the same templates.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import Field

from actors.config import Config


class SmokeModelConfig(Config):
    """A tiny Qwen2 built here: a tokenizer trained on the training rows, random weights."""

    layers: int = Field(2, ge=1, le=48)
    """Transformer layers."""

    hidden_size: int = Field(128, ge=64, le=4096, multiple_of=64)
    """Width; heads of 64 dimensions."""

    split_digits: bool = False
    """Every digit its own token, as Qwen2's tokenizer splits numbers: a number of the prompt is then
    copied digit by digit, which a model learning from scratch can do for numbers it never saw (the
    quickstart's held-out angles and qubit indices); merged number tokens it can only memorise."""

    init_scale: float = Field(4.0, gt=0.0, le=10.0)
    """Weight matrices at this multiple of the standard initialisation: 4 makes a random model's
    samples differ clearly between seeds (tests); 1 learns faster from scratch."""


class SmokeDataConfig(Config):
    """The template-made smoke data and model."""

    templates: int = Field(12, ge=1, le=1000)
    """How many templates (the first N, in registry order)."""

    train_seeds: int = Field(4, ge=1, le=10_000)
    """Seeds per template for the training rows."""

    heldout_seeds: int = Field(1, ge=1, le=10_000)
    """Seeds per template for the held-out rows."""

    max_chars: int = Field(600, ge=50)
    """Skip templates whose reference is longer than this (keeps the smoke sequences short)."""

    model: SmokeModelConfig = SmokeModelConfig()
    """The tiny model built where ``model`` names a folder that does not exist."""


def python_block(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def template_rows(config: SmokeDataConfig, seeds: range, pairs: bool) -> list[dict[str, Any]]:
    from pipelines.tasks.templates.registry import TEMPLATES, render

    rows: list[dict[str, Any]] = []
    names = [name for name in TEMPLATES][: config.templates * 3]
    used = 0
    for name in names:
        if used == config.templates:
            break
        task, mutants = render(name, seeds.start)
        if len(task.reference_solution or "") > config.max_chars:
            continue
        used += 1
        for seed in seeds:
            task, mutants = render(name, seed)
            row: dict[str, Any] = {"task_id": task.task_id, "prompt": task.prompt}
            if pairs:
                mutant = random.Random(seed).choice(mutants)
                row.update(chosen=python_block(task.reference_solution), rejected=python_block(mutant.code))
            else:
                row["completion"] = python_block(task.reference_solution)
            rows.append(row)
    return rows


def write_smoke_data(train: Path, heldout: Path, config: SmokeDataConfig, pairs: bool) -> None:
    for path, seeds in ((train, range(config.train_seeds)), (heldout, range(1000, 1000 + config.heldout_seeds))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in template_rows(config, seeds, pairs)))


def write_smoke_model(path: Path, texts: list[str], seed: int = 0, shape: SmokeModelConfig | None = None) -> Path:
    """A tiny random Qwen2 model whose tokenizer was trained on ``texts`` too (short sequences)."""
    from actors.rollout.testing import build_model, build_tokenizer

    shape = shape or SmokeModelConfig()
    tokenizer = build_tokenizer(vocab_size=1024, extra_corpus=texts, split_digits=shape.split_digits)
    model = build_model(tokenizer, seed=seed, layers=shape.layers, hidden_size=shape.hidden_size,
                        init_scale=shape.init_scale)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
