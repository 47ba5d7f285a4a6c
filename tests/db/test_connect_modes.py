"""Connection modes: the CLI's ``auto`` never picks a throwaway container; ``kgp db status`` says which
database would be used and why, and exits 0 when it runs, 3 when it does not (the service convention).

The test suite's own database (tests/conftest.py: KGP_TEST_NEO4J_URI, else testcontainers when Docker
answers, else a temporary local launcher) is chosen outside this resolver and is not affected.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgplatform.config import Settings
from kgplatform.db.server import ServerInfo
from kgplatform.errors import ConfigError, DatabaseUnavailable

conn = importlib.import_module("kgplatform.db.connect")  # the package re-exports a function of that name


def _settings(tmp_path: Path, **kw) -> Settings:
    kw.setdefault("home", tmp_path / "home")
    return Settings(**kw)


@pytest.fixture
def docker_everywhere(monkeypatch):
    """Pretend a Docker engine answers; starting a container would be a bug (except when asked for)."""
    monkeypatch.setattr(conn, "docker_available", lambda timeout_s=2.0: True)

    def no_container():
        raise AssertionError("a throwaway container was started")

    monkeypatch.setattr(conn, "_testcontainers", no_container)


# ------------------------------------------------------------------------------------------------------
# choose(): which database, and why


def test_auto_without_uri_is_the_local_launcher_even_with_docker(tmp_path, docker_everywhere):
    c = conn.choose(_settings(tmp_path))
    assert (c.mode, c.source, c.throwaway) == ("auto", "local", False)
    assert c.uri == "bolt://127.0.0.1:7687"
    assert "NEO4J_URI is not set" in c.reason and "throwaway" in c.reason


def test_auto_with_uri_is_env(tmp_path, docker_everywhere):
    c = conn.choose(_settings(tmp_path, neo4j_uri="bolt://db.example:7687"))
    assert (c.source, c.uri, c.throwaway) == ("env", "bolt://db.example:7687", False)
    assert c.reason == "NEO4J_URI is set"


def test_env_without_uri_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="KGP_CONNECTION=env but NEO4J_URI is not set"):
        conn.choose(_settings(tmp_path, connection="env"))


def test_local_ignores_uri(tmp_path):
    c = conn.choose(_settings(tmp_path, connection="local", neo4j_uri="bolt://db.example:7687", bolt_port=7999))
    assert (c.source, c.uri) == ("local", "bolt://127.0.0.1:7999")
    assert "NEO4J_URI is ignored" in c.reason


def test_explicit_testcontainers_is_throwaway(tmp_path):
    c = conn.choose(_settings(tmp_path, connection="testcontainers"))
    assert (c.source, c.uri, c.throwaway) == ("testcontainers", None, True)
    assert "lost" in c.reason


# ------------------------------------------------------------------------------------------------------
# resolve(): no container in auto mode, clear errors


def test_auto_resolve_never_starts_a_container(tmp_path, docker_everywhere):
    with pytest.raises(DatabaseUnavailable, match="local Neo4j .* is not running"):
        conn.resolve(_settings(tmp_path), start_local=False, log=lambda m: None)


def test_auto_resolve_with_uri_uses_it(tmp_path, docker_everywhere):
    info, cleanup = conn.resolve(_settings(tmp_path, neo4j_uri="bolt://db.example:7687", neo4j_password="pw"))
    assert (info.uri, info.source, info.password, cleanup) == ("bolt://db.example:7687", "env", "pw", None)


def test_explicit_testcontainers_still_starts_one(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(conn, "docker_available", lambda timeout_s=2.0: True)
    monkeypatch.setattr(conn, "_testcontainers", lambda: started.append(1) or ("info", "stop"))
    pytest.importorskip("testcontainers.neo4j")
    notes: list[str] = []
    assert conn.resolve(_settings(tmp_path, connection="testcontainers"), log=notes.append) == ("info", "stop")
    assert started == [1] and "lost when this command ends" in notes[0]


def test_explicit_testcontainers_without_docker_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("testcontainers.neo4j")
    monkeypatch.setattr(conn, "docker_available", lambda timeout_s=2.0: False)
    with pytest.raises(DatabaseUnavailable, match="no Docker engine answers"):
        conn.resolve(_settings(tmp_path, connection="testcontainers"), log=lambda m: None)


def test_the_suite_keeps_its_own_resolver():
    """tests/conftest.py picks the suite's database with these two functions, independently of resolve()."""
    assert callable(conn._testcontainers) and callable(conn.docker_available)


# ------------------------------------------------------------------------------------------------------
# kgp db status


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env["KGP_HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def kgp(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kgplatform.cli.main", *args], env=_env(tmp_path, **extra),
                          capture_output=True, text=True, timeout=300)


def test_status_not_running_exits_3(tmp_path):
    r = kgp(tmp_path, "db", "status")
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "Neo4j: not running"
    assert "Traceback" not in r.stderr


def test_status_json_says_which_database_and_why(tmp_path):
    r = kgp(tmp_path, "db", "status", "--json")
    assert r.returncode == 3, r.stderr
    doc = json.loads(r.stdout)
    assert doc["running"] is False
    assert doc["connection"]["source"] == "local" and doc["connection"]["mode"] == "auto"
    assert doc["connection"]["throwaway"] is False and "NEO4J_URI is not set" in doc["connection"]["reason"]


def test_status_of_the_env_database(neo4j_server, tmp_path):
    extra = {"NEO4J_URI": neo4j_server.uri}
    if neo4j_server.password:
        extra.update(NEO4J_USER=neo4j_server.user or "neo4j", NEO4J_PASSWORD=neo4j_server.password)
    r = kgp(tmp_path, "db", "status", "--json", **extra)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["running"] is True and doc["uri"] == neo4j_server.uri
    assert doc["connection"]["source"] == "env" and doc["connection"]["reason"] == "NEO4J_URI is set"
    r = kgp(tmp_path, "db", "status", **extra)
    assert r.returncode == 0 and r.stdout.startswith("Neo4j: running (NEO4J_URI)")


def test_status_of_an_unreachable_env_database_exits_3(tmp_path):
    r = kgp(tmp_path, "db", "status", NEO4J_URI="bolt://127.0.0.1:1")
    assert r.returncode == 3, r.stderr
    assert r.stdout.startswith("Neo4j: not running (cannot reach Neo4j at bolt://127.0.0.1:1")
    assert "Traceback" not in r.stderr


def test_status_with_testcontainers_says_throwaway(tmp_path):
    r = kgp(tmp_path, "db", "status", "--json", KGP_CONNECTION="testcontainers")
    assert r.returncode == 3, r.stderr
    doc = json.loads(r.stdout)
    assert doc["throwaway"] is True and doc["connection"]["source"] == "testcontainers"
    r = kgp(tmp_path, "db", "status", KGP_CONNECTION="testcontainers")
    assert r.returncode == 3 and "throwaway" in r.stdout


def test_status_env_mode_without_uri_is_a_config_error(tmp_path):
    r = kgp(tmp_path, "db", "status", KGP_CONNECTION="env")
    assert r.returncode == 2
    assert r.stderr.startswith("Error: KGP_CONNECTION=env but NEO4J_URI is not set")
    assert "Traceback" not in r.stderr


def test_status_bad_connection_value_is_a_config_error(tmp_path):
    r = kgp(tmp_path, "db", "status", KGP_CONNECTION="docker")
    assert r.returncode == 2 and r.stderr.startswith("Error: bad setting connection")


def test_status_of_a_running_local_server_exits_0(tmp_path, monkeypatch, capsys):
    """In-process, with the local server's status faked (starting a real one here would take a minute)."""
    from kgplatform.cli import db as db_cli
    from kgplatform.cli.main import main

    home = tmp_path / "home" / "neo4j"
    fake = ServerInfo(uri="bolt://127.0.0.1:7687", http_url="http://127.0.0.1:7474/browser/", pid=4242, home=home,
                      auth=True, user="neo4j", password="secret", bolt_port=7687, http_port=7474, store_bytes=2_000_000)

    class FakeServer:
        def status(self):
            return fake

    monkeypatch.setattr(db_cli, "_server", lambda ctx, *a, **k: FakeServer())
    for k in list(os.environ):
        if k.startswith(("NEO4J_", "KGP_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KGP_HOME", str(tmp_path / "home"))
    for args, check in ((["db", "status"], lambda out: out.startswith("Neo4j: running (pid 4242)")),
                        (["db", "status", "--json"],
                         lambda out: json.loads(out)["pid"] == 4242 and json.loads(out)["connection"]["source"] == "local")):
        monkeypatch.setattr(sys, "argv", ["kgp", *args])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 0
        assert check(capsys.readouterr().out)


def test_status_with_refused_credentials_is_running_but_says_so(tmp_path, monkeypatch, capsys):
    from kgplatform.cli.main import main
    from kgplatform.db.graph import Graph
    from kgplatform.errors import AuthenticationFailed

    def refuse(info, *a, **k):
        raise AuthenticationFailed(f"Neo4j rejected the credentials for {info.uri}")

    monkeypatch.setattr(Graph, "open", staticmethod(refuse))
    for k in list(os.environ):
        if k.startswith(("NEO4J_", "KGP_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("KGP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NEO4J_URI", "bolt://db.example:7687")
    monkeypatch.setenv("NEO4J_PASSWORD", "wrong")
    monkeypatch.setattr(sys, "argv", ["kgp", "db", "status", "--json"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True and doc["credentials"] == "refused" and "rejected" in doc["error"]
