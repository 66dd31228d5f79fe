"""Reading the files a person hands a job (task files, completions, training rows): every way a file
can be unreadable becomes an :class:`UnreadableInput` that names the file and the line (or says the
whole file is broken), never a decoding or Arrow traceback.

UnreadableInput is a ConfigError: bad input is the user's to fix, exit status 2 (pipelines/cli.py),
wherever it is found. Readers that have an error type of their own (a task source's, a completions
file's) wrap its message in theirs.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.config import ConfigError


class UnreadableInput(ConfigError):
    """A file that cannot be read as what it should be; the message names the file and the line."""


def _not_utf8(path: str | Path, number: int, byte: int, column: int) -> UnreadableInput:
    return UnreadableInput(f"{path}:{number}: not UTF-8 text (byte 0x{byte:02x} at byte {column} of the line); "
                           "save the file as UTF-8")


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file (gzip-compressed when it ends in ``.gz``); a byte
    order mark at the start is dropped."""
    path = str(path)
    compressed = path.lower().endswith(".gz")
    number = 0
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as stream:
            for number, raw in enumerate(stream, 1):
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as error:
                    raise _not_utf8(path, number, raw[error.start], error.start + 1) from None
                yield number, text
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        where = f"{path}:{number + 1}" if number else path
        raise UnreadableInput(f"{where}: broken gzip file ({error})") from None


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file; a byte that is not UTF-8 is named with its line."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise _not_utf8(path, raw.count(b"\n", 0, error.start) + 1, raw[error.start], column) from None


def json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line of a JSONL file."""
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise UnreadableInput(f"{path}:{number}: not JSON: {error.msg} (column {error.colno})") from None


def parquet_table(path: str | Path, columns: list[str] | None = None) -> Any:
    """A Parquet file as an Arrow table (only ``columns`` when given); a truncated or foreign file
    is an UnreadableInput naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as error:
        raise UnreadableInput(f"{path}: not a readable Parquet file ({_first_line(error)})") from None


def parquet_schema(path: str | Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise UnreadableInput(f"{path}: not a readable Parquet file ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def type_name(value: Any) -> str:
    """How a JSON value's type reads in a message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "text" if isinstance(value, str) else type(value).__name__
