"""VerdictStore: verdicts by key in one sqlite file.

sqlite because it is in the standard library, keeps one file a user can see and delete, and in
WAL mode lets the processes of one node (several jobs, a driver and its producer) read while one
writes, each write atomic: a store shared by every run on the node with no server to keep.
A store that cannot be opened or read is reported once and the job verifies without it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from pathlib import Path

from actors.contracts import Verdict

log = logging.getLogger("qvr.cache")

_SCHEMA = """CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    stored REAL NOT NULL
)"""


class VerdictStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_SCHEMA)

    def get(self, key: str) -> Verdict | None:
        row = self.db.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else Verdict(**json.loads(row[0]))

    def put(self, key: str, verdict: Verdict) -> None:
        stored = dataclasses.replace(verdict, task_id="", sample_idx=0, cached=False)
        self.db.execute("INSERT OR REPLACE INTO verdicts (key, verdict, stored) VALUES (?, ?, ?)",
                        (key, json.dumps(dataclasses.asdict(stored)), time.time()))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def open_store(path: Path) -> VerdictStore | None:
    try:
        return VerdictStore(path)
    except (sqlite3.Error, OSError) as error:
        log.warning("the verdict cache at %s cannot be used (%s): verifying without it", path, error)
        return None
