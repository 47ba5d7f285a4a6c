"""The growth benchmark's sub-samples (``benchmarks/_subsample.py``): deterministic, nested, whole users, the
items they took and nothing else, readable by the ``amazon-games`` loader. No database, no timing."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from kgplatform.config import REPO_ROOT
from kgplatform.ingest import load_amazon_games

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from _subsample import INTER_FILE, ITEM_FILE, subsample_games  # noqa: E402


def _games(folder: Path, users: int = 400, items: int = 300) -> dict[str, list[str]]:
    rng = random.Random(7)
    folder.mkdir()
    seqs = {str(u): [str(i) for i in rng.sample(range(items), rng.randint(5, 12))] for u in range(users)}
    (folder / ITEM_FILE).write_text("item_id:token\ttitle:token_seq\n"
                                    + "".join(f"{i}\tgame {i}\n" for i in range(items)), encoding="utf-8")
    (folder / INTER_FILE).write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\n"
        + "".join(f"{u}\t{' '.join(s[:-1])}\t{s[-1]}\n" for u, s in seqs.items()), encoding="utf-8")
    return seqs


def _rows(folder: Path, name: str) -> list[str]:
    return (folder / name).read_text(encoding="utf-8").splitlines()


def test_nested_deterministic_whole_users(tmp_path):
    seqs = _games(tmp_path / "src")
    source_rows = set(_rows(tmp_path / "src", INTER_FILE)[1:])
    kept: dict[float, set[str]] = {}
    for f in (0.25, 0.5, 1.0):
        counts = subsample_games(tmp_path / "src", tmp_path / f"f{f}", f)
        again = subsample_games(tmp_path / "src", tmp_path / f"again{f}", f)
        assert counts == again
        for name in (INTER_FILE, ITEM_FILE):
            assert _rows(tmp_path / f"f{f}", name) == _rows(tmp_path / f"again{f}", name)
        rows = _rows(tmp_path / f"f{f}", INTER_FILE)
        assert rows[0] == _rows(tmp_path / "src", INTER_FILE)[0]
        assert set(rows[1:]) <= source_rows  # whole, unchanged rows: users keep their full sequence
        kept[f] = {r.split("\t", 1)[0] for r in rows[1:]}
        took = {i for u in kept[f] for i in seqs[u]}
        assert {r.split("\t", 1)[0] for r in _rows(tmp_path / f"f{f}", ITEM_FILE)[1:]} == took
        assert counts == {"users": len(kept[f]), "items": len(took),
                          "interactions": sum(len(seqs[u]) for u in kept[f])}
        parsed = load_amazon_games(tmp_path / f"f{f}", dataset="g")
        assert parsed.summary()["interactions"] == counts["interactions"]
    assert kept[0.25] < kept[0.5] < kept[1.0] == set(seqs)
    assert 0.15 < len(kept[0.25]) / len(seqs) < 0.35  # a quarter, give or take the hash's spread
