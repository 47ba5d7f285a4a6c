"""Behaviour types on INTERACTED (issue: heterogeneous knowledge fusion, part 1): loaded, validated, stored, exported
to RecData / HeteroData / RecBole, and cut with the training split like every other interaction column."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from kgplatform import schema
from kgplatform.data import leave_one_out, training_graph, training_view
from kgplatform.data.recdata import RecData
from kgplatform.errors import DataValidationError, TrainingError
from kgplatform.graph.export import _export_recdata_rowwise, export_recdata, save_recbole
from kgplatform.ingest import load_dataset, write_dataset
from kgplatform.ingest.bulk import write_csv

ITEMS = "id,title\na,Red shoe\nb,Blue hat\nc,Green bag\nd,Grey sock\n"
# u1 views a, carts it, buys it (one item, three behaviours), views b; u2 has a blank behaviour; u3 mixes case
INTERACTIONS = ("user_id,item_id,timestamp,behavior\n"
                "u1,a,100,view\nu1,a,110,cart\nu1,a,120,buy\nu1,b,130,view\nu1,c,140,view\n"
                "u2,b,100,view\nu2,c,105,\nu2,d,110,buy\nu2,a,120,view\n"
                "u3,d,100, Fav \nu3,a,101,VIEW\nu3,b,102,buy\n")
EXPECTED = {
    "u1": ["view", "cart", "buy", "view", "view"],
    "u2": ["view", None, "buy", "view"],
    "u3": ["fav", "view", "buy"],
}


def _folder(tmp_path: Path, interactions: str = INTERACTIONS) -> Path:
    d = tmp_path / "shop"
    d.mkdir()
    (d / "items.csv").write_text(ITEMS, encoding="utf-8")
    (d / "interactions.csv").write_text(interactions, encoding="utf-8")
    return d


def test_generic_behaviors_are_lower_cased_and_blank_is_none(tmp_path):
    data = load_dataset("generic", _folder(tmp_path), name="shop")
    got: dict[str, list] = {}
    for r in data.interactions:
        got.setdefault(r["user"].split(":", 1)[1], []).append(r["behavior"])
    assert got == EXPECTED


@pytest.mark.parametrize("value, message", [
    ("add to cart", "must be a lowercase word"),
    ("9lives", "must be a lowercase word"),
    ("a__b", "no '__'"),
    ("x" * 33, "must be a lowercase word"),
    ("has_intent", "is reserved"),
])
def test_bad_behavior_names_the_line(tmp_path, value, message):
    folder = _folder(tmp_path, "user_id,item_id,behavior\nu1,a,view\nu1,b," + value + "\n")
    with pytest.raises(DataValidationError, match=message) as err:
        load_dataset("generic", folder, name="shop")
    assert "interactions.csv:3" in str(err.value)


def test_movielens_typed_feedback_follows_the_rating(tiny_parsed):
    seen = {}
    for r in tiny_parsed.interactions:
        assert r["behavior"] == schema.feedback_behavior(r["rating"])
        seen[r["behavior"]] = seen.get(r["behavior"], 0) + 1
    assert set(seen) == {"loved", "liked", "watched", "disliked"}
    assert schema.feedback_behavior(5) == "loved" and schema.feedback_behavior(4) == "liked"
    assert schema.feedback_behavior(3) == "watched" and schema.feedback_behavior(2) == "disliked"
    assert schema.feedback_behavior(1) == "disliked" and schema.feedback_behavior(None) is None


def test_behaviors_round_trip_graph_to_recdata_hetero_and_recbole(graph, tmp_path):
    data = load_dataset("generic", _folder(tmp_path), name="shop")
    write_dataset(graph, data, progress=False)
    rows = graph.driver.execute_query(
        "MATCH (u:User)-[r:INTERACTED]->(i:Item) WHERE u.dataset = 'shop' "
        "RETURN u.rawId AS u, r.pos AS pos, r.behavior AS b ORDER BY u, pos").records
    stored: dict[str, list] = {}
    for r in rows:
        stored.setdefault(r["u"], []).append(r["b"])
    assert stored == EXPECTED
    # idempotent: a re-run changes nothing
    write_dataset(graph, data, progress=False)
    assert graph.driver.execute_query("MATCH (:User {dataset: 'shop'})-[r:INTERACTED]->() RETURN count(r) AS n"
                                      ).records[0]["n"] == 12

    rec, _ = export_recdata(graph, "shop", progress=False)
    assert rec.behavior_names == ["buy", "cart", "fav", "view"]
    for u, uid in enumerate(rec.user_ids):
        lo, hi = int(rec.seq_indptr[u]), int(rec.seq_indptr[u + 1])
        names = [rec.behavior_names[b] if b >= 0 else None for b in rec.seq_behavior[lo:hi].tolist()]
        assert names == EXPECTED[uid.split(":", 1)[1]]
    reference, _ = _export_recdata_rowwise(graph, "shop", progress=False)
    assert reference.checksum() == rec.checksum()

    # the training view cuts behaviours with the items: no held-out interaction's behaviour reaches training
    split = leave_one_out(rec)
    train = training_view(rec, split)
    assert train.seq_behavior.numel() == train.seq_items.numel() == int(split.train_len.sum())
    for u in range(rec.num_users):
        n = int(split.train_len[u])
        lo = int(rec.seq_indptr[u])
        assert torch.equal(train.seq_behavior[int(train.seq_indptr[u]):int(train.seq_indptr[u]) + n],
                           rec.seq_behavior[lo:lo + n])
    g = training_graph(train)
    total = 0
    for k, name in enumerate(rec.behavior_names):
        key = ("user", name, "item")
        n = int((train.seq_behavior == k).sum())
        if n:
            assert g[key].edge_index.shape[1] == n
            total += n
        else:
            assert key not in g.edge_types
    assert total == int((train.seq_behavior >= 0).sum())
    assert torch.equal(g["user", "interacted", "item"].behavior, train.seq_behavior)

    inter = save_recbole(rec, tmp_path / "atomic")[0].read_text(encoding="utf-8").splitlines()
    assert inter[0] == "user_id:token\titem_id:token\ttimestamp:float\tbehavior:token"
    assert inter[1:4] == ["u1\ta\t100\tview", "u1\ta\t110\tcart", "u1\ta\t120\tbuy"]
    assert "u2\tc\t105\t" in inter  # none recorded: an empty token


def test_no_behavior_column_means_none(tmp_path):
    folder = _folder(tmp_path, "user_id,item_id\nu1,a\nu1,b\nu1,c\n")
    data = load_dataset("generic", folder, name="shop")
    assert all(r["behavior"] is None for r in data.interactions)
    rec = RecData.from_sequences("shop", ["u1"], ["a", "b", "c"], [[0, 1, 2]])
    with_none = RecData.from_sequences("shop", ["u1"], ["a", "b", "c"], [[0, 1, 2]], behaviors=[[None] * 3])
    assert rec.seq_behavior is None and rec.behavior_names == []
    assert with_none.seq_behavior.tolist() == [-1, -1, -1]
    with pytest.raises(TrainingError, match="behaviour index out of range"):
        dataclasses.replace(rec, seq_behavior=torch.tensor([0, -1, -1])).validate()


def test_bulk_csv_keeps_behaviors_apart_from_missing_values(tmp_path):
    amazon_like = load_dataset("generic", _folder(tmp_path), name="shop")
    (tmp_path / "csv").mkdir()
    _, rels, _ = write_csv([amazon_like], tmp_path / "csv")
    files = {p.name: p.read_text(encoding="utf-8").splitlines() for t, p in rels if t == "INTERACTED"}
    assert sum(len(lines) - 1 for lines in files.values()) == 12
    for name, lines in files.items():
        header = lines[0].split(",")
        if "behavior" in header:
            assert all(",," not in line and not line.endswith(",") for line in lines[1:]), name
    assert any(f[0].endswith("behavior") for f in files.values())
