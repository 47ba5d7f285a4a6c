"""Neo4j Browser as a product surface: the style sheet, the guide, the settings that apply them, the server that
serves them, and (with Chromium installed) a real Browser that shows styled nodes."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest
from neo4j import Query

from kgplatform import schema
from kgplatform.config import REPO_ROOT
from kgplatform.db import browser
from kgplatform.db.queries import default_registry
from kgplatform.db.server import CONF_BEGIN, CONF_END, LocalServer, write_conf
from kgplatform.errors import ConfigError

#: labels and relationship types the platform writes, each styled with a colour and a caption
LABELS = ("User", "Item", "Entity", "Intent", "Session", "Persona", "Knowledge", "Run", "Dataset")
REL_TYPES = ("INTERACTED", "FACT", "SATISFIES", "HAS_INTENT", "HAS_SESSION", "CONTAINS", "HAS_PERSONA", "RECOMMENDED",
             "INTENT_EMBEDDING", "HAS_KNOWLEDGE", "HAS_TUNING_KNOWLEDGE", "INFERRED")
EXPLAIN_QUERIES = ("shared_intents", "user_intents", "kg_paths", "similar_users", "user_history", "item_facts",
                   "persona_peers", "similar_content")


class _Runnables(HTMLParser):
    """The text of every ``<pre class="… runnable …">`` and the number of ``<slide>`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.slides, self.boxes, self._box = 0, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "slide":
            self.slides += 1
        if tag == "pre" and "runnable" in (dict(attrs).get("class") or "").split():
            self._box = []

    def handle_data(self, data):
        if self._box is not None:
            self._box.append(data)

    def handle_endtag(self, tag):
        if tag == "pre" and self._box is not None:
            self.boxes.append("".join(self._box).strip())
            self._box = None


def _guide_boxes(port: int = 7474) -> tuple[int, list[str]]:
    parser = _Runnables()
    parser.feed(browser.render_guide(port))
    return parser.slides, parser.boxes


# -- the style sheet -------------------------------------------------------------------------------------------
def test_style_sheet_parses_and_styles_every_label_and_type():
    rules = browser.parse_grass(browser.style_text())
    assert {"node", "relationship"} <= set(rules)
    assert set(LABELS) <= schema.LABELS and set(REL_TYPES) == schema.REL_TYPES
    for label in LABELS:
        rule = rules[f"node.{label}"]
        assert re.fullmatch(r"#[0-9A-F]{6}", rule["color"]) and rule["diameter"].endswith("px"), label
        assert re.search(r"\{\w+\}", rule["caption"]), label
    colours = [rules[f"node.{label}"]["color"] for label in LABELS]
    assert len(set(colours)) == len(colours), "every label gets its own colour"
    assert rules["node.Item"]["caption"] == "{title}" and rules["node.Intent"]["caption"] == "{name}"
    assert rules["node.Entity"]["caption"] == "{label}" and rules["node.User"]["caption"] == "{id}"
    for rel in REL_TYPES:
        assert {"color", "shaft-width", "caption"} <= set(rules[f"relationship.{rel}"]), rel
    assert rules["relationship.FACT"]["caption"] == "{predicate}"


@pytest.mark.parametrize("text, message", [
    ("/* colours */ node { color: #FFFFFF; }", "no comments"),
    ("node { color: #FFFFFF; ", "ends inside a rule"),
    ("node { color #FFFFFF; }", "bad declaration"),
    ("node.User { caption: '{id}'; } node.User { caption: '{id}'; }", "appears twice"),
    ("nodes { color: #FFFFFF; }", "bad selector"),
])
def test_bad_style_sheets_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        browser.parse_grass(text)


def test_captions_with_braces_inside_quotes_parse_like_browser():
    rules = browser.parse_grass('node.Item {\n  caption: "{title}";\n  color: #F79767;\n}\n'
                                "relationship.RECOMMENDED { caption: 'rank {rank}'; }")
    assert rules == {"node.Item": {"caption": "{title}", "color": "#F79767"},
                     "relationship.RECOMMENDED": {"caption": "rank {rank}"}}


# -- the guide -------------------------------------------------------------------------------------------------
def test_guide_copies_the_explanation_queries_verbatim():
    rendered = browser.render_guide(7474)
    assert "{{" not in rendered and "<title>" in rendered
    slides, boxes = _guide_boxes()
    assert slides >= 7
    registry = default_registry()
    for name in EXPLAIN_QUERIES:
        assert registry[f"explain/{name}"].text in boxes, name
    assert f":style {browser.style_url(7474)}" in boxes
    assert any(b.startswith(":param user =>") for b in boxes) and any(b.startswith(":param item =>") for b in boxes)
    text = html.unescape(re.sub(r"<[^>]+>", " ", rendered))
    for topic in ("history", "intents", "similar users", "Runs", "metrics", "Personas", "peers of the user's persona"):
        assert topic.lower() in text.lower(), topic


def test_guide_slots_are_checked():
    with pytest.raises(ConfigError, match="unknown query"):
        browser.render_guide(7474, "<pre>{{cypher explain/nope}}</pre>")
    with pytest.raises(ConfigError, match="unknown slot"):
        browser.render_guide(7474, "<pre>{{password}}</pre>")
    assert browser.render_guide(1234, "{{guide_url}}") == "http://127.0.0.1:1234/kgp/browser/guide.html"


def test_every_guide_query_compiles_on_the_server(session_graph):
    """Each runnable Cypher box EXPLAINs with the guide's parameters; each :param expression too."""
    _, boxes = _guide_boxes()
    params = {"user": "x:1", "item": "x:2", "limit": 3}
    with session_graph.driver.session(database=session_graph.info.database) as s:
        for box in boxes:
            if box.startswith(":param"):
                name, expr = re.fullmatch(r":param (\w+) => (.+)", box, re.S).groups()
                s.run(Query(f"EXPLAIN RETURN {expr} AS {name}")).consume()
            elif not box.startswith(":"):
                s.run(Query("EXPLAIN " + box), params).consume()


# -- the settings that apply them ------------------------------------------------------------------------------
def test_server_config_has_post_connect_cmd(tmp_path):
    srv = LocalServer(tmp_path / "home", bolt_port=0, http_port=0, auth=False)
    srv._write_config(45678)
    conf = srv.conf_file.read_text()
    base = "http://127.0.0.1:45678/kgp/browser"
    assert f"browser.post_connect_cmd=style {base}/kgplatform.grass; play {base}/guide.html\n" in conf
    assert "server.unmanaged_extension_classes=io.kgplatform.launcher.web=/kgp/browser\n" in conf
    assert "browser.remote_content_hostname_whitelist=127.0.0.1," in conf
    assert "dbms.security.http_auth_allowlist=/,/browser.*,/kgp/browser(/.*)?" in conf
    published = sorted(p.name for p in srv.browser_dir.iterdir())
    assert published == ["guide.html", "kgplatform.grass"]
    assert (srv.browser_dir / "kgplatform.grass").read_text() == browser.style_text()
    assert base + "/guide.html" in (srv.browser_dir / "guide.html").read_text()


def test_write_conf_keeps_the_users_lines_and_is_idempotent(tmp_path):
    conf = tmp_path / "conf" / "neo4j.conf"
    assert write_conf(conf, {}) is False and not conf.exists()
    assert write_conf(conf, {"a.b": "1", "c.d": "x=y; z"}) is True
    assert conf.read_text() == f"{CONF_BEGIN}\na.b=1\nc.d=x=y; z\n{CONF_END}\n"
    assert write_conf(conf, {"a.b": "1", "c.d": "x=y; z"}) is False
    conf.write_text("# mine\nserver.memory.heap.max_size=1g\nc.d=my own\n\n" + conf.read_text())
    assert write_conf(conf, {"a.b": "2", "c.d": "x"}) is True
    text = conf.read_text()
    assert text == f"# mine\nserver.memory.heap.max_size=1g\nc.d=my own\n\n{CONF_BEGIN}\na.b=2\n{CONF_END}\n"
    assert write_conf(conf, {"a.b": "2", "c.d": "x"}) is False
    assert write_conf(conf, {}) is True
    assert conf.read_text() == "# mine\nserver.memory.heap.max_size=1g\nc.d=my own\n"


def test_a_missing_browser_folder_does_not_stop_the_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(browser, "source_dir", lambda: tmp_path / "nowhere")
    srv = LocalServer(tmp_path / "home", bolt_port=0, http_port=0, auth=False)
    srv._write_config(45678)
    assert not srv.conf_file.exists()
    assert "not published" in capsys.readouterr().err


# -- the server that serves them -------------------------------------------------------------------------------
def _client_config(session_graph) -> dict[str, str]:
    with session_graph.driver.session(database="system") as s:
        return {r["name"]: r["value"] for r in s.run("CALL dbms.clientConfig()")}


@pytest.fixture(scope="module")
def served(neo4j_server, session_graph) -> tuple[int, dict[str, str]]:
    """The session's server, when it is the project's launcher: its HTTP port and Browser settings."""
    if neo4j_server.source != "local":
        pytest.skip("the session's Neo4j is not the project's launcher")
    config = _client_config(session_graph)
    m = re.search(r"http://127\.0\.0\.1:(\d+)/kgp/browser/", config.get("browser.post_connect_cmd", ""))
    assert m, config
    return int(m.group(1)), config


def test_the_server_serves_style_and_guide_without_credentials(served):
    port, config = served
    assert config["browser.post_connect_cmd"] == browser.post_connect_cmd(port)
    assert "127.0.0.1" in config["browser.remote_content_hostname_whitelist"].split(",")
    for url, kind in ((browser.style_url(port), "text/plain"), (browser.guide_url(port), "text/html")):
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(kind)
            body = r.read().decode()
        if kind == "text/plain":
            assert browser.parse_grass(body) == browser.parse_grass(browser.style_text())
        else:
            assert body == browser.render_guide(port)
    for bad in ("nope.html", "..%2Fpassword", "guide.exe", ""):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{browser.base_url(port)}/{bad}", timeout=10)
        assert e.value.code in (400, 404, 405), bad


# -- a real Browser --------------------------------------------------------------------------------------------
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_headless_chromium_shows_styled_nodes(served, tiny_graph, neo4j_server, tmp_path):
    """scripts/browser_screenshot.py against the session's server: guide and style applied on connect, the
    guide's :param boxes and its KG explanation query run, nodes drawn in the style sheet's colours."""
    from tests.cli.test_cli import kgp

    r = kgp(neo4j_server, tmp_path, "train", "pop", "-d", "ml-tiny")
    assert r.returncode == 0, r.stderr
    port, _ = served
    bolt_port = int(neo4j_server.uri.rsplit(":", 1)[1])
    out = tmp_path / "browser.png"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "browser_screenshot.py"), "--http-port", str(port),
                        "--bolt-port", str(bolt_port), "--out", str(out), "--chromium", CHROMIUM],
                       capture_output=True, text=True, timeout=540, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["style_applied"] and doc["guide_title"].startswith("kgplatform")
    assert {"User", "Item", "Entity"} <= set(doc["nodes"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
