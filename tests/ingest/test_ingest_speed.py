"""The batched writer (CREATE fast path, per-batch endpoint lookups, plain-list rows, parallel node phase) writes
exactly the graph of the row-per-dict writer it replaced, and stays idempotent and crash-safe."""
from __future__ import annotations

from typing import Any

import pytest

from kgplatform.errors import QueryError
from kgplatform.ingest import write_dataset
from kgplatform.ingest.writer import _fact_batches, _keyed_batches
from kgplatform.stats import graph_stats

from ..fingerprint import fingerprint

_FACT_QUERIES = {("item", "entity"): "facts_item_entity", ("entity", "item"): "facts_entity_item",
                 ("entity", "entity"): "facts_entity_entity", ("item", "item"): "facts_item_item"}


def reference_write(graph, data) -> None:
    """The previous writer: ``UNWIND $rows`` of dicts, every endpoint MATCHed per row (its queries are kept)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data.facts:
        groups.setdefault((f.head[0], f.tail[0]), []).append(
            {"head": f.head[1], "predicate": f.predicate, "tail": f.tail[1], "source": f.source})
    for query, rows in [("ingest/merge_users", data.users), ("ingest/merge_items", data.items),
                        ("ingest/merge_entities", data.entities), ("ingest/merge_interactions", data.interactions),
                        ("ingest/merge_sessions", data.sessions), ("ingest/merge_session_items", data.session_items),
                        *((f"ingest/merge_{_FACT_QUERIES[k]}", rows) for k, rows in sorted(groups.items()))]:
        if rows:
            graph.write_rows(query, rows)
    graph.write("ingest/merge_dataset", name=data.name, kind=data.kind, path=data.path,
                counts={"users": len(data.users), "items": len(data.items), "interactions": len(data.interactions),
                        "sessions": len(data.sessions), "entities": len(data.entities), "facts": len(data.facts)})


@pytest.fixture(scope="module")
def reference_fingerprint(session_graph, tiny_parsed):
    """The previous writer's graph, written once for the module (a frozen Fingerprint, shared read-only); the
    database is left empty, as the per-test ``graph`` fixture leaves it."""
    from kgplatform.db.migrations import migrate
    from kgplatform.stats import wipe

    wipe(session_graph)
    migrate(session_graph)
    reference_write(session_graph, tiny_parsed)
    fp = fingerprint(session_graph)
    wipe(session_graph)
    migrate(session_graph)
    return fp


@pytest.mark.parametrize("workers,batch_size", [(2, 5000), (1, 700)])
def test_writes_the_reference_graph(graph, tiny_parsed, reference_fingerprint, workers, batch_size):
    """Same nodes, relationships and properties (fingerprint with property digests) as the previous writer."""
    report = write_dataset(graph, tiny_parsed, progress=False, workers=workers, batch_size=batch_size)
    assert fingerprint(graph).differences(reference_fingerprint) == []
    rels = graph_stats(graph)["relationships"]
    assert report.rows["interactions"] == 6017
    assert report.relationships == rels["INTERACTED"] + rels["CONTAINS"] + rels["HAS_SESSION"] + rels["FACT"]


def test_first_ingest_creates_and_rerun_merges_to_the_same_graph(graph, tiny_parsed):
    first = write_dataset(graph, tiny_parsed, progress=False)
    clean = fingerprint(graph)
    assert {"create_users", "create_items", "create_interaction_batch", "create_session_batch",
            "create_session_item_batch", "create_fact_batch_item_entity"} <= set(first.step_seconds)
    again = write_dataset(graph, tiny_parsed, progress=False)
    assert {"merge_users", "merge_items", "merge_interaction_batch", "merge_session_batch",
            "merge_session_item_batch", "merge_fact_batch_item_entity"} <= set(again.step_seconds)
    assert not any(k.startswith("create_") for k in again.step_seconds)
    assert fingerprint(graph).differences(clean) == []


def test_a_run_killed_half_way_reruns_to_the_clean_graph(graph, tiny_parsed, reference_fingerprint):
    """What a killed run leaves (nodes, some interactions, some sessions and facts via the batch queries) is
    completed by the next run: the MERGE path for every kind that has something, one edge per row. The clean
    graph is the module's reference (which a clean run writes: test_writes_the_reference_graph)."""
    clean = reference_fingerprint
    graph.write_rows("ingest/create_users", tiny_parsed.users[:50])
    graph.write_rows("ingest/merge_users", tiny_parsed.users)
    graph.write_rows("ingest/create_items", tiny_parsed.items)
    graph.write_rows("ingest/merge_entities", tiny_parsed.entities[:500])
    for rows in (tiny_parsed.sessions[:40],):
        for _, params in _keyed_batches(rows, 1000, "users", "user", None, None, ("id", "start", "end", "size"),
                                        dataset=tiny_parsed.name):
            graph.write("ingest/create_session_batch", **params)
    for _, params in _keyed_batches(tiny_parsed.interactions[:2000], 1000, "users", "user", "items", "item",
                                    ("pos", "ts", "rating")):
        graph.write("ingest/create_interaction_batch", **params)
    item_entity = [f for f in tiny_parsed.facts if (f.head[0], f.tail[0]) == ("item", "entity")]
    graph.write_rows("ingest/merge_entities", tiny_parsed.entities)
    for _, params in _fact_batches(item_entity[:300], 1000):
        graph.write("ingest/create_fact_batch_item_entity", **params)
    assert fingerprint(graph) != clean
    report = write_dataset(graph, tiny_parsed, progress=False)
    assert {"merge_users", "merge_items", "merge_session_batch", "merge_interaction_batch",
            "merge_fact_batch_item_entity", "create_session_item_batch"} <= set(report.step_seconds)
    assert fingerprint(graph).differences(clean) == []


def test_a_missing_endpoint_fails_the_batch_and_writes_nothing(graph, tiny_parsed):
    """A batch never skips a row or attaches it to another node: an endpoint that is not there fails it whole."""
    graph.write_rows("ingest/create_items", tiny_parsed.items[:2])
    graph.write_rows("ingest/create_users", tiny_parsed.users[:1])
    user, items = tiny_parsed.users[0]["id"], [i["id"] for i in tiny_parsed.items[:2]]
    with pytest.raises(QueryError):
        graph.write("ingest/create_interaction_batch", users=[user, "nobody:1"], items=items,
                    rows=[[0, 0, 0, None, None], [1, 1, 0, None, None]])
    with pytest.raises(QueryError):
        graph.write("ingest/merge_interaction_batch", users=[user], items=[items[0], "nothing:1"],
                    rows=[[0, 0, 0, None, None], [0, 1, 1, None, None]])
    assert graph_stats(graph)["relationships"].get("INTERACTED", 0) == 0


def test_batches_send_each_endpoint_once_with_positions():
    rows = [{"user": "u1", "item": "a", "pos": 0, "ts": 5, "rating": None},
            {"user": "u1", "item": "b", "pos": 1, "ts": 6, "rating": 4.0},
            {"user": "u2", "item": "a", "pos": 0, "ts": 7, "rating": 1.0}]
    (n, params), = list(_keyed_batches(rows, 10, "users", "user", "items", "item", ("pos", "ts", "rating")))
    assert n == 3 and params["users"] == ["u1", "u2"] and params["items"] == ["a", "b"]
    assert params["rows"] == [[0, 0, 0, 5, None], [0, 1, 1, 6, 4.0], [1, 0, 0, 7, 1.0]]
    assert [n for n, _ in _keyed_batches(rows, 2, "users", "user", "items", "item", ("pos",))] == [2, 1]
