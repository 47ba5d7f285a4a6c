"""The local Neo4j launcher, for real: Java process, Bolt through the official driver, Browser over HTTP.

Three server starts in all (no-auth, its restart, auth-on), each in its own temporary home on free ports.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import urllib.request
from collections.abc import Iterator

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from kgplatform.db.server import LocalServer, ServerInfo, _pid_alive
from kgplatform.errors import ServerError

pytestmark = pytest.mark.timeout(300)


def run(info: ServerInfo, cypher: str, password: str | None = None, **params):
    auth = (info.user, password if password is not None else info.password) if info.auth else None
    with GraphDatabase.driver(info.uri, auth=auth) as driver:
        records, _, _ = driver.execute_query(cypher, params, database_="neo4j")
    return records


def http_get(url: str, accept: str) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LocalServer]:
    """A throwaway no-auth instance on free ports (stopped at the end whatever the tests did)."""
    srv = LocalServer(tmp_path_factory.mktemp("neo4j-noauth"), bolt_port=0, http_port=0, auth=False,
                      heap="512m", pagecache="64m", start_timeout_s=150)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("neo4j-auth"), bolt_port=0, http_port=0, auth=True,
                      heap="512m", pagecache="64m", start_timeout_s=150)
    srv.start()
    yield srv
    srv.stop()


def test_bolt_answers_cypher(server):
    info = server.status()
    assert info is not None and not info.auth and info.password is None
    assert info.uri == f"bolt://127.0.0.1:{info.bolt_port}" and info.bolt_port != 0
    assert run(info, "RETURN 1 AS one")[0]["one"] == 1


def test_browser_page_is_served(server):
    info = server.status()
    assert info.http_url == f"http://127.0.0.1:{info.http_port}/browser/"
    status, content_type, body = http_get(info.http_url, "text/html")
    assert status == 200 and content_type.startswith("text/html")
    assert "<html" in body.lower() and "neo4j" in body.lower()


def test_discovery_document_names_the_bolt_port(server):
    info = server.status()
    status, content_type, body = http_get(f"http://127.0.0.1:{info.http_port}/", "application/json")
    doc = json.loads(body)
    assert status == 200 and content_type.startswith("application/json")
    assert doc["bolt_direct"] == f"bolt://127.0.0.1:{info.bolt_port}"
    assert doc["bolt_routing"] == f"neo4j://127.0.0.1:{info.bolt_port}"
    assert doc["neo4j_version"].startswith("5.26.") and doc["neo4j_edition"] == "community"


def test_apoc_core_is_loaded(server):
    assert run(server.status(), "RETURN apoc.text.join(['a', 'b'], '-') AS s")[0]["s"] == "a-b"


def test_start_is_idempotent(server):
    before = server.status()
    again = server.start()
    assert (again.pid, again.uri, again.http_url) == (before.pid, before.uri, before.http_url)


def test_stale_ready_file_means_not_running(tmp_path):
    srv = LocalServer(tmp_path, bolt_port=0, http_port=0, auth=False)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ready.json").write_text(json.dumps(
        {"pid": 2**22 + 12345, "bolt_port": 1, "http_port": 2, "auth": False}))
    assert srv.status() is None
    assert srv.stop() is False
    assert not (tmp_path / "run" / "ready.json").exists()


def test_busy_port_is_reported_before_launching(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        srv = LocalServer(tmp_path, bolt_port=busy.getsockname()[1], http_port=0, auth=False)
        with pytest.raises(ServerError, match="already in use"):
            srv.start()
    assert srv.status() is None


def test_data_survives_stop_and_restart(server):
    info = server.status()
    run(info, "CREATE (:Probe {name: $name})", name="kept")
    assert server.stop() is True
    assert not _pid_alive(info.pid)
    assert server.status() is None
    assert server.stop() is False

    again = server.start()
    assert again.pid != info.pid
    assert [r["name"] for r in run(again, "MATCH (p:Probe) RETURN p.name AS name")] == ["kept"]
    assert again.store_bytes > 0


def test_auth_rejects_a_wrong_password(auth_server):
    info = auth_server.status()
    assert info.auth and info.user == "neo4j"
    with pytest.raises(AuthError):
        run(info, "RETURN 1", password="not-the-password")


def test_auth_accepts_the_stored_password(auth_server):
    info = auth_server.status()
    stored = auth_server.password_file
    assert stored.read_text().strip() == info.password and len(info.password) >= 8
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert run(info, "RETURN 1 AS one")[0]["one"] == 1


def test_cli_wrong_password_is_one_line_error(auth_server, tmp_path):
    import subprocess
    import sys

    info = auth_server.status()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env.update(NEO4J_URI=info.uri, NEO4J_USER="neo4j", NEO4J_PASSWORD="wrong-password", KGP_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "kgplatform.cli.main", "stats"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 5
    assert r.stderr.splitlines()[0].startswith("Error: Neo4j rejected the credentials")
    assert "Traceback" not in r.stderr
    env["NEO4J_PASSWORD"] = info.password
    r = subprocess.run([sys.executable, "-m", "kgplatform.cli.main", "stats", "--json"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["nodes"] is not None
