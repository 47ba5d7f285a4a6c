"""The ``kgp`` admin CLI: a thin layer over the library. Errors become one ``Error: …`` line + exit code."""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from ..errors import KgpError, interrupt_behind
from . import agent as agent_cli
from . import browser as browser_cli
from . import db as db_cli
from . import demo as demo_cli
from . import ingest as ingest_cli
from . import personas as personas_cli
from . import train as train_cli
from . import tune as tune_cli
from .common import info, load_settings, open_graph, print_json, settings

app = typer.Typer(
    name="kgp",
    help="kgplatform: a Neo4j knowledge-graph recommendation platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_cli.app, name="db")
app.add_typer(ingest_cli.app, name="ingest")
demo_cli.register(app)
agent_cli.register(app)
train_cli.register(app)
tune_cli.register(app)
personas_cli.register(app)
browser_cli.register(app)


@app.callback()
def root(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(None, "--home", help="kgplatform home (local Neo4j, runs, caches). Env KGP_HOME."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where the datasets live. Env KGP_DATA_DIR."),
) -> None:
    ctx.obj = load_settings(home=home, data_dir=data_dir)


@app.command()
def migrate(ctx: typer.Context,
            show_status: bool = typer.Option(False, "--status", help="List applied and pending migrations."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Apply the versioned Cypher migrations in migrations/ (idempotent)."""
    from ..db.migrations import migrate as run, status

    with open_graph(ctx, migrate=False) as graph:
        if show_status:
            rows = status(graph)
            if as_json:
                print_json([r.__dict__ for r in rows])
            else:
                for r in rows:
                    print(f"V{r.version:04d}  {r.state:8}  {r.description}" + (f"  ({r.applied_at})" if r.applied_at else ""))
            return
        applied = run(graph)
    if as_json:
        print_json({"applied": [f"V{m.version:04d}" for m in applied]})
    elif applied:
        for m in applied:
            print(f"applied V{m.version:04d} {m.description}")
    else:
        print("schema is up to date")


@app.command()
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Node counts per label, relationship counts per type and the intent layer's Table 1 figures."""
    from ..stats import graph_stats

    with open_graph(ctx, migrate=False) as graph:
        doc = graph_stats(graph)
        if doc["nodes"].get("Intent"):
            from ..agent import intent_stats

            st = intent_stats(graph)
            doc["intents"] = {k: st[k] for k in ("intents", "int_edges", "exact_edges", "related_edges",
                                                 "avg_intent_degree") if k in st}
    if as_json:
        print_json(doc)
        return
    print("nodes:")
    for k, v in doc["nodes"].items():
        print(f"  {k:<14}{v:>10,}")
    print("relationships:")
    for k, v in doc["relationships"].items():
        print(f"  {k:<14}{v:>10,}")
    if "intents" in doc:
        print("intents (IKGR Table 1; per dataset: kgp intents -d NAME):")
        for k, v in doc["intents"].items():
            print(f"  {k:<18}{v:>10,}" if isinstance(v, int) else f"  {k:<18}{v:>10}")


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` (a scheduler's or ``kill``'s polite stop), raised as an interrupt where Python runs next, so
    the command cleans up as for Ctrl-C: transactions roll back, ``finally`` blocks run, an LLM run records its
    ``Run`` node as ``interrupted``."""


#: set by the SIGTERM handler: typer turns any interrupt into a silent exit code 130, so main() tells them apart
_terminated = [False]
INTERRUPT_EXIT = 130  # typer's (and the shell's) code for an interrupted command


def _on_sigterm(signum: int, frame: object) -> None:
    _terminated[0] = True
    raise Terminated()


def _interrupt_exit() -> None:
    """One line and the shell's exit code for the signal: 143 for SIGTERM, 130 for Ctrl-C."""
    term = _terminated[0]
    print("Error: terminated (SIGTERM)" if term else "Error: interrupted", file=sys.stderr)
    sys.exit(143 if term else INTERRUPT_EXIT)


def main() -> None:
    """Console entry point: maps KgpError onto ``Error: …`` / ``Hint: …`` and its exit code; an interrupt
    (Ctrl-C, or SIGTERM: :class:`Terminated`) onto one ``Error:`` line too."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    debug = os.environ.get("KGP_DEBUG", "") not in ("", "0", "false")
    try:  # typer vendors click in recent versions; older ones use click itself
        from typer._click import exceptions as click_exc  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover
        from click import exceptions as click_exc
    try:
        rv = app(standalone_mode=False)
        if rv == INTERRUPT_EXIT:  # typer's answer to KeyboardInterrupt (and so to SIGTERM)
            _interrupt_exit()
        sys.exit(rv if isinstance(rv, int) else 0)  # as click's standalone mode: always leave through exit
    except click_exc.UsageError as e:  # a bad option value or a missing argument: one line, exit 2
        cmd = e.ctx.command_path if e.ctx is not None else "kgp"
        msg = e.format_message().strip()
        if not msg:  # `kgp` alone: the help was printed
            sys.exit(e.exit_code)
        print(f"Error: {msg}", file=sys.stderr)
        print(f"Hint: see {cmd} --help", file=sys.stderr)
        sys.exit(2)
    except getattr(click_exc, "Abort", KeyboardInterrupt) as e:  # click turns an interrupt into Abort
        if interrupt_behind(e) is not None:
            _interrupt_exit()
        print("Error: aborted", file=sys.stderr)
        sys.exit(130)
    except KgpError as e:
        if interrupt_behind(e) is not None:  # e.g. "cannot reach Neo4j" because the interrupt broke a connection
            _interrupt_exit()
        if debug:
            traceback.print_exc()
        print(f"Error: {e}", file=sys.stderr)
        if e.hint:
            print(f"Hint: {e.hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - an interrupt, raised before or after typer's own handling, or
        if interrupt_behind(e) is None:  # an error raised while cleaning up after one (see interrupt_behind)
            raise
        _interrupt_exit()


if __name__ == "__main__":
    main()
