"""Routing: the platform over a ``neo4j://`` (routing) URI, as it would reach a cluster or Aura.

A single Neo4j answers the driver's ROUTE request with a routing table that names itself as router, reader and
writer, so the routing path is exercised end to end here: reads go out as READ-routed, read-access transactions
(on a cluster the driver sends those to the readers; the server refuses a write in one), writes as WRITE-routed.
"""
from __future__ import annotations

from dataclasses import replace

import neo4j
import pytest
from neo4j import RoutingControl
from neo4j.exceptions import ClientError

from kgplatform.db.graph import ConnectionInfo, Graph
from kgplatform.db.migrations import migrate
from kgplatform.ingest import load_dataset, write_dataset


def _routing_info(info: ConnectionInfo) -> ConnectionInfo:
    assert info.uri.startswith(("bolt://", "neo4j://")), info.uri
    return replace(info, uri="neo4j://" + info.uri.split("://", 1)[1])


@pytest.fixture
def routed(neo4j_server, graph) -> Graph:  # ``graph``: the session's database, wiped and migrated
    g = Graph.open(_routing_info(neo4j_server))
    yield g
    g.close()


def test_routing_table_names_readers_writers_and_routers(routed):
    rows, _, _ = routed.driver.execute_query(
        "CALL dbms.routing.getRoutingTable({}, $db) YIELD servers RETURN servers",
        {"db": routed.info.database or "neo4j"}, routing_=RoutingControl.READ, database_=routed.info.database)
    roles = {s["role"] for s in rows[0]["servers"]}
    assert roles == {"READ", "WRITE", "ROUTE"}


def test_reads_are_read_routed_and_writes_write_routed(routed, data_dir, monkeypatch):
    """Every call the library makes is tagged: ingest writes with WRITE, stats/export reads with READ."""
    seen: list[tuple[str, RoutingControl]] = []
    real = routed.driver.execute_query

    def spy(query, parameters=None, *a, routing_=RoutingControl.WRITE, **kw):
        seen.append((query.metadata.get("query", "?") if hasattr(query, "metadata") else "?", routing_))
        return real(query, parameters, *a, routing_=routing_, **kw)

    monkeypatch.setattr(routed.driver, "execute_query", spy)
    migrate(routed)
    data = load_dataset("movielens-100k", data_dir / "movielens-100k-tiny", name="ml-tiny-routed")
    write_dataset(routed, data, workers=1)
    assert routed.read_one("stats/graph_counts") is not None
    modes = {mode for _, mode in seen}
    registry = routed.registry
    checked = 0
    for name, mode in seen:
        if name in registry:
            expected = RoutingControl.READ if registry[name].mode == "read" else RoutingControl.WRITE
            assert mode == expected, (name, mode)
            checked += 1
    assert checked > 0 and modes == {RoutingControl.READ, RoutingControl.WRITE}


def test_read_routed_transaction_refuses_a_write(routed):
    """What makes READ routing safe to send to a reader: the server runs it in read access mode."""
    with pytest.raises(ClientError) as err:
        routed.driver.execute_query("CREATE (:RoutingProbe)", routing_=RoutingControl.READ,
                                    database_=routed.info.database)
    assert err.value.code == "Neo.ClientError.Statement.AccessMode"
    rows, _, _ = routed.driver.execute_query("MATCH (n:RoutingProbe) RETURN count(n) AS n",
                                             routing_=RoutingControl.READ, database_=routed.info.database)
    assert rows[0]["n"] == 0
    assert isinstance(routed.driver, neo4j.Neo4jDriver)  # the routing driver, not a direct Bolt one
