"""MovieLens-100k in RecBole atomic files, with the Freebase KG (``.kg``/``.link``) and DBpedia enrichment.

Reads ``<name>.inter``, ``<name>.item``, ``<name>.user`` and optionally ``<name>.kg``/``<name>.link`` from
``path`` (``ml-100k.*`` in the full dataset, ``test.*`` in the tiny fixture), and DBpedia's ``map.csv`` and
``enriched.csv`` from ``dbpedia_dir`` (default ``path/dbpedia``; the tiny fixture points at the full set's).
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import schema
from ..errors import DataValidationError
from .model import Fact, ParsedDataset
from .readers import (bad, check_dir, no_rows, optional_file, parse_float, parse_int, parse_timestamp,
                      read_atomic, read_csv, require_file, require_id, require_key, show)
from .sessions import build_sessions

DBPEDIA_PREDICATES = ("producer", "distributor", "writer", "cinematography", "subject", "starring", "director")
#: MovieLens ratings are 0.5-5 stars (ML-100k: whole stars 1-5).
RATING_RANGE = (0.0, 5.0)
#: Ages in the .user file.
AGE_RANGE = (0, 150)
_YEAR = re.compile(r"^[0-9]{3,4}$")


def _find(path: Path, suffix: str, what: str, required: bool = True) -> Path | None:
    found = sorted(path.glob(f"*{suffix}"))
    if len(found) > 1:
        raise DataValidationError(f"{path}: several *{suffix} files ({', '.join(f.name for f in found)})")
    if not found:
        if required:
            raise DataValidationError(f"{path}: missing *{suffix} file")
        return None
    return require_file(found[0], what)  # a folder named x.user is an error, not a file


def _entity_label(uri: str) -> str:
    tail = uri.rsplit("/", 1)[-1]
    if tail.startswith("Category:"):
        tail = tail[len("Category:"):]
    return tail.replace("_", " ")


def load_movielens(path: Path, *, dataset: str = "movielens-100k", dbpedia_dir: Path | None = None,
                   session_gap_s: int | None = 1800, with_kg: bool = True) -> ParsedDataset:
    path = check_dir(Path(path))
    if not path.is_dir():
        raise DataValidationError(f"{path}: no such directory (expected the MovieLens atomic files)")
    out = ParsedDataset(dataset, "movielens", str(path))
    nid = lambda raw: schema.node_id(dataset, raw)  # noqa: E731

    # items
    item_file = _find(path, ".item", "item")
    assert item_file is not None
    items: dict[str, dict] = {}
    for line, row in read_atomic(item_file, ["item_id", "movie_title"]):
        raw = require_id(item_file, line, "item_id", row["item_id"])
        if raw in items:
            raise bad(item_file, line, f"duplicate item_id {raw}")
        genres = row.get("class", "").split()
        # release_year is a token column: ML-100k has 'unkonwn' and 'V' in it; anything not a year is None
        year_raw = row.get("release_year", "").strip()
        year = int(year_raw) if _YEAR.match(year_raw) else None
        title = row["movie_title"].strip()
        items[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset, "title": title, "year": year,
                      "genres": genres, "abstract": None, "dbpediaUri": None, "freebaseId": None}
    if not items:
        raise no_rows(item_file, "item")

    # users
    users: dict[str, dict] = {}
    user_file = _find(path, ".user", "user", required=False)
    if user_file:
        for line, row in read_atomic(user_file, ["user_id"]):
            raw = require_id(user_file, line, "user_id", row["user_id"])
            if raw in users:
                raise bad(user_file, line, f"duplicate user_id {raw}")
            users[raw] = {"id": nid(raw), "rawId": raw, "dataset": dataset,
                          "age": parse_int(user_file, line, "age", row.get("age", ""), optional=True,
                                           lo=AGE_RANGE[0], hi=AGE_RANGE[1]),
                          "gender": row.get("gender", "").strip() or None,
                          "occupation": row.get("occupation", "").strip() or None,
                          "zipCode": row.get("zip_code", "").strip() or None}

    # interactions
    inter_file = _find(path, ".inter", "interaction")
    assert inter_file is not None
    raw_inter: list[tuple[str, str, float, float | None, int]] = []
    seen_pairs: set[tuple[str, str]] = set()
    for line, row in read_atomic(inter_file, ["user_id", "item_id", "timestamp"]):
        u = require_id(inter_file, line, "user_id", row["user_id"])
        i = require_id(inter_file, line, "item_id", row["item_id"])
        if i not in items:
            raise bad(inter_file, line, f"unknown item_id {i} (not in {item_file.name})")
        if user_file and u not in users:
            raise bad(inter_file, line, f"unknown user_id {u} (not in {user_file.name})")
        ts = parse_timestamp(inter_file, line, "timestamp", row["timestamp"])
        rating = parse_float(inter_file, line, "rating", row.get("rating", ""), optional=True,
                             lo=RATING_RANGE[0], hi=RATING_RANGE[1])
        if (u, i) in seen_pairs:
            raise bad(inter_file, line, f"duplicate rating of item {i} by user {u}")
        seen_pairs.add((u, i))
        raw_inter.append((u, i, ts, rating, line))  # type: ignore[arg-type]
        if u not in users:
            users[u] = {"id": nid(u), "rawId": u, "dataset": dataset}
    if not raw_inter:
        raise no_rows(inter_file, "interaction")
    # position = time order per user (ties broken by file order, which is stable)
    raw_inter.sort(key=lambda r: (r[0], r[2], r[4]))
    pos_by_user: dict[str, int] = {}
    for u, i, ts, rating, _ in raw_inter:
        p = pos_by_user.get(u, 0)
        pos_by_user[u] = p + 1
        out.interactions.append({"user": nid(u), "item": nid(i), "pos": p, "ts": int(ts), "rating": rating,
                                 "behavior": schema.feedback_behavior(rating)})

    # Freebase KG: an entity linked to an item *is* that item
    if with_kg:
        link_file = _find(path, ".link", "Freebase link", required=False)
        kg_file = _find(path, ".kg", "Freebase KG", required=False)
        fb_to_item: dict[str, str] = {}
        if link_file:
            for line, row in read_atomic(link_file, ["item_id", "entity_id"]):
                i = require_id(link_file, line, "item_id", row["item_id"])
                e = require_id(link_file, line, "entity_id", row["entity_id"])
                if i not in items:
                    continue  # the tiny fixture's link file covers the full catalogue
                if e in fb_to_item and fb_to_item[e] != i:
                    raise bad(link_file, line, f"entity {e} linked to two items ({fb_to_item[e]}, {i})")
                fb_to_item[e] = i
                items[i]["freebaseId"] = e
        if kg_file:
            entities: dict[str, dict] = {}
            seen_facts: set[tuple[str, str, str]] = set()

            def endpoint(mid: str) -> tuple[str, str]:
                if mid in fb_to_item:
                    return ("item", nid(fb_to_item[mid]))
                uri = schema.FREEBASE_NS + mid
                if uri not in entities:
                    entities[uri] = {"uri": uri, "label": mid, "source": schema.FREEBASE, "kind": "resource"}
                return ("entity", uri)

            for line, row in read_atomic(kg_file, ["head_id", "relation_id", "tail_id"]):
                h = require_id(kg_file, line, "head_id", row["head_id"])
                r = require_id(kg_file, line, "relation_id", row["relation_id"])
                t = require_id(kg_file, line, "tail_id", row["tail_id"])
                if (h, r, t) in seen_facts:
                    continue
                seen_facts.add((h, r, t))
                out.facts.append(Fact(endpoint(h), r, endpoint(t), schema.FREEBASE))
            out.entities.extend(entities.values())

    # DBpedia
    if with_kg:
        dbp = check_dir(Path(dbpedia_dir), "the DBpedia folder") if dbpedia_dir else path / "dbpedia"
        if dbp.exists() and not dbp.is_dir():
            raise DataValidationError(f"{dbp}: not a directory (expected the DBpedia folder)")
        if dbpedia_dir is not None and not dbp.is_dir():
            raise DataValidationError(f"{dbp}: DBpedia directory not found")
        if dbp.is_dir():
            map_file = require_file(dbp / "map.csv", "DBpedia map")
            mapped: dict[str, int] = {}
            for line, row in read_csv(map_file, ["item_id", "URI"]):
                i = row["item_id"].strip()
                if i in items and row["URI"].strip():
                    uri = require_key(map_file, line, "URI", row["URI"], "URI")
                    if not uri.startswith(("http://", "https://")):
                        raise bad(map_file, line, f"URI {show(uri)} is not an http(s) URI")
                    if i in mapped and items[i]["dbpediaUri"] != uri:
                        raise bad(map_file, line, f"item_id {i} is mapped twice (first on line {mapped[i]})")
                    mapped[i] = line
                    items[i]["dbpediaUri"] = uri
            enr_file = require_file(dbp / "enriched.csv", "DBpedia enrichment")
            d_entities: dict[str, dict] = {}
            seen: set[tuple[str, str, str]] = set()
            enriched: dict[str, int] = {}
            for line, row in read_csv(enr_file, ["item_id", "abstract", *DBPEDIA_PREDICATES]):
                i = row["item_id"].strip()
                if i not in items:
                    continue
                if i in enriched:
                    raise bad(enr_file, line, f"duplicate item_id {i} (first on line {enriched[i]})")
                enriched[i] = line
                items[i]["abstract"] = row["abstract"].strip() or None
                for pred in DBPEDIA_PREDICATES:
                    for uri in (u.strip() for u in row[pred].split("::")):
                        if not uri:
                            continue
                        require_key(enr_file, line, pred, uri, "URI")
                        if not uri.startswith(("http://", "https://")):
                            raise bad(enr_file, line, f"{pred}: {show(uri)} is not a DBpedia URI")
                        if (i, pred, uri) in seen:
                            continue
                        seen.add((i, pred, uri))
                        if uri not in d_entities:
                            d_entities[uri] = {"uri": uri, "label": _entity_label(uri), "source": schema.DBPEDIA,
                                               "kind": "category" if pred == "subject" else "resource"}
                        out.facts.append(Fact(("item", nid(i)), pred, ("entity", uri), schema.DBPEDIA))
            out.entities.extend(d_entities.values())

    for it in items.values():
        parts = [it["title"]]
        if it["year"]:
            parts[0] += f" ({it['year']})"
        if it["genres"]:
            parts.append("Genres: " + ", ".join(it["genres"]) + ".")
        if it["abstract"]:
            parts.append(it["abstract"])
        it["text"] = "\n".join(parts)
    out.items = list(items.values())
    out.users = list(users.values())
    out.sessions, out.session_items = build_sessions(dataset, out.interactions, session_gap_s)
    return out
