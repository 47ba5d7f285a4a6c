"""Every .cypher file: parses, EXPLAINs on the real server, and its declared mode matches the server's."""
from __future__ import annotations

import pytest
from neo4j import Query

from kgplatform.db.queries import default_registry
from kgplatform.errors import DatabaseUnavailable, QueryError

REGISTRY = default_registry()


@pytest.mark.parametrize("name", REGISTRY.names())
def test_query_explains_with_declared_mode(session_graph, name):
    nq = REGISTRY[name]
    if nq.text.lstrip().upper().startswith("SHOW") or "db.stats.retrieve" in nq.text:
        pytest.skip("SHOW/procedure queries cannot be EXPLAINed with a query type; run in other tests")
    params = {p: None for p in nq.params}
    text = nq.render({"label": "Item", "property": "emb_example"}) if nq.identifiers else nq.text
    if text.lstrip().upper().startswith("CREATE VECTOR INDEX"):
        params = {"index": "explain_only", "dimensions": 8}
    with session_graph.driver.session(database=session_graph.info.database) as s:
        summary = s.run(Query("EXPLAIN " + text), params).consume()
    if nq.mode == "read":
        assert summary.query_type == "r", f"{name} is declared read but the server says {summary.query_type}"
    else:
        assert summary.query_type in ("w", "rw", "s"), f"{name} is declared write but is {summary.query_type}"


def test_read_refuses_write_query(session_graph):
    with pytest.raises(QueryError, match="declared 'write'"):
        session_graph.read("ingest/merge_users", rows=[])


def test_missing_parameter_is_reported(session_graph):
    with pytest.raises(QueryError, match="missing parameters: limit"):
        session_graph.read("explain/user_history", user="x")


def test_template_rejects_unknown_identifiers():
    nq = REGISTRY["runs/create_embedding_index"]
    with pytest.raises(QueryError, match="not in the schema allow-list"):
        nq.render({"label": "Item) DETACH DELETE (n", "property": "emb_x"})
    with pytest.raises(QueryError, match="not allowed"):
        nq.render({"label": "Item", "property": "name"})
    assert "`Item`" in nq.render({"label": "Item", "property": "emb_bpr"})


def test_unknown_query(session_graph):
    with pytest.raises(QueryError, match="unknown query"):
        session_graph.read("nope/nothing")


def test_db_down_gives_clear_error():
    from kgplatform.db.graph import ConnectionInfo, Graph

    with pytest.raises(DatabaseUnavailable, match="cannot reach Neo4j at bolt://127.0.0.1:1"):
        Graph.open(ConnectionInfo("bolt://127.0.0.1:1", "neo4j", "x"))
