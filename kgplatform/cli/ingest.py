"""``kgp ingest``: load a dataset into the graph (validate everything first, then batched MERGE)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import info, open_graph, print_json, settings

app = typer.Typer(help="Load a dataset into the graph: validated first, then batched idempotent writes "
                       "(or --bulk: the offline importer, first load into an empty local database).",
                  no_args_is_help=True)

PathOpt = typer.Option(None, "--path", help="Dataset folder (default: <KGP_DATA_DIR>/<dataset>).")
NameOpt = typer.Option(None, "--name", help="Dataset name in the graph (ids become '<name>:<raw id>').")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")
BulkOpt = typer.Option(False, "--bulk", help="First load into an EMPTY local database with Neo4j's offline importer "
                                             "(stops and restarts the local server); refused otherwise.")


def run_ingest(ctx: typer.Context, kind: str, path: Optional[Path], name: Optional[str], as_json: bool,
               bulk: bool = False, **load_kw) -> None:
    from ..ingest import LOADERS, load_dataset, write_dataset

    s = settings(ctx)
    if s.batch_size < 1:
        raise ConfigError(f"KGP_BATCH_SIZE must be >= 1, got {s.batch_size}")
    folder = path or (s.data_dir / LOADERS[kind][2])
    info(f"reading {kind} from {folder}")
    data = load_dataset(kind, folder, name=name, **load_kw)  # validates every row before any write
    info("validated: " + ", ".join(f"{v:,} {k}" for k, v in data.summary().items()))
    if bulk:
        run_bulk(ctx, data, as_json)
        return
    with open_graph(ctx) as graph, dataset_lock(graph, data.name):
        report = write_dataset(graph, data, batch_size=s.batch_size)
    rate = report.relationships / report.seconds if report.seconds else 0.0
    doc = {"dataset": report.dataset, "rows": report.rows, "seconds": round(report.seconds, 2),
           "relationships_per_s": round(rate)}
    if as_json:
        print_json(doc)
    else:
        print(f"ingested {report.dataset} in {report.seconds:.1f} s ({rate:,.0f} relationships/s): "
              + ", ".join(f"{v:,} {k}" for k, v in report.rows.items()))


def run_bulk(ctx: typer.Context, data, as_json: bool) -> None:
    """``--bulk``: the offline importer into the local launcher's empty database (kgplatform.ingest.bulk)."""
    from ..db import connect
    from ..db.connect import choose, local_server
    from ..ingest.bulk import bulk_load

    s = settings(ctx)
    choice = choose(s)
    if choice.source != "local":
        raise ConfigError(f"--bulk needs the local Neo4j that kgp runs itself, but this command uses {choice.source} "
                          f"({choice.reason})",
                          hint="unset NEO4J_URI (or set KGP_CONNECTION=local), or ingest without --bulk")
    report = bulk_load(local_server(s), [data], connect=lambda: connect(s, log=info), log=info)
    rate = report.relationships / report.seconds if report.seconds else 0.0
    doc = {"dataset": data.name, "bulk": True, "rows": report.rows, "seconds": round(report.seconds, 2),
           "import_seconds": round(report.import_seconds, 2), "relationships_per_s": round(rate)}
    if as_json:
        print_json(doc)
    else:
        print(f"bulk-loaded {data.name} in {report.seconds:.1f} s (importer {report.import_seconds:.1f} s; "
              f"{rate:,.0f} relationships/s end to end): " + ", ".join(f"{v:,} {k}" for k, v in report.rows.items()))


@contextlib.contextmanager
def dataset_lock(graph, dataset: str, note_after_s: float = 2.0) -> Iterator[None]:
    """Hold the ingest lock of ``dataset`` (``cypher/ingest/lock_dataset.cypher``) for the ``with`` block.

    Two ingests of one dataset at once would otherwise both see it empty and both take the first-ingest CREATE
    path for its edges (every edge twice), or fail on a uniqueness constraint half-way. The second one waits
    here (saying so on stderr) and then finds the dataset written, so its run is a MERGE no-op or completes it.
    The lock lives in an open transaction that is never committed: a killed process releases it with its
    connection.
    """
    from ..db.graph import translate_errors

    note = threading.Timer(note_after_s, info, [f"waiting for another kgp ingest of {dataset} to finish ..."])
    session = graph.driver.session(database=graph.info.database)
    try:
        with translate_errors(f"{graph.info.uri} [ingest/lock_dataset]"):
            tx = session.begin_transaction(metadata={"app": "kgplatform", "query": "ingest/lock_dataset"})
            note.start()
            try:
                tx.run(graph.query("ingest/lock_dataset").text, key=f"kgp-lock:ingest:{dataset}").consume()
            finally:
                note.cancel()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a lost connection has released it already
                tx.rollback()
    finally:
        with contextlib.suppress(Exception):
            session.close()


@app.command("movielens-100k")
def movielens(
    ctx: typer.Context,
    path: Optional[Path] = PathOpt,
    name: Optional[str] = NameOpt,
    dbpedia: Optional[Path] = typer.Option(None, "--dbpedia", help="DBpedia folder (map.csv, enriched.csv); default <path>/dbpedia."),
    no_kg: bool = typer.Option(False, "--no-kg", help="Skip the Freebase and DBpedia knowledge graphs."),
    session_gap: Optional[int] = typer.Option(None, "--session-gap", help="Seconds of inactivity that start a new session (default KGP_SESSION_GAP_S=1800)."),
    as_json: bool = JsonOpt,
    bulk: bool = BulkOpt,
) -> None:
    """MovieLens-100k (RecBole atomic files) with the Freebase KG and DBpedia abstracts/triples."""
    s = settings(ctx)
    run_ingest(ctx, "movielens-100k", path, name, as_json, bulk, dbpedia_dir=dbpedia, with_kg=not no_kg,
               session_gap_s=session_gap if session_gap is not None else s.session_gap_s)


@app.command("amazon-beauty")
def amazon_beauty(ctx: typer.Context, path: Optional[Path] = PathOpt, name: Optional[str] = NameOpt,
                  as_json: bool = JsonOpt, bulk: bool = BulkOpt) -> None:
    """Amazon Beauty 5-core (S3Rec user_sequence.txt + item_titles.txt)."""
    run_ingest(ctx, "amazon-beauty", path, name, as_json, bulk)


@app.command("amazon-games")
def amazon_games(ctx: typer.Context, path: Optional[Path] = PathOpt, name: Optional[str] = NameOpt,
                 as_json: bool = JsonOpt, bulk: bool = BulkOpt) -> None:
    """Amazon Video Games (LLMRank Games-6k: *.item + *.test.inter)."""
    run_ingest(ctx, "amazon-games", path, name, as_json, bulk)


@app.command("generic")
def generic(
    ctx: typer.Context,
    path: Path = typer.Option(..., "--path", help="Folder with items.csv, interactions.csv [, users.csv, facts.csv]."),
    name: str = typer.Option(..., "--name", help="Dataset name in the graph."),
    session_gap: Optional[int] = typer.Option(None, "--session-gap", help="Session gap in seconds (with timestamps)."),
    as_json: bool = JsonOpt,
    bulk: bool = BulkOpt,
) -> None:
    """Your own data as CSV files (format in the README)."""
    s = settings(ctx)
    run_ingest(ctx, "generic", path, name, as_json, bulk,
               session_gap_s=session_gap if session_gap is not None else s.session_gap_s)
