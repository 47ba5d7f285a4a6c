"""``--bulk``: the offline importer writes the transactional path's graph, and refuses what it cannot do safely."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kgplatform.db.graph import ConnectionInfo, Graph
from kgplatform.errors import ConfigError, DataValidationError
from kgplatform.ingest import write_dataset
from kgplatform.ingest.bulk import ARRAY_DELIMITER, bulk_load, write_csv
from kgplatform.ingest.model import ParsedDataset

from ..conftest import DBPEDIA, TINY
from ..fingerprint import fingerprint


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A local launcher server of this module's own (the bulk load stops and restarts it)."""
    from kgplatform.db.server import LocalServer

    server = LocalServer(tmp_path_factory.mktemp("bulk-home"), bolt_port=0, http_port=0, auth=False, heap="1g",
                         pagecache="256m")
    server.start()
    yield server
    server.stop()


def _connect(server):
    def connect() -> Graph:
        info = server.status()
        assert info is not None
        return Graph.open(ConnectionInfo(info.uri, None, None, source="local"))
    return connect


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bulk_first_load_is_the_transactional_graph(graph, tiny_parsed, own_server):
    write_dataset(graph, tiny_parsed, progress=False)
    transactional = fingerprint(graph)
    report = bulk_load(own_server, [tiny_parsed], connect=_connect(own_server), log=lambda m: None)
    assert report.rows["interactions"] == 6017 and report.import_seconds > 0
    # the importer's own phase timings, read from its output
    assert {"Node import", "Relationship import", "total"} <= report.importer_phases.keys()
    assert 0 < report.importer_phases["total"] <= report.import_seconds
    bulk_graph = _connect(own_server)()
    try:
        assert fingerprint(bulk_graph).differences(transactional) == []  # nodes, edges and every property
        # the loaded graph is a normal one: a transactional re-ingest changes nothing
        write_dataset(bulk_graph, tiny_parsed, progress=False)
        assert fingerprint(bulk_graph).differences(transactional) == []
    finally:
        bulk_graph.close()

    # ... and a second bulk load is refused: the database is not empty any more; nothing is touched
    with pytest.raises(ConfigError, match="empty database only"):
        bulk_load(own_server, [tiny_parsed], connect=_connect(own_server), log=lambda m: None)
    assert own_server.status() is not None
    again = _connect(own_server)()
    try:
        assert fingerprint(again).differences(transactional) == []
    finally:
        again.close()


def test_bulk_refuses_a_database_that_is_not_the_local_launchers(neo4j_server, tmp_path, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env.update(NEO4J_URI=neo4j_server.uri, KGP_HOME=str(tmp_path / "home"))
    r = subprocess.run([sys.executable, "-m", "kgplatform.cli.main", "ingest", "movielens-100k", "--path", str(TINY),
                        "--dbpedia", str(DBPEDIA), "--name", "bulk-refused", "--bulk"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == ConfigError.exit_code, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--bulk needs the local Neo4j" in errors[0], r.stderr


def _dataset(**items_extra) -> ParsedDataset:
    d = ParsedDataset("t", "generic", "/x")
    d.users = [{"id": "t:u", "rawId": "u", "dataset": "t"}]
    d.items = [{"id": "t:a", "rawId": "a", "dataset": "t", "title": 'say "hi",\nthen go', "text": "", **items_extra}]
    d.interactions = [{"user": "t:u", "item": "t:a", "pos": 0, "ts": None, "rating": 4.5}]
    return d


def test_csv_quotes_strings_and_marks_multiline_files(tmp_path):
    nodes, rels, multiline = write_csv([_dataset(genres=["a", "b c"], year=1999)], tmp_path)
    items = dict(nodes)["Item"]
    text = items.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ":ID(Item),id,rawId,dataset,title,text,genres:string[],year:long"
    assert text.splitlines()[1].startswith('0,"t:a","a","t",')  # the importer's integer id, then the key
    assert '"say ""hi"",\nthen go"' in text and f'"a{ARRAY_DELIMITER}b c"' in text and ',"",' in text
    assert multiline == [items]
    inter = dict(rels)["INTERACTED"].read_text().splitlines()
    assert inter == [":START_ID(User),:END_ID(Item),pos:long,ts:long,rating:double", "0,0,0,,4.5"]


@pytest.mark.parametrize("extra,message", [
    ({"genres": []}, "empty list"),
    ({"genres": ["a" + ARRAY_DELIMITER]}, r"U\+001F"),
])
def test_csv_refuses_what_the_importer_cannot_hold(tmp_path, extra, message):
    with pytest.raises(DataValidationError, match=message):
        write_csv([_dataset(**extra)], tmp_path)


def test_csv_refuses_a_column_of_mixed_types(tmp_path):
    d = _dataset(year=1999)
    d.items.append({"id": "t:b", "rawId": "b", "dataset": "t", "title": "b", "text": "", "year": "unknown"})
    with pytest.raises(DataValidationError, match="mixes long and string"):
        write_csv([d], tmp_path)
