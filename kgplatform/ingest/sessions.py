"""Session construction from per-user ordered interactions."""
from __future__ import annotations

from typing import Any


def build_sessions(dataset: str, interactions: list[dict[str, Any]], gap_s: int | None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Group each user's interactions (already in ``pos`` order) into sessions.

    With ``gap_s`` a new session starts whenever two consecutive interactions are more than ``gap_s``
    seconds apart (MovieLens); with ``gap_s=None`` (data without timestamps, e.g. Amazon) the user's whole
    sequence is one session. Session ids are ``"<user id>#<n>"``; ``CONTAINS.pos`` restarts at 0 per session.
    """
    sessions: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in interactions:
        by_user.setdefault(row["user"], []).append(row)
    for user, rows in by_user.items():
        rows.sort(key=lambda r: r["pos"])
        current: dict[str, Any] | None = None
        prev_ts = None
        n = 0
        for row in rows:
            ts = row.get("ts")
            new = current is None or (gap_s is not None and ts is not None and prev_ts is not None
                                      and ts - prev_ts > gap_s)
            if new:
                current = {"id": f"{user}#{n}", "user": user, "dataset": dataset, "start": ts, "end": ts, "size": 0}
                sessions.append(current)
                n += 1
            assert current is not None
            members.append({"session": current["id"], "item": row["item"], "pos": current["size"], "ts": ts})
            current["size"] += 1
            current["end"] = ts
            prev_ts = ts
    return sessions, members
