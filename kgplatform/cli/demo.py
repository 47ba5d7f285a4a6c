"""``kgp demo``: the main job end to end on the embedded default (local Neo4j + MovieLens-100k)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .common import info, open_graph, settings

BROWSER_QUERIES = [
    ("A user, the movies they rated, and those movies' directors",
     "MATCH p = (u:User {id: 'movielens-100k:1'})-[:INTERACTED]->(m:Item)-[:FACT {predicate: 'director'}]->(d:Entity)\n"
     "RETURN p LIMIT 25"),
    ("Toy Story's neighbourhood in both knowledge graphs",
     "MATCH p = (m:Item {id: 'movielens-100k:1'})-[:FACT]-(e) RETURN p LIMIT 50"),
    ("Two movies sharing a DBpedia category",
     "MATCH p = (a:Item {id: 'movielens-100k:1'})-[:FACT {predicate: 'subject'}]->(c:Entity)<-[:FACT {predicate: 'subject'}]-(b:Item)\n"
     "RETURN p LIMIT 25"),
    ("A user's sessions",
     "MATCH p = (u:User {id: 'movielens-100k:1'})-[:HAS_SESSION]->(s:Session)-[:CONTAINS]->(m:Item) RETURN p LIMIT 40"),
]


def run_demo(ctx: typer.Context, path: Optional[Path]) -> None:
    from ..ingest import load_dataset, write_dataset
    from ..stats import graph_stats

    s = settings(ctx)
    t0 = time.perf_counter()
    folder = path or s.data_dir / "movielens-100k"
    info(f"[1/2] ingest MovieLens-100k with Freebase + DBpedia from {folder}")
    data = load_dataset("movielens-100k", folder, session_gap_s=s.session_gap_s)
    with open_graph(ctx) as graph:
        rep = write_dataset(graph, data, batch_size=s.batch_size)
        print(f"ingested {rep.dataset}: {rep.relationships:,} relationships in {rep.seconds:.1f} s")
        info("[2/2] graph statistics")
        st = graph_stats(graph)
        print("nodes:         " + ", ".join(f"{k} {v:,}" for k, v in st["nodes"].items()))
        print("relationships: " + ", ".join(f"{k} {v:,}" for k, v in st["relationships"].items()))
        browser = None
        if graph.info.source == "local":
            from ..db.connect import local_server

            srv = local_server(s).status()
            browser = srv.http_url if srv else None
    print()
    if browser:
        print(f"Neo4j Browser: {browser}  (connect to {graph.info.uri}"
              + (", user neo4j, password in " + str(s.neo4j_home / "password") if s.auth else "") + ")")
    print("Queries to paste into the Browser:")
    for title, q in BROWSER_QUERIES:
        print(f"\n// {title}\n{q}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(ctx: typer.Context,
             path: Optional[Path] = typer.Option(None, "--path", help="MovieLens-100k folder (default <KGP_DATA_DIR>/movielens-100k).")) -> None:
        """Start the local Neo4j, migrate, ingest MovieLens-100k with both KGs, print stats and Browser queries."""
        run_demo(ctx, path)
