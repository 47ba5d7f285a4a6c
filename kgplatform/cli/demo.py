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


TINY = "movielens-100k-tiny"


def run_demo(ctx: typer.Context, path: Optional[Path], extract_limit: int, epochs: int) -> None:
    from ..ingest import load_dataset, write_dataset
    from ..stats import graph_stats

    s = settings(ctx)
    t0 = time.perf_counter()
    folder = path or s.data_dir / "movielens-100k"
    info(f"[1/6] ingest MovieLens-100k with Freebase + DBpedia from {folder}")
    data = load_dataset("movielens-100k", folder, session_gap_s=s.session_gap_s)
    with open_graph(ctx) as graph:
        rep = write_dataset(graph, data, batch_size=s.batch_size)
        print(f"ingested {rep.dataset}: {rep.relationships:,} relationships in {rep.seconds:.1f} s")
        info("[2/6] graph statistics")
        st = graph_stats(graph)
        print("nodes:         " + ", ".join(f"{k} {v:,}" for k, v in st["nodes"].items()))
        print("relationships: " + ", ".join(f"{k} {v:,}" for k, v in st["relationships"].items()))
        browser = None
        if graph.info.source == "local":
            from ..db.connect import local_server

            srv = local_server(s).status()
            browser = srv.http_url if srv else None
        tiny_user = _intents_and_model(graph, s, folder, extract_limit, epochs)
    print()
    if browser:
        print(f"Neo4j Browser: {browser}  (connect to {graph.info.uri}"
              + (", user neo4j, password in " + str(s.neo4j_home / "password") if s.auth else "") + ")")
    print("Queries to paste into the Browser:")
    print(f":param item => '{TINY}:1'")
    print(f":param user => '{tiny_user}'")
    queries = BROWSER_QUERIES + [
        ("An item with its exact and related intents (tiny subset; uses :param item)",
         "MATCH p = (i:Item {id: $item})-[:SATISFIES]->(n:Intent) RETURN p"),
        ("The personas with their labels and typical entities",
         "MATCH (p:Persona) RETURN p.label, p.size, p.topEntities[..3], p.topItems[..3] ORDER BY p.size DESC"),
        ("The user's persona and peers who took the same movies (uses :param user)",
         "MATCH p = (u:User {id: $user})-[:HAS_PERSONA]->(:Persona)<-[:HAS_PERSONA]-(:User)-[:INTERACTED]->(i:Item)"
         "<-[:INTERACTED]-(u) RETURN p LIMIT 20"),
        ("IKGR recommendations written back, with intents shared with the user's movies (uses :param user)",
         "MATCH p = (u:User {id: $user})-[:RECOMMENDED]->(i:Item)-[:SATISFIES]->(n:Intent)"
         "<-[:SATISFIES]-(:Item)<-[:INTERACTED]-(u) RETURN p LIMIT 30"),
    ]
    for title, q in queries:
        print(f"\n// {title}\n{q}")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")


def _intents_and_model(graph, s, folder: Path, extract_limit: int, epochs: int) -> str:
    """Steps 3–5 on the tiny subset: embed + two-round intent extraction, IKGR training, top-10 explained."""
    from .. import explain as ex
    from ..agent import extract, intent_stats
    from ..embed import embed_graph
    from ..graph.export import export_recdata
    from ..graph.writeback import write_back
    from ..ingest import load_dataset, write_dataset
    from ..train import TrainConfig, Trainer

    tiny_dir = folder.parent / TINY
    info(f"[3/6] tiny subset ({tiny_dir}): ingest, embed, extract intents for its first {extract_limit} items")
    data = load_dataset("movielens-100k", tiny_dir, name=TINY, dbpedia_dir=folder / "dbpedia",
                        session_gap_s=s.session_gap_s)
    write_dataset(graph, data, batch_size=s.batch_size)
    embed_graph(graph, s, dataset=TINY)
    for r in (1, 2):
        summary = extract(graph, s, round=r, dataset=TINY, limit=extract_limit, items_only=True)
        for line in summary.lines():
            print(line)
    st = intent_stats(graph, dataset=TINY)
    print("intent layer: " + ", ".join(f"{k} {v}" for k, v in st.items()))
    info(f"[4/6] train IKGR on the tiny subset ({epochs} epochs), write embeddings and top-10 back")
    recdata, _ = export_recdata(graph, TINY)
    result = Trainer(TrainConfig(epochs=epochs, eval_every=1, device=s.device, cache_dir=s.home / "candidates"),
                     log=info).fit("ikgr", recdata)
    m = result.metrics["test"]
    print("IKGR (tiny): " + "; ".join(f"{p} NDCG@10 {v['NDCG@10']:.4f} HR@10 {v['HR@10']:.4f}" for p, v in m.items()))
    write_back(graph, result, recdata, k=10)
    info(f"[5/6] personas: HDGI over the tiny training graph, persona-aware SASRec ({epochs} epochs), LLM labels")
    _personas(graph, s, recdata, epochs)
    info("[6/6] a user's top-10 with explanations")
    user = f"{TINY}:1"
    run_id, recs = ex.recommend(graph, user, k=10, model="ikgr")
    print(f"\ntop-10 for {user} (IKGR run {run_id}):")
    said: set[str] = set()  # notes on the score (e.g. λ = 0) are printed once
    for rec in recs:
        print(f"{rec.rank:>3}. {rec.title}  score {rec.score:.3f}")
        se = ex.score_explanation(graph, user, rec.item, dataset=TINY, run={"id": run_id, "model": "ikgr"})
        if se is not None and se.terms:
            print(f"      {ex.summarize_terms(se.terms)}")
        if se is not None and se.note and se.note not in said:
            said.add(se.note)
            print(f"      ({se.note})")
        exps = ex.explain(graph, user, rec.item, limit=1)
        if not exps:
            print("      no explanation found in the graph")
        for e in exps:
            print(f"      {e.kind}: {e.text}")
    _anonymous_session(graph)
    return user


def _personas(graph, s, recdata, epochs: int) -> None:
    from ..experiment.personas import persona_run
    from ..graph.personas import write_personas
    from ..graph.writeback import write_back
    from ..train import TrainConfig, Trainer

    result = Trainer(TrainConfig(epochs=epochs, eval_every=1, device=s.device, cache_dir=s.home / "candidates",
                                 run_dir=s.resolved_runs_dir / "demo"), log=info).fit("persona-sasrec", recdata)
    m = result.metrics["test"]
    print("persona-sasrec (tiny): " + "; ".join(f"{p} NDCG@10 {v['NDCG@10']:.4f} HR@10 {v['HR@10']:.4f}"
                                               for p, v in m.items()))
    write_back(graph, result, recdata, k=10)
    run = persona_run(result.model.personas, recdata, graph, s, run_id=result.run_id, model=result.model_name,
                      log=info, record_id=f"{result.run_id}-personas")
    write_personas(graph, run)
    print(f"{len(run.personas)} personas (K by silhouette), labelled by {run.personas[0].label_model or 'the data'}:")
    for p in sorted(run.personas, key=lambda p: -p.size):
        src = "" if p.label_source == "llm" else f" [{p.label_source}]"
        print(f"  {p.label!r}{src}: {p.size} users; typical {'; '.join(p.top_entities[:2] or p.top_items[:2])}")


def _anonymous_session(graph) -> None:
    from ..session import SessionRecommender, describe_persona

    svc = SessionRecommender.load(graph, TINY)
    session = [f"{TINY}:{i}" for i in (1, 50, 100)]
    res = svc.recommend(session, k=5)
    p = describe_persona(graph, res)
    print(f"\nan anonymous session {[svc.titles.get(i, i) for i in session]} (no user id): persona "
          f"{(p or {}).get('label', res.persona)!r}, top-5:")
    for r in res.items:
        print(f"{r.rank:>3}. {r.title or r.item}  (closest session item: "
              f"{svc.titles.get(r.closest_session_item, r.closest_session_item)})")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(ctx: typer.Context,
             path: Optional[Path] = typer.Option(None, "--path", help="MovieLens-100k folder (default <KGP_DATA_DIR>/movielens-100k); the tiny subset is read from its sibling movielens-100k-tiny."),
             extract_limit: int = typer.Option(30, help="Tiny-subset items to run the LLM over (about 1-2 s each per round)."),
             epochs: int = typer.Option(10, help="IKGR training epochs on the tiny subset.")) -> None:
        """The main job end to end: local Neo4j, MovieLens-100k + both KGs, intents, IKGR, personas, explained top-10."""
        run_demo(ctx, path, extract_limit, epochs)
