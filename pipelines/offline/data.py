"""Offline rows -> tokenized Ray Data datasets for the learner, with every bad row counted.

A source is JSONL or Parquet with one row per example: SFT ``prompt`` + ``completion`` (or one
``text`` with ``sft.loss_on: all``), DPO/ORPO ``prompt`` + ``chosen`` + ``rejected`` (what ``qvr
pairs`` writes); the field names are settings. Ray Data reads the file and tokenizes in an actor
pool (``map_batches``); a missing file or column is an error naming the file and the field (exit
2, before anything starts); rows with an empty or missing field, or a prompt that leaves no room
for an answer under ``max_length``, are dropped and counted by reason; answers cut to fit are
counted as ``truncated``. A dataset with no usable row is an error naming the file.
"""

from __future__ import annotations

import functools
import logging
import random
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from actors.config import Config
from pipelines.config import ConfigError
from pipelines.inputfiles import json_lines, parquet_schema, parquet_table, type_name

log = logging.getLogger("qvr.data")

Kind = Literal["sft", "sft_text", "pairs"]


class OfflineDataConfig(Config):
    """Where the rows come from, which fields hold what, and how they become tokens."""

    train: str | None = None
    """Training rows: a JSONL or Parquet file."""

    heldout: str | None = None
    """Held-out rows (same fields), scored before and after training; None = ``heldout_fraction``
    of the training rows, split off with ``split_seed``."""

    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the training rows held out when ``heldout`` is None (0: no held-out scores)."""

    split_seed: int = 0
    """Seeds the held-out split."""

    prompt_field: str = "prompt"
    """The prompt's column."""

    completion_field: str = "completion"
    """SFT: the answer's column (the paper's format: an explanation in <think>...</think>, then the
    code in a python block; the text is trained on as it is)."""

    text_field: str = "text"
    """SFT with ``loss_on: all``: the column of plain text trained on whole (extended pretraining)."""

    chosen_field: str = "chosen"
    """DPO/ORPO: the preferred answer's column."""

    rejected_field: str = "rejected"
    """DPO/ORPO: the dispreferred answer's column."""

    prompt_format: Literal["chat", "plain"] = "chat"
    """chat: the prompt as a user message through the tokenizer's chat template (generation prompt
    added), as the rollout workers render it; plain: the prompt's text as it is."""

    max_length: int = Field(1024, ge=8, le=1_048_576)
    """Tokens per sequence (prompt + answer). A prompt that leaves fewer than 1 answer token is
    dropped (``prompt_too_long``); longer answers are cut (``truncated``)."""

    pack: bool = True
    """SFT with ``loss_on: all``: concatenate the texts (each ending in EOS, in file order) and cut
    the stream into sequences of exactly ``max_length`` tokens (the last one shorter), so no step
    computes padding and no text is cut off (the IBM paper's extended pretraining packs its corpus
    to the context length). Attention spans document boundaries, as in GPT-style pretraining
    (Brown et al. 2020, arXiv 2005.14165). False: one sequence per text, cut at ``max_length``."""


def fields_for(config: OfflineDataConfig, kind: Kind) -> dict[str, str]:
    """Role -> column name."""
    if kind == "sft":
        return {"prompt": config.prompt_field, "completion": config.completion_field}
    if kind == "sft_text":
        return {"text": config.text_field}
    return {"prompt": config.prompt_field, "chosen": config.chosen_field, "rejected": config.rejected_field}


def columns_of(path: str) -> list[str]:
    """The columns of a JSONL or Parquet file (JSONL: the union over its rows). A file that cannot
    be read (not UTF-8, not JSON, a truncated Parquet file) is an UnreadableInput naming the file
    and the line."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if source.suffix == ".parquet":
        return list(parquet_schema(source).names)
    if source.suffix not in (".jsonl", ".json"):
        raise ValueError(f"{path}: expected a .jsonl or .parquet file")
    names: dict[str, None] = {}
    for number, row in json_lines(source):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: a row must be a JSON object, found {type_name(row)}")
        names.update(dict.fromkeys(row))
    return list(names)


def not_text(path: str, columns: list[str]) -> str | None:
    """Where a field that must hold text holds something else (a number, a list ...), naming the
    file and the line (JSONL) or the column and its type (Parquet); None where every value is text
    or missing. Ray Data could not even read a JSONL column whose type changes between rows."""
    if path.endswith(".parquet"):
        import pyarrow as pa

        schema = parquet_schema(path)
        textual = (pa.types.is_string, pa.types.is_large_string, pa.types.is_null,
                   getattr(pa.types, "is_string_view", lambda _: False))
        for column in columns:
            if column in schema.names and not any(test(schema.field(column).type) for test in textual):
                return f"{path}: column {column!r} holds {schema.field(column).type}, not text"
        return None
    for number, row in json_lines(path):
        for column in columns:
            value = row.get(column) if isinstance(row, dict) else None
            if value is not None and not isinstance(value, str):
                return f"{path}:{number}: field {column!r} is {type_name(value)} ({str(value)[:40]!r}), not text"
    return None


def check_sources(config: OfflineDataConfig, kind: Kind) -> list[str]:
    """Problems with the sources (missing file, missing field), each naming the file and the field."""
    problems = []
    if config.train is None:
        return ["data.train: no training file given"]
    for setting, path in (("data.train", config.train), ("data.heldout", config.heldout)):
        if path is None:
            continue
        try:
            columns = columns_of(path)
            wrong = not_text(path, list(fields_for(config, kind).values()))
        except (FileNotFoundError, ValueError) as error:  # UnreadableInput included: file and line
            problems.append(f"{setting}: {error}")
            continue
        if wrong is not None:
            problems.append(f"{setting}: {wrong}")
            continue
        missing = False
        for role, column in fields_for(config, kind).items():
            if column not in columns:
                missing = True
                problems.append(f"{setting}: {path} has no field {column!r} (the {role}; set data.{role}_field); "
                                f"its fields: {', '.join(columns) or 'none'}")
        if not missing:
            empty = empty_fields(path, list(fields_for(config, kind).values()))
            if empty is not None:
                problems.append(f"{setting}: {path} has no usable row: every row has an empty or missing "
                                f"{' or '.join(repr(f) for f in empty)}")
    return problems


def read_rows(path: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """A JSONL or Parquet file's rows (Parquet: only ``columns`` when given); an unreadable file is
    an UnreadableInput (exit 2) naming the file and the line."""
    if path.endswith(".parquet"):
        return parquet_table(path, columns=columns).to_pylist()
    return [row for _, row in json_lines(path)]


def empty_fields(path: str, columns: list[str]) -> list[str] | None:
    """None if some row has every column as non-empty text; else the columns that are empty or
    missing in some row (all of them when the file has no rows)."""
    rows = read_rows(path, columns)
    bad: dict[str, None] = {}
    for row in rows:
        lacking = [c for c in columns if not isinstance(row.get(c), str) or not row[c].strip()]
        if not lacking:
            return None
        bad.update(dict.fromkeys(lacking))
    return list(bad) or columns


class Tokenize:
    """Ray Data ``map_batches`` callable (one tokenizer per actor): text rows -> token rows."""

    def __init__(self, model: str, fields: dict[str, str], kind: Kind, prompt_format: str, max_length: int) -> None:
        from transformers import AutoTokenizer

        from actors.rollout.prompts import PromptRenderer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.renderer = PromptRenderer(self.tokenizer, "chat" if prompt_format == "chat" else "completion")
        self.fields, self.kind, self.max_length = fields, kind, max_length

    def _answer(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids + ([self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else [])

    def row(self, values: dict[str, Any]) -> dict[str, Any]:
        from actors.rollout.prompts import Prompt

        out: dict[str, Any] = {"prompt_ids": [], "completion_ids": [], "chosen_ids": [], "rejected_ids": [],
                               "problem": "", "truncated": False}
        for role, column in self.fields.items():
            value = values.get(column)
            if value is None or (isinstance(value, float) and value != value):
                out["problem"] = f"missing_{role}"
                return out
            if not isinstance(value, str) or not value.strip():
                out["problem"] = f"empty_{role}"
                return out
        if self.kind == "sft_text":
            ids = self._answer(values[self.fields["text"]])
            if len(ids) < 2:
                out["problem"] = "text_too_short"
                return out
            out["truncated"] = len(ids) > self.max_length
            ids = ids[: self.max_length]
            out["prompt_ids"], out["completion_ids"] = ids[:1], ids[1:]
            return out
        prompt = self.renderer.token_ids(Prompt(task_id="", text=values[self.fields["prompt"]]))
        room = self.max_length - len(prompt)
        if room < 1:
            out["problem"] = "prompt_too_long"
            return out
        out["prompt_ids"] = prompt
        answers = ["completion"] if self.kind == "sft" else ["chosen", "rejected"]
        for role in answers:
            ids = self._answer(values[self.fields[role]])
            out["truncated"] = out["truncated"] or len(ids) > room
            out[f"{role}_ids"] = ids[:room]
        return out

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        records = batch.to_dict("records")
        out = pd.DataFrame([self.row(record) for record in records])
        out[SOURCE] = batch[SOURCE].to_numpy()
        return out


def tokenize_batch(batch: Any, model: str, fields: dict[str, str], kind: Kind, prompt_format: str,
                   max_length: int) -> Any:
    """Ray Data ``map_batches`` function: one batch of text rows -> token rows."""
    return tokenizer_for(model, tuple(fields.items()), kind, prompt_format, max_length, _files_stamp(model))(batch)


@functools.lru_cache(maxsize=4)
def tokenizer_for(model: str, fields: tuple[tuple[str, str], ...], kind: Kind, prompt_format: str, max_length: int,
                  stamp: tuple[int, ...]) -> Tokenize:
    """The worker process's Tokenize for these settings, loaded once (``stamp``: the model folder's
    files as they are now, so a tokenizer rewritten in place is loaded again)."""
    return Tokenize(model, dict(fields), kind, prompt_format, max_length)


def _files_stamp(model: str) -> tuple[int, ...]:
    folder = Path(model)
    if not folder.is_dir():
        return ()
    return tuple(sorted(path.stat().st_mtime_ns for path in folder.glob("*.json")))


def read_dataset(path: str) -> Any:
    import ray.data

    if path.endswith(".parquet"):
        return ray.data.read_parquet(path)
    return ray.data.read_json(path, lines=True)


def tokenize_files(paths: list[str], config: OfflineDataConfig, kind: Kind, model: str
                   ) -> list[tuple[list[dict[str, Any]], dict[str, int]]]:
    """For each file: its usable token rows (in file order) and the count of rows per problem. One
    Ray Data pipeline for all files (one tokenizer actor to start)."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # the job prints its own lines
    fields = fields_for(config, kind)
    columns = list(dict.fromkeys(fields.values()))
    datasets = []
    for index, path in enumerate(paths):
        dataset = read_dataset(path).select_columns(columns)
        datasets.append(dataset.add_column(SOURCE, lambda batch, index=index: [index] * len(batch),
                                           batch_format="pandas"))
    dataset = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    # Packed texts are cut after tokenizing (pack_texts), so here they keep every token.
    limit = 1 << 40 if packs(config, kind) else config.max_length
    # Tasks rather than an actor: a worker process tokenizes batch after batch with the tokenizer it
    # keeps (tokenizer_for), and the next job stage of the same Ray job reuses the warm process,
    # where an actor would start a process and import transformers again each time.
    tokenized = dataset.map_batches(tokenize_batch, fn_args=(model, fields, kind, config.prompt_format, limit),
                                    batch_format="pandas", batch_size=256, num_cpus=0.5)
    results = []
    rows = tokenized.take_all()
    for index in range(len(paths)):
        mine = [row for row in rows if int(row[SOURCE]) == index]
        counts: dict[str, int] = {"rows": len(mine), "truncated": sum(bool(row["truncated"]) for row in mine)}
        usable = []
        for row in mine:
            if row["problem"]:
                counts[row["problem"]] = counts.get(row["problem"], 0) + 1
            else:
                usable.append({key: [int(token) for token in row[key]] for key in ROW_KEYS[kind]})
        counts["usable"] = len(usable)
        results.append((usable, counts))
    return results


SOURCE = "_source"
"""The column that says which file a row came from."""


ROW_KEYS: dict[str, tuple[str, ...]] = {"sft": ("prompt_ids", "completion_ids"), "sft_text": ("prompt_ids", "completion_ids"),
                                        "pairs": ("prompt_ids", "chosen_ids", "rejected_ids")}


def packs(config: OfflineDataConfig, kind: Kind) -> bool:
    return kind == "sft_text" and config.pack


def pack_texts(rows: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Whole tokenized texts -> their concatenation cut into ``max_length``-token sequences (a
    last piece of one token, which has nothing to predict, is left out)."""
    stream = [token for row in rows for token in row["prompt_ids"] + row["completion_ids"]]
    pieces = [stream[start: start + max_length] for start in range(0, len(stream), max_length)]
    return [{"prompt_ids": piece[:1], "completion_ids": piece[1:]} for piece in pieces if len(piece) >= 2]


class NoUsableRows(ConfigError):
    """No row of a file survived validation and tokenizing: bad input (exit 2), not a failure."""


def prepare(config: OfflineDataConfig, kind: Kind, model: str) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(training rows, held-out rows, report): tokenized, validated, split, numbered (``row_id``)."""
    from actors.learner.offline import ROW_ID

    files = [config.train] + ([config.heldout] if config.heldout is not None else [])
    tokenized = tokenize_files(files, config, kind, model)
    train, train_counts = tokenized[0]
    report: dict[str, Any] = {"train": train_counts}
    if not train:
        raise NoUsableRows(f"data.train: {config.train} has no usable row ({_reasons(train_counts)})")
    if config.heldout is not None:
        heldout, heldout_counts = tokenized[1]
        report["heldout"] = heldout_counts
        if not heldout:
            raise NoUsableRows(f"data.heldout: {config.heldout} has no usable row ({_reasons(heldout_counts)})")
    elif config.heldout_fraction > 0 and len(train) >= 2:
        order = list(range(len(train)))
        random.Random(config.split_seed).shuffle(order)
        cut = max(1, round(len(train) * config.heldout_fraction))
        held = set(order[:cut])
        heldout = [row for index, row in enumerate(train) if index in held]
        train = [row for index, row in enumerate(train) if index not in held]
        report["heldout"] = {"split_from_train": len(heldout)}
    else:
        heldout = []
    if packs(config, kind):  # after the held-out split: no text is in both
        report["packed"] = {"train_texts": len(train), "heldout_texts": len(heldout)}
        train, heldout = pack_texts(train, config.max_length), pack_texts(heldout, config.max_length)
    for rows in (train, heldout):
        for index, row in enumerate(rows):
            row[ROW_ID] = index
    report["train_rows"], report["heldout_rows"] = len(train), len(heldout)
    report["train_tokens"] = sum(len(value) for row in train for key, value in row.items() if key != ROW_ID)
    return train, heldout, report


def _reasons(counts: dict[str, int]) -> str:
    shown = {key: value for key, value in counts.items() if key not in ("usable", "truncated") and value}
    return ", ".join(f"{key}: {value}" for key, value in shown.items())
