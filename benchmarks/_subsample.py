"""Nested, deterministic user sub-samples of Amazon Video Games (``Games-6k``) for ``benchmarks/growth.py``.

A user is kept at fraction ``f`` when :func:`user_share` of their id is below ``f``: whole users, the same on
every run, and a sample is contained in every larger one. Standard library only, so a test can import it."""
from __future__ import annotations

import hashlib
from pathlib import Path

ITEM_FILE, INTER_FILE = "Games-6k.item", "Games-6k.test.inter"


def user_share(user_id: str) -> float:
    """A stable number in [0, 1) per user id: the first 8 bytes of its SHA-1."""
    return int.from_bytes(hashlib.sha1(user_id.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64


def keep_user(user_id: str, fraction: float) -> bool:
    return user_share(user_id) < fraction


def subsample_games(src: Path, dst: Path, fraction: float) -> dict[str, int]:
    """Write the ``fraction`` user sub-sample of the Games files in ``src`` into ``dst`` (same format); counts."""
    dst.mkdir(parents=True, exist_ok=True)
    with (src / INTER_FILE).open(encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    kept = [r for r in rows if r.strip() and keep_user(r.split("\t", 1)[0], fraction)]
    items: set[str] = set()
    for r in kept:
        _, history, target = r.split("\t")
        items.update(history.split())
        items.add(target)
    (dst / INTER_FILE).write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    with (src / ITEM_FILE).open(encoding="utf-8") as f:
        item_header, *item_rows = f.read().splitlines()
    item_rows = [r for r in item_rows if r.split("\t", 1)[0] in items]
    (dst / ITEM_FILE).write_text("\n".join([item_header, *item_rows]) + "\n", encoding="utf-8")
    return {"users": len(kept), "items": len(item_rows),
            "interactions": sum(len(r.split("\t")[1].split()) + 1 for r in kept)}
