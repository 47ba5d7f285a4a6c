"""Shared fixtures: one throwaway *real* Neo4j for the whole session, wiped between tests.

Which Neo4j: ``KGP_TEST_NEO4J_URI`` (+ ``KGP_TEST_NEO4J_USER``/``KGP_TEST_NEO4J_PASSWORD``) when set — an
explicit opt-in, since the tests delete everything — else a testcontainers Neo4j when a Docker engine answers,
else the project's local launcher in a temporary home on free ports without auth. Never a user's database.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from kgplatform.config import REPO_ROOT, Settings  # noqa: E402
from kgplatform.db.graph import ConnectionInfo, Graph  # noqa: E402
from kgplatform.db.migrations import migrate  # noqa: E402
from kgplatform.stats import wipe  # noqa: E402

DATA_DIR = Path(os.environ.get("KGP_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
TINY = DATA_DIR / "movielens-100k-tiny"
DBPEDIA = DATA_DIR / "movielens-100k" / "dbpedia"
TINY_NAME = "ml-tiny"


def pytest_report_header(config):  # noqa: D103
    return f"kgplatform data: {DATA_DIR}"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not TINY.is_dir():
        pytest.fail(f"test data not found at {DATA_DIR} (set KGP_DATA_DIR or put ../shared beside the project)")
    return DATA_DIR


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory) -> Iterator[ConnectionInfo]:
    uri = os.environ.get("KGP_TEST_NEO4J_URI")
    if uri:
        yield ConnectionInfo(uri, os.environ.get("KGP_TEST_NEO4J_USER", "neo4j"),
                             os.environ.get("KGP_TEST_NEO4J_PASSWORD"), source="env")
        return
    from kgplatform.db.connect import _testcontainers, docker_available

    if docker_available():
        info, stop = _testcontainers()
        yield info
        stop()
        return
    from kgplatform.db.server import LocalServer

    home = tmp_path_factory.mktemp("neo4j-home")
    server = LocalServer(home, bolt_port=0, http_port=0, auth=False, heap="1g", pagecache="256m")
    srv = server.start()
    try:
        yield ConnectionInfo(srv.uri, None, None, source="local")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def session_graph(neo4j_server: ConnectionInfo) -> Iterator[Graph]:
    graph = Graph.open(neo4j_server)
    migrate(graph)
    yield graph
    graph.close()


@pytest.fixture
def graph(session_graph: Graph) -> Graph:
    """A migrated, empty graph (data wiped before each test; schema kept)."""
    wipe(session_graph)
    migrate(session_graph)
    return session_graph


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("kgp-home")
    return Settings(home=home, data_dir=DATA_DIR, connection="env")


@pytest.fixture(scope="session")
def tiny_parsed(data_dir):
    from kgplatform.ingest import load_dataset

    return load_dataset("movielens-100k", TINY, name=TINY_NAME, dbpedia_dir=DBPEDIA)


@pytest.fixture
def tiny_graph(graph: Graph, tiny_parsed) -> Graph:
    """The empty graph with the tiny MovieLens fixture (200 users, 300 items, 6,017 ratings, both KGs)."""
    from kgplatform.ingest import write_dataset

    write_dataset(graph, tiny_parsed, progress=False)
    return graph
