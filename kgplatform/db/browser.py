"""Neo4j Browser as a product surface: the platform's Graph Style Sheet and guide, served by the local server.

The files live in ``browser/`` in the repository: ``kgplatform.grass`` (colours, sizes and captions per label and
relationship type) and ``guide.html`` (a Browser guide: ``<slide>`` elements with runnable queries; the
``{{cypher area/name}}`` slots are filled with the statements of the named queries in ``cypher/``, so the guide
runs exactly what ``kgp explain`` runs). On every start, :class:`~kgplatform.db.server.LocalServer` publishes them
into ``<home>/browser/``, where the launcher's unmanaged extension (``launcher/…/web/BrowserContent.java``)
serves them at ``http://127.0.0.1:<http port>/kgp/browser/``, and writes the settings below into
``<home>/conf/neo4j.conf``: ``browser.post_connect_cmd`` runs ``:style <url>`` and ``:play <url>`` whenever
Neo4j Browser connects.
"""
from __future__ import annotations

import html
import os
import re
import secrets
from pathlib import Path

from ..config import resource_dir
from ..errors import ConfigError

HOST = "127.0.0.1"
#: HTTP path of the launcher's static-content extension, and its JAX-RS package.
MOUNT = "/kgp/browser"
EXTENSION_PACKAGE = "io.kgplatform.launcher.web"
STYLE_FILE = "kgplatform.grass"
GUIDE_FILE = "guide.html"

_SLOT = re.compile(r"\{\{\s*([a-z_]+)(?:\s+([A-Za-z0-9_/]+))?\s*\}\}")


def source_dir() -> Path:
    """The shipped ``browser/`` folder (repository root in a checkout)."""
    return resource_dir("browser")


def base_url(http_port: int) -> str:
    return f"http://{HOST}:{http_port}{MOUNT}"


def style_url(http_port: int) -> str:
    return f"{base_url(http_port)}/{STYLE_FILE}"


def guide_url(http_port: int) -> str:
    return f"{base_url(http_port)}/{GUIDE_FILE}"


def post_connect_cmd(http_port: int) -> str:
    """What Browser runs after connecting: apply the style sheet, then open the guide in the stream."""
    return f"style {style_url(http_port)}; play {guide_url(http_port)}"


def settings(http_port: int) -> dict[str, str]:
    """The neo4j.conf settings that serve and apply the style and the guide (see the module docstring)."""
    return {
        # the launcher's JAX-RS package that serves <home>/browser/
        "server.unmanaged_extension_classes": f"{EXTENSION_PACKAGE}={MOUNT}",
        # Browser fetches the files without credentials: the path needs no auth (Neo4j's default list + ours)
        "dbms.security.http_auth_allowlist": f"/,/browser.*,{MOUNT}(/.*)?",
        # hosts Browser may load guides and style sheets from (5.26's name for the allowlist setting)
        "browser.remote_content_hostname_whitelist": f"{HOST},localhost,guides.neo4j.com",
        "browser.post_connect_cmd": post_connect_cmd(http_port),
    }


# -- style sheet ------------------------------------------------------------------------------------------
def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """Parse a GRASS sheet the way Neo4j Browser 5 does (``selector { key: value; … }``, quotes stripped).

    Stricter than Browser where Browser would silently drop things: an unbalanced brace or quote, a declaration
    that is not ``key: value`` (Browser ignores those), an unknown selector, a duplicate selector or a
    ``/* comment */`` (Browser has no comments; one would become part of the next selector) is a
    :class:`~kgplatform.errors.ConfigError`.
    """
    if "/*" in text:
        raise ConfigError("GRASS has no comments: remove /* ... */")
    rules: dict[str, dict[str, str]] = {}
    selector, body, depth, quote = "", "", 0, ""
    for ch in text:
        if quote:  # inside "…" or '…' everything is value text, braces included
            if ch == quote:
                quote = ""
            else:
                body += ch
            continue
        if ch in "\"'":
            if depth == 0:
                raise ConfigError("GRASS: a quote outside a rule")
            quote = ch
        elif ch == "{":
            if depth:
                raise ConfigError(f"GRASS: {{ inside the rule {selector or '?'}")
            depth = 1
        elif ch == "}":
            if not depth:
                raise ConfigError("GRASS: } without a rule")
            _add_rule(rules, selector, body)
            selector, body, depth = "", "", 0
        elif depth:
            body += ch
        elif not ch.isspace():
            selector += ch
    if quote or depth or selector:
        raise ConfigError("GRASS: the sheet ends inside a rule (unbalanced braces or quotes)")
    return rules


def _add_rule(rules: dict[str, dict[str, str]], selector: str, body: str) -> None:
    if not re.fullmatch(r"(node|relationship)(\.[A-Za-z_][A-Za-z0-9_]*)?", selector):
        raise ConfigError(f"GRASS: bad selector {selector!r} (node, node.Label, relationship, relationship.TYPE)")
    if selector in rules:
        raise ConfigError(f"GRASS: selector {selector} appears twice")
    decls: dict[str, str] = {}
    for decl in body.split(";"):
        if not decl.strip():
            continue
        parts = decl.split(":")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ConfigError(f"GRASS: {selector}: bad declaration {decl.strip()!r} (want key: value)")
        decls[parts[0].strip()] = parts[1].strip()
    rules[selector] = decls


def style_text() -> str:
    path = source_dir() / STYLE_FILE
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the Browser style sheet {path}: {e.strerror or e}") from e


# -- guide -------------------------------------------------------------------------------------------------
def render_guide(http_port: int, template: str | None = None) -> str:
    """``guide.html`` with its slots filled: ``{{cypher area/name}}`` (a named query's statement, HTML-escaped),
    ``{{style_url}}`` and ``{{guide_url}}``. An unknown slot or query is a ConfigError."""
    from .queries import default_registry

    if template is None:
        path = source_dir() / GUIDE_FILE
        try:
            template = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the Browser guide {path}: {e.strerror or e}") from e
    registry = default_registry()
    values = {"style_url": style_url(http_port), "guide_url": guide_url(http_port)}

    def fill(m: re.Match) -> str:
        slot, arg = m.group(1), m.group(2)
        if slot == "cypher" and arg:
            if arg not in registry:
                raise ConfigError(f"the Browser guide names an unknown query {arg!r}")
            return html.escape(registry[arg].text, quote=False)
        if slot in values and not arg:
            return html.escape(values[slot])
        raise ConfigError(f"the Browser guide has an unknown slot {m.group(0)!r}")

    return _SLOT.sub(fill, template)


def publish(target: Path, http_port: int) -> list[Path]:
    """Write the style sheet and the rendered guide into ``target`` (atomically, file by file)."""
    files = {STYLE_FILE: style_text(), GUIDE_FILE: render_guide(http_port)}
    parse_grass(files[STYLE_FILE])
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = target / name
        tmp = target / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
