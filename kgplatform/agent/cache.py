"""Result cache for LLM calls: a small SQLite file under the settings home.

Keyed by a hash of everything that determines an answer: round, backend model id, prompt version and the
exact rendered messages (which contain the node text, the glossary context and, in round 2, the options).
Only validated answers are stored, so a re-run — after a crash, or against a wiped graph — replays them
without calling the model. Safe for one writer; each ``put`` commits at once (crash-safe).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


class ResultCache:
    """``get``/``put`` of JSON answers by key. ``path=None`` → a no-op cache."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results ("
                " key TEXT PRIMARY KEY, round INTEGER, model TEXT, prompt_version TEXT,"
                " answer TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.commit()

    def get(self, key: str) -> Any | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT answer FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, answer: Any, *, round: int, model: str, prompt_version: str) -> None:
        if self._db is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO results (key, round, model, prompt_version, answer, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key, round, model, prompt_version, json.dumps(answer, ensure_ascii=False), time.time()),
        )
        self._db.commit()

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "ResultCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
