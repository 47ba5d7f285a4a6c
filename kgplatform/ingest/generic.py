"""Bring-your-own-data format: a folder of CSV files (UTF-8, header row).

- ``items.csv`` (required): ``id``, ``title``; optional ``text``; any other column becomes an item property.
- ``interactions.csv`` (required): ``user_id``, ``item_id``; optional ``timestamp`` (unix seconds),
  ``rating`` and ``behavior`` (the kind of action: ``view``, ``click``, ``cart``, ``buy``… — a short word, stored
  lower-cased on ``INTERACTED.behavior``; a blank cell means none). A user's order is timestamp order, then file
  order; the same user and item may appear on several rows (a view, then a purchase).
- ``users.csv`` (optional): ``id``; any other column becomes a user property.
- ``facts.csv`` (optional): ``item_id``, ``predicate``, ``entity_uri``; optional ``entity_label``, ``source``.

Sessions: split by the session gap when timestamps are given, else the user's whole sequence.

Files are UTF-8 (a spreadsheet's byte-order mark is fine), CRLF or LF, standard CSV quoting (quoted fields may
hold commas, doubled quotes and newlines; an unclosed quote is an error). Header names and values are stripped
of surrounding whitespace; a blank cell sets no property. ``timestamp`` is unix seconds between the years 1
and 9999, ``rating`` any finite number. items.csv and interactions.csv need at least one row; a users.csv or
facts.csv that exists must be a file. Everything is checked (readers.py) before anything is written.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import schema
from .model import Fact, ParsedDataset
from .readers import (bad, check_dir, no_rows, optional_file, parse_float, parse_timestamp, read_csv,
                      require_file, require_id, require_key, show)
from .sessions import build_sessions

_PROP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = {"id", "rawId", "dataset", "title", "text", "textEmbedding", "textHash"}
_RESERVED_PREFIXES = ("extract", "related")  # the intent-extraction bookkeeping properties


def _prop_columns(path: Path, header: list[str], skip: set[str]) -> list[str]:
    """The header columns that become node properties; a name that cannot be one is an error at line 1."""
    cols = []
    for k in header:
        if k in skip:
            continue
        if not _PROP.match(k) or k in _RESERVED or k.startswith(_RESERVED_PREFIXES):
            raise bad(path, 1, f"column name {k!r} cannot be a property (letters, digits, _; not "
                               f"{sorted(_RESERVED)} nor extract*/related*)")
        cols.append(k)
    return cols


def _props(row: dict[str, str], cols: list[str]) -> dict[str, str]:
    """Property values, stripped; a blank cell sets no property."""
    out = {}
    for k in cols:
        v = row[k].strip()
        if v:
            out[k] = v
    return out


def _behavior(path: Path, line: int, value: str) -> str | None:
    """The ``behavior`` cell: blank → None, else a lower-cased behaviour type (:func:`schema.behavior_problem`)."""
    v = value.strip().lower()
    if not v:
        return None
    problem = schema.behavior_problem(v)
    if problem:
        raise bad(path, line, f"column behavior: {show(value.strip())} {problem}")
    return v


def load_generic(path: Path, *, dataset: str, session_gap_s: int | None = 1800) -> ParsedDataset:
    path = check_dir(Path(path))
    out = ParsedDataset(dataset, "generic", str(path))
    nid = lambda raw: schema.node_id(dataset, raw)  # noqa: E731
    items: dict[str, dict] = {}
    item_lines: dict[str, int] = {}
    item_file = require_file(path / "items.csv", "items (items.csv)")
    item_cols: list[str] | None = None
    for line, row in read_csv(item_file, ["id", "title"], strip_types=False):
        if item_cols is None:
            item_cols = _prop_columns(item_file, list(row), {"id", "title", "text"})
        raw = require_id(item_file, line, "id", row["id"])
        if raw in items:
            raise bad(item_file, line, f"duplicate item id {raw} (first on line {item_lines[raw]})")
        item_lines[raw] = line
        title = row["title"].strip()
        items[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset, "title": title,
                      "text": (row.get("text") or "").strip() or title, **_props(row, item_cols)}
    if not items:
        raise no_rows(item_file, "item")
    users: dict[str, dict] = {}
    user_lines: dict[str, int] = {}
    user_file = optional_file(path / "users.csv", "users (users.csv)")
    if user_file:
        user_cols: list[str] | None = None
        for line, row in read_csv(user_file, ["id"], strip_types=False):
            if user_cols is None:
                user_cols = _prop_columns(user_file, list(row), {"id"})
            raw = require_id(user_file, line, "id", row["id"])
            if raw in users:
                raise bad(user_file, line, f"duplicate user id {raw} (first on line {user_lines[raw]})")
            user_lines[raw] = line
            users[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset, **_props(row, user_cols)}
    inter_file = require_file(path / "interactions.csv", "interactions (interactions.csv)")
    rows = []
    for line, row in read_csv(inter_file, ["user_id", "item_id"], strip_types=False):
        u = require_id(inter_file, line, "user_id", row["user_id"])
        i = require_id(inter_file, line, "item_id", row["item_id"])
        if i not in items:
            raise bad(inter_file, line, f"unknown item_id {i} (not in items.csv)")
        if user_file and u not in users:
            raise bad(inter_file, line, f"unknown user_id {u} (not in users.csv)")
        ts = parse_timestamp(inter_file, line, "timestamp", row.get("timestamp", ""), optional=True)
        rating = parse_float(inter_file, line, "rating", row.get("rating", ""), optional=True)
        behavior = _behavior(inter_file, line, row.get("behavior") or "")
        rows.append((u, ts if ts is not None else float("-inf"), line, i, ts, rating, behavior))
        users.setdefault(u, {"id": nid(u), "rawId": u, "dataset": dataset})
    if not rows:
        raise no_rows(inter_file, "interaction")
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    pos: dict[str, int] = {}
    has_ts = any(r[4] is not None for r in rows)
    for u, _, _, i, ts, rating, behavior in rows:
        p = pos.get(u, 0)
        pos[u] = p + 1
        out.interactions.append({"user": nid(u), "item": nid(i), "pos": p,
                                 "ts": int(ts) if ts is not None else None, "rating": rating, "behavior": behavior})
    fact_file = optional_file(path / "facts.csv", "facts (facts.csv)")
    if fact_file:
        entities: dict[str, dict] = {}
        seen: set[tuple[str, str, str]] = set()
        for line, row in read_csv(fact_file, ["item_id", "predicate", "entity_uri"], strip_types=False):
            i = require_id(fact_file, line, "item_id", row["item_id"])
            if i not in items:
                raise bad(fact_file, line, f"unknown item_id {i} (not in items.csv)")
            pred = require_key(fact_file, line, "predicate", row["predicate"], "predicate")
            uri = require_key(fact_file, line, "entity_uri", row["entity_uri"], "entity URI")
            source = (row.get("source") or "").strip() or "generic"
            require_key(fact_file, line, "source", source, "source")
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
