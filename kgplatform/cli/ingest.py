"""``kgp ingest``: load a dataset into the graph (validate everything first, then batched MERGE)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import info, open_graph, print_json, settings

app = typer.Typer(help="Load a dataset into the graph: validated first, then batched idempotent MERGE.",
                  no_args_is_help=True)

PathOpt = typer.Option(None, "--path", help="Dataset folder (default: <KGP_DATA_DIR>/<dataset>).")
NameOpt = typer.Option(None, "--name", help="Dataset name in the graph (ids become '<name>:<raw id>').")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")


def run_ingest(ctx: typer.Context, kind: str, path: Optional[Path], name: Optional[str], as_json: bool,
               **load_kw) -> None:
    from ..ingest import LOADERS, load_dataset, write_dataset

    s = settings(ctx)
    if s.batch_size < 1:
        raise ConfigError(f"KGP_BATCH_SIZE must be >= 1, got {s.batch_size}")
    folder = path or (s.data_dir / LOADERS[kind][2])
    info(f"reading {kind} from {folder}")
    data = load_dataset(kind, folder, name=name, **load_kw)  # validates every row before any write
    info("validated: " + ", ".join(f"{v:,} {k}" for k, v in data.summary().items()))
    with open_graph(ctx) as graph:
        report = write_dataset(graph, data, batch_size=s.batch_size)
    rate = report.relationships / report.seconds if report.seconds else 0.0
    doc = {"dataset": report.dataset, "rows": report.rows, "seconds": round(report.seconds, 2),
           "relationships_per_s": round(rate)}
    if as_json:
        print_json(doc)
    else:
        print(f"ingested {report.dataset} in {report.seconds:.1f} s ({rate:,.0f} relationships/s): "
              + ", ".join(f"{v:,} {k}" for k, v in report.rows.items()))


@app.command("movielens-100k")
def movielens(
    ctx: typer.Context,
    path: Optional[Path] = PathOpt,
    name: Optional[str] = NameOpt,
    dbpedia: Optional[Path] = typer.Option(None, "--dbpedia", help="DBpedia folder (map.csv, enriched.csv); default <path>/dbpedia."),
    no_kg: bool = typer.Option(False, "--no-kg", help="Skip the Freebase and DBpedia knowledge graphs."),
    session_gap: Optional[int] = typer.Option(None, "--session-gap", help="Seconds of inactivity that start a new session (default KGP_SESSION_GAP_S=1800)."),
    as_json: bool = JsonOpt,
) -> None:
    """MovieLens-100k (RecBole atomic files) with the Freebase KG and DBpedia abstracts/triples."""
    s = settings(ctx)
    run_ingest(ctx, "movielens-100k", path, name, as_json, dbpedia_dir=dbpedia, with_kg=not no_kg,
               session_gap_s=session_gap if session_gap is not None else s.session_gap_s)


@app.command("amazon-beauty")
def amazon_beauty(ctx: typer.Context, path: Optional[Path] = PathOpt, name: Optional[str] = NameOpt,
                  as_json: bool = JsonOpt) -> None:
    """Amazon Beauty 5-core (S3Rec user_sequence.txt + item_titles.txt)."""
    run_ingest(ctx, "amazon-beauty", path, name, as_json)


@app.command("amazon-games")
def amazon_games(ctx: typer.Context, path: Optional[Path] = PathOpt, name: Optional[str] = NameOpt,
                 as_json: bool = JsonOpt) -> None:
    """Amazon Video Games (LLMRank Games-6k: *.item + *.test.inter)."""
    run_ingest(ctx, "amazon-games", path, name, as_json)


@app.command("generic")
def generic(
    ctx: typer.Context,
    path: Path = typer.Option(..., "--path", help="Folder with items.csv, interactions.csv [, users.csv, facts.csv]."),
    name: str = typer.Option(..., "--name", help="Dataset name in the graph."),
    session_gap: Optional[int] = typer.Option(None, "--session-gap", help="Session gap in seconds (with timestamps)."),
    as_json: bool = JsonOpt,
) -> None:
    """Your own data as CSV files (format in the README)."""
    s = settings(ctx)
    run_ingest(ctx, "generic", path, name, as_json,
               session_gap_s=session_gap if session_gap is not None else s.session_gap_s)
