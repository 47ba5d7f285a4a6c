"""``kgp db``: the local Neo4j server."""
from __future__ import annotations

from typing import Optional

import typer

from .common import info, print_json, settings

app = typer.Typer(help="Run the local Neo4j Community 5.26 server (no Docker needed).", no_args_is_help=True)


def _server(ctx: typer.Context, bolt_port: Optional[int] = None, http_port: Optional[int] = None,
            no_auth: bool = False):
    from ..db.connect import local_server

    s = settings(ctx)
    updates = {}
    if bolt_port is not None:
        updates["bolt_port"] = bolt_port
    if http_port is not None:
        updates["http_port"] = http_port
    if no_auth:
        updates["auth"] = False
    if updates:
        s = s.model_copy(update=updates)
    return local_server(s)


def _doc(srv_info) -> dict:
    doc = {"running": srv_info is not None}
    if srv_info is not None:
        doc.update(uri=srv_info.uri, browser=srv_info.http_url, pid=srv_info.pid, home=str(srv_info.home),
                   auth=srv_info.auth, user=srv_info.user if srv_info.auth else None,
                   store_bytes=srv_info.store_bytes)
    return doc


def _show(srv_info, as_json: bool) -> None:
    if as_json:
        print_json(_doc(srv_info))
    elif srv_info is None:
        print("Neo4j: not running")
    else:
        print(f"Neo4j: running (pid {srv_info.pid})")
        print(f"  Bolt:    {srv_info.uri}")
        print(f"  Browser: {srv_info.http_url}")
        print(f"  Home:    {srv_info.home}")
        print(f"  Auth:    {'on, user neo4j, password in ' + str(srv_info.home / 'password') if srv_info.auth else 'off'}")
        print(f"  Store:   {srv_info.store_bytes / 1e6:.1f} MB")


@app.command()
def install(ctx: typer.Context) -> None:
    """Resolve the Neo4j jars with Maven and compile the launcher (done automatically on first start)."""
    _server(ctx).install()
    info("Neo4j launcher ready")


@app.command()
def start(
    ctx: typer.Context,
    bolt_port: Optional[int] = typer.Option(None, help="Bolt port (0 = a free port). Default 7687."),
    http_port: Optional[int] = typer.Option(None, help="HTTP/Browser port (0 = a free port). Default 7474."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Disable authentication (throwaway instances only)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Start the local Neo4j (idempotent: prints the running server if there is one)."""
    srv = _server(ctx, bolt_port, http_port, no_auth)
    _show(srv.start(), as_json)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the local Neo4j cleanly (SIGTERM)."""
    if _server(ctx).stop():
        print("Neo4j stopped")
    else:
        print("Neo4j was not running")


#: ``kgp db status`` exit codes, the service convention (LSB ``status``): 0 running, 3 not running.
STATUS_RUNNING, STATUS_NOT_RUNNING = 0, 3


def _probe(choice, s) -> dict:
    """Whether the NEO4J_URI database answers (and takes the credentials); never raises."""
    from ..db.graph import ConnectionInfo, Graph
    from ..errors import AuthenticationFailed, KgpError

    pw = s.neo4j_password.get_secret_value() if s.neo4j_password else None
    try:
        Graph.open(ConnectionInfo(choice.uri, s.neo4j_user, pw, s.neo4j_database, "env"), timeout_s=10).close()
    except AuthenticationFailed as e:
        return {"running": True, "credentials": "refused", "error": str(e)}
    except KgpError as e:
        return {"running": False, "error": str(e)}
    return {"running": True, "credentials": "accepted"}


@app.command()
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Which Neo4j the CLI uses and whether it runs (exit 0 running, 3 not running).

    The local server: URI, Browser URL, pid and store size. With NEO4J_URI set: whether it answers.
    --json adds "connection": the database the other commands would use and why (KGP_CONNECTION).
    """
    from ..db.connect import choose

    s = settings(ctx)
    choice = choose(s)
    conn = choice.to_dict()
    if choice.source == "local":
        srv_info = _server(ctx).status()
        running = srv_info is not None
        if as_json:
            doc = _doc(srv_info)
            doc["connection"] = conn
            print_json(doc)
        else:
            _show(srv_info, False)
    elif choice.source == "env":
        probe = _probe(choice, s)
        running = probe["running"]
        if as_json:
            print_json({"running": running, "uri": choice.uri, "database": choice.database,
                        **{k: v for k, v in probe.items() if k != "running"}, "connection": conn})
        elif running:
            print("Neo4j: running (NEO4J_URI)")
            print(f"  Bolt:    {choice.uri}")
            print(f"  Database: {choice.database}")
            if probe.get("credentials") == "refused":
                print("  Auth:    credentials refused (check NEO4J_USER / NEO4J_PASSWORD)")
        else:
            print(f"Neo4j: not running ({probe['error']})")
    else:  # testcontainers: nothing runs between commands
        running = False
        if as_json:
            print_json({"running": False, "throwaway": True, "connection": conn})
        else:
            print("Neo4j: not running (KGP_CONNECTION=testcontainers: each command starts a throwaway container; "
                  "its data is lost when the command ends)")
    raise typer.Exit(STATUS_RUNNING if running else STATUS_NOT_RUNNING)
