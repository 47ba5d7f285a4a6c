"""The columnar exporter gives exactly the RecData of the row-by-row one it replaced (real Neo4j, tiny fixture)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from kgplatform.errors import NotFound
from kgplatform.graph.export import _export_recdata_rowwise, export_recdata
from kgplatform.ingest import load_dataset, write_dataset

from ..conftest import TINY_NAME


def _same(a, b) -> list[str]:
    """Fields that differ (empty when the two RecData are the same), and the checksums must agree too."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            same = isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == y.dtype \
                and torch.equal(x, y)
        else:
            same = x == y
        if not same:
            out.append(f.name)
    if a.checksum() != b.checksum():
        out.append("checksum")
    return out


OPTIONS = [
    {},
    {"workers": 1},
    {"page": 7},  # many key ranges: range boundaries, several pages in flight
    {"page": 7, "workers": 3},
    {"kg": False},
    {"sessions": False},
    {"text": False, "intents": False},
    {"since": 880_000_000.0},
    {"until": 885_000_000.0},
    {"since": 879_000_000.0, "until": 890_000_000.0},
]


def test_columnar_export_equals_rowwise(tiny_graph):
    """Every option set of OPTIONS, on one ingested graph (an export only reads it, so the ten exports need one
    ingest, not ten); every set is checked and the failing ones are named together."""
    failures = {}
    for options in OPTIONS:
        opts = dict(options)
        workers = opts.pop("workers", 2)
        old, old_rep = _export_recdata_rowwise(tiny_graph, TINY_NAME, progress=False, **opts)
        new, new_rep = export_recdata(tiny_graph, TINY_NAME, progress=False, workers=workers, **opts)
        problems = _same(old, new)
        if (new_rep.rows, new_rep.edges) != (old_rep.rows, old_rep.edges):
            problems.append(f"rows/edges {(new_rep.rows, new_rep.edges)} != {(old_rep.rows, old_rep.edges)}")
        if not new.num_interactions > 0:
            problems.append("no interactions")
        if problems:
            failures[",".join(f"{k}={v}" for k, v in options.items()) or "default"] = problems
    assert failures == {}


def _add_intents_and_vectors(graph) -> None:
    """Intents (exact and related, shared and not), profile intents and text vectors on some nodes only."""
    with graph.driver.session(database=graph.info.database) as s:
        s.run("""
            MATCH (i:Item {dataset: $d}) WITH i ORDER BY i.id LIMIT 40
            WITH collect(i) AS items
            UNWIND range(0, size(items) - 1) AS k
            WITH items[k] AS i, k
            MERGE (n:Intent {key: 'intent-' + toString(k % 9)}) SET n.name = 'intent ' + toString(k % 9),
                  n.textEmbedding = [toFloat(k % 9), 1.0, 0.5]
            MERGE (i)-[:SATISFIES {kind: CASE WHEN k % 3 = 0 THEN 'related' ELSE 'exact' END}]->(n)
            WITH i, k WHERE k % 2 = 0
            SET i.textEmbedding = [toFloat(k), 0.25, -1.0]
            """, d=TINY_NAME).consume()
        s.run("""
            MATCH (u:User {dataset: $d}) WITH u ORDER BY u.id LIMIT 15
            WITH collect(u) AS users
            UNWIND range(0, size(users) - 1) AS k
            WITH users[k] AS u, k
            MERGE (n:Intent {key: 'profile-' + toString(k % 4)})
            MERGE (u)-[:HAS_INTENT {kind: 'exact'}]->(n)
            WITH u, k WHERE k % 3 = 0
            SET u.textEmbedding = [1.0, toFloat(k), 2.0]
            """, d=TINY_NAME).consume()


def test_columnar_export_equals_rowwise_with_intents_and_vectors(tiny_graph):
    _add_intents_and_vectors(tiny_graph)
    old, _ = _export_recdata_rowwise(tiny_graph, TINY_NAME, progress=False)
    new, _ = export_recdata(tiny_graph, TINY_NAME, progress=False, page=11)
    assert new.num_intents > 0 and new.item_text_emb is not None and new.user_intents.numel() > 0
    assert new.intent_text_emb is not None
    assert _same(old, new) == []


def test_columnar_export_without_timestamps_or_kg(graph, tmp_path):
    """Interactions without timestamps (positions stand in), one session per user, no KG."""
    d = tmp_path / "shop"
    d.mkdir()
    (d / "items.csv").write_text("id,title\n" + "".join(f"i{k},item {k}\n" for k in range(12)))
    (d / "interactions.csv").write_text("user_id,item_id\n" + "".join(
        f"u{u},i{(u * 5 + k) % 12}\n" for u in range(9) for k in range(1 + u % 4)))
    write_dataset(graph, load_dataset("generic", d, name="shop"), progress=False)
    old, _ = _export_recdata_rowwise(graph, "shop", progress=False)
    new, _ = export_recdata(graph, "shop", progress=False, page=4)
    assert _same(old, new) == []
    positions = torch.arange(new.num_interactions) - torch.repeat_interleave(new.seq_indptr[:-1], new.seq_lengths)
    assert torch.equal(new.seq_ts, positions.to(torch.float64))  # no timestamp: the position, as before


def test_unknown_dataset_is_reported(graph):
    with pytest.raises(NotFound, match="no items"):
        export_recdata(graph, "nope", progress=False)
