"""``kgp browser``: where Neo4j Browser is, and the commands that open the platform's guide and style sheet."""
from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request

import typer

from .common import info, print_json, settings


def _served(url: str) -> bool:
    """True when the local server answers ``url`` (the launcher of an older kgp version does not serve it)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _local_doc(srv_info) -> dict:
    from ..db import browser

    port = srv_info.http_port
    served = _served(browser.style_url(port)) and _served(browser.guide_url(port))
    doc = {
        "connection": "local",
        "browser": srv_info.http_url,
        "bolt": srv_info.uri,
        "auth": srv_info.auth,
        "user": srv_info.user if srv_info.auth else None,
        "password_file": str(srv_info.home / "password") if srv_info.auth else None,
        "guide_url": browser.guide_url(port),
        "style_url": browser.style_url(port),
        "guide_command": f":play {browser.guide_url(port)}",
        "sidebar_command": f":guide {browser.guide_url(port)}",
        "style_command": f":style {browser.style_url(port)}",
        "post_connect_cmd": browser.post_connect_cmd(port),
        "served": served,
        "style_file": str(browser.source_dir() / browser.STYLE_FILE),
    }
    if not served:
        doc["note"] = ("this server does not serve the guide and style yet (started by an older kgp): restart it "
                       "with 'kgp db stop' then 'kgp db start'")
    return doc


def register(app: typer.Typer) -> None:
    @app.command("browser")
    def browser_cmd(
        ctx: typer.Context,
        open_it: bool = typer.Option(False, "--open", help="Open the Browser URL with xdg-open."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """The Neo4j Browser URL of the local server and the commands for the platform's guide and style.

        Starts the local Neo4j if it is not running. When the Browser connects it applies the style sheet
        and opens the guide by itself (browser.post_connect_cmd); the commands are for doing it again.
        """
        from ..db import browser
        from ..db.connect import choose, local_server

        s = settings(ctx)
        choice = choose(s)
        if choice.source != "local":
            doc = {
                "connection": choice.source,
                "browser": None,
                "bolt": choice.uri,
                "style_file": str(browser.source_dir() / browser.STYLE_FILE),
                "note": ("the guide and style are served by the local Neo4j only; with this database, drag "
                         "the style file onto the Browser's style panel (or paste its text after :style)"),
            }
            if open_it:
                info("--open: no Browser URL is known for this database")
        else:
            server = local_server(s)
            srv_info = server.status()
            if srv_info is None:
                info(f"starting the local Neo4j under {s.neo4j_home} ...")
                srv_info = server.start()
            doc = _local_doc(srv_info)
            if open_it:
                opener = shutil.which("xdg-open")
                if opener is None:
                    info("--open: xdg-open is not installed; open the URL yourself")
                else:
                    try:
                        subprocess.Popen([opener, doc["browser"]], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
                    except OSError as e:
                        info(f"--open: cannot run xdg-open: {e.strerror or e}")
        if as_json:
            print_json(doc)
            return
        if doc["browser"] is None:
            print(f"Neo4j Browser: not served by kgp for this database ({doc['connection']}: {doc['bolt']})")
            print(f"  style file: {doc['style_file']}")
            print(f"  {doc['note']}")
            return
        print(f"Neo4j Browser: {doc['browser']}")
        if doc["auth"]:
            print(f"  connect: {doc['bolt']}, user neo4j, password in {doc['password_file']}")
        else:
            print(f"  connect: {doc['bolt']} (no authentication)")
        print(f"  guide:   {doc['guide_command']}")
        print(f"           {doc['sidebar_command']}   (in the sidebar)")
        print(f"  style:   {doc['style_command']}")
        if doc["served"]:
            print("  Both run by themselves when the Browser connects (browser.post_connect_cmd).")
        else:
            print(f"  Note: {doc['note']}")
