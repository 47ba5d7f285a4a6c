"""Bring-your-own-data format: a folder of CSV files (UTF-8, header row).

- ``items.csv`` (required): ``id``, ``title``; optional ``text``; any other column becomes an item property.
- ``interactions.csv`` (required): ``user_id``, ``item_id``; optional ``timestamp`` (unix seconds) and
  ``rating``. A user's order is timestamp order, then file order.
- ``users.csv`` (optional): ``id``; any other column becomes a user property.
- ``facts.csv`` (optional): ``item_id``, ``predicate``, ``entity_uri``; optional ``entity_label``, ``source``.

Sessions: split by the session gap when timestamps are given, else the user's whole sequence.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import schema
from .model import Fact, ParsedDataset
from .readers import bad, parse_float, read_csv, require_file, require_id
from .sessions import build_sessions

_PROP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = {"id", "rawId", "dataset", "title", "text"}


def _props(path: Path, line: int, row: dict[str, str], skip: set[str]) -> dict[str, str]:
    out = {}
    for k, v in row.items():
        if k in skip:
            continue
        if not _PROP.match(k) or k in _RESERVED:
            raise bad(path, 1, f"column name {k!r} cannot be a property (letters, digits, _; not {sorted(_RESERVED)})")
        if v != "":
            out[k] = v
    return out


def load_generic(path: Path, *, dataset: str, session_gap_s: int | None = 1800) -> ParsedDataset:
    path = Path(path)
    out = ParsedDataset(dataset, "generic", str(path))
    nid = lambda raw: schema.node_id(dataset, raw)  # noqa: E731
    items: dict[str, dict] = {}
    item_file = require_file(path / "items.csv", "items (items.csv)")
    for line, row in read_csv(item_file, ["id", "title"], strip_types=False):
        raw = require_id(item_file, line, "id", row["id"])
        if raw in items:
            raise bad(item_file, line, f"duplicate item id {raw}")
        title = row["title"].strip()
        items[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset, "title": title,
                      "text": (row.get("text") or "").strip() or title,
                      **_props(item_file, line, row, {"id", "title", "text"})}
    users: dict[str, dict] = {}
    user_file = path / "users.csv"
    if user_file.exists():
        for line, row in read_csv(user_file, ["id"], strip_types=False):
            raw = require_id(user_file, line, "id", row["id"])
            if raw in users:
                raise bad(user_file, line, f"duplicate user id {raw}")
            users[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset, **_props(user_file, line, row, {"id"})}
    inter_file = require_file(path / "interactions.csv", "interactions (interactions.csv)")
    rows = []
    for line, row in read_csv(inter_file, ["user_id", "item_id"], strip_types=False):
        u = require_id(inter_file, line, "user_id", row["user_id"])
        i = require_id(inter_file, line, "item_id", row["item_id"])
        if i not in items:
            raise bad(inter_file, line, f"unknown item_id {i} (not in items.csv)")
        if user_file.exists() and u not in users:
            raise bad(inter_file, line, f"unknown user_id {u} (not in users.csv)")
        ts = parse_float(inter_file, line, "timestamp", row.get("timestamp", ""), optional=True)
        rating = parse_float(inter_file, line, "rating", row.get("rating", ""), optional=True)
        rows.append((u, ts if ts is not None else float("-inf"), line, i, ts, rating))
        users.setdefault(u, {"id": nid(u), "rawId": u, "dataset": dataset})
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    pos: dict[str, int] = {}
    has_ts = any(r[4] is not None for r in rows)
    for u, _, _, i, ts, rating in rows:
        p = pos.get(u, 0)
        pos[u] = p + 1
        out.interactions.append({"user": nid(u), "item": nid(i), "pos": p,
                                 "ts": int(ts) if ts is not None else None, "rating": rating})
    fact_file = path / "facts.csv"
    if fact_file.exists():
        entities: dict[str, dict] = {}
        seen: set[tuple[str, str, str]] = set()
        for line, row in read_csv(fact_file, ["item_id", "predicate", "entity_uri"], strip_types=False):
            i = require_id(fact_file, line, "item_id", row["item_id"])
            if i not in items:
                raise bad(fact_file, line, f"unknown item_id {i} (not in items.csv)")
            pred = row["predicate"].strip()
            uri = row["entity_uri"].strip()
            if not pred or not uri:
                raise bad(fact_file, line, "predicate and entity_uri must not be empty")
            source = (row.get("source") or "").strip() or "generic"
            if uri not in entities:
                entities[uri] = {"uri": uri, "label": (row.get("entity_label") or "").strip() or uri,
                                 "source": source, "kind": "resource"}
            if (i, pred, uri) not in seen:
                seen.add((i, pred, uri))
                out.facts.append(Fact(("item", nid(i)), pred, ("entity", uri), source))
        out.entities = list(entities.values())
    out.items = list(items.values())
    out.users = list(users.values())
    out.sessions, out.session_items = build_sessions(dataset, out.interactions, session_gap_s if has_ts else None)
    return out
