"""Cold start without retraining (real Neo4j, real sentence-transformers, real PyG): a new item never seen in
training is absent from every top-k before ``cold-start`` and recommendable after it, its score decomposes like
any other, and the bad inputs give one-line errors."""
from __future__ import annotations

import json

import pytest

from kgplatform.coldstart import cold_start_items, cold_start_users, load_state, new_items, new_users
from kgplatform.embed import embed_graph
from kgplatform.errors import ConfigError, NotFound
from kgplatform.explain import score_explanation
from kgplatform.graph.export import export_recdata
from kgplatform.graph.writeback import write_back
from kgplatform.train import TrainConfig, Trainer

from ..cli.test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py
from ..conftest import TINY_NAME

COLD = f"{TINY_NAME}:cold-1"
NEW_USER = f"{TINY_NAME}:new-user-1"


def _intents(graph) -> None:
    """Intents (no vectors: the encoder makes them) on the first 40 items, some shared."""
    with graph.driver.session(database=graph.info.database) as s:
        s.run("""
            MATCH (i:Item {dataset: $d}) WITH i ORDER BY i.id LIMIT 40
            WITH collect(i) AS items
            UNWIND range(0, size(items) - 1) AS k
            WITH items[k] AS i, k
            MERGE (n:Intent {key: 'theme ' + toString(k % 7)}) ON CREATE SET n.name = 'theme ' + toString(k % 7)
            MERGE (i)-[:SATISFIES {kind: 'exact'}]->(n)
            """, d=TINY_NAME).consume()


def _add_cold_item(graph, like: str) -> None:
    """A new item shaped like ``like``: its facts, its intents plus one intent nobody had, its text (new id)."""
    with graph.driver.session(database=graph.info.database) as s:
        s.run("""
            MATCH (src:Item {id: $like})
            CREATE (n:Item {id: $id, dataset: $d, rawId: 'cold-1', title: src.title + ' (extended cut)',
                            text: src.text})
            WITH src, n
            OPTIONAL MATCH (src)-[f:FACT]->(e)
            FOREACH (_ IN CASE WHEN f IS NULL THEN [] ELSE [1] END |
                     CREATE (n)-[:FACT {predicate: f.predicate, source: f.source}]->(e))
            WITH DISTINCT src, n
            OPTIONAL MATCH (src)-[sat:SATISFIES]->(t:Intent)
            FOREACH (_ IN CASE WHEN sat IS NULL THEN [] ELSE [1] END | CREATE (n)-[:SATISFIES {kind: sat.kind}]->(t))
            WITH DISTINCT n
            MERGE (x:Intent {key: 'extended edition night'}) ON CREATE SET x.name = 'extended edition night'
            CREATE (n)-[:SATISFIES {kind: 'exact'}]->(x)
            """, like=like, id=COLD, d=TINY_NAME).consume()


@pytest.fixture
def ikgr_run(tiny_graph, settings, tmp_path):
    _intents(tiny_graph)
    embed_graph(tiny_graph, settings, TINY_NAME, progress=False)
    data, _ = export_recdata(tiny_graph, TINY_NAME, progress=False)
    cfg = TrainConfig(epochs=1, eval_every=1, device="cpu", cache_dir=tmp_path / "cands", run_dir=tmp_path / "run")
    result = Trainer(cfg, log=lambda m: None).fit("ikgr", data, {"lam": 0.3, "tune_lambda": False,
                                                                  "embedding_dim": 16})
    write_back(tiny_graph, result, data, k=10)
    return tiny_graph, data, result


def _recommended(graph, item: str) -> int:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("MATCH ()-[r:RECOMMENDED]->(:Item {id: $i}) RETURN count(r) AS n", i=item).single()["n"]


def _per_user_counts(graph) -> set[int]:
    with graph.driver.session(database=graph.info.database) as s:
        return {r["n"] for r in s.run("MATCH (u:User)-[r:RECOMMENDED]->() RETURN u.id AS u, count(r) AS n")}


def test_a_cold_item_is_recommendable_after_cold_start_and_absent_before(ikgr_run, settings, neo4j_server,
                                                                          tmp_path):
    graph, data, result = ikgr_run
    # the most recommended item of the run: its twin should reach some top-10s too
    with graph.driver.session(database=graph.info.database) as s:
        like = s.run("MATCH ()-[r:RECOMMENDED]->(i:Item) RETURN i.id AS id, count(r) AS n ORDER BY n DESC, id "
                     "LIMIT 1").single()["id"]
    _add_cold_item(graph, like)
    run, state = load_state(graph, TINY_NAME)
    assert run == result.run_id and new_items(graph, TINY_NAME, state, run) == [COLD]
    assert _recommended(graph, COLD) == 0
    rep = cold_start_items(graph, settings, TINY_NAME, extract_intents=False)
    assert rep.items == [COLD] and rep.new_intents == 1 and rep.users_scored == data.num_users
    assert rep.recommendations_added > 0 and _recommended(graph, COLD) == rep.recommendations_added
    assert _per_user_counts(graph) == {10}  # every user still has exactly k, re-ranked
    assert rep.per_item[COLD]["users_reached"] == rep.recommendations_added
    assert "extended edition night" in rep.per_item[COLD]["intents"]
    # the stored score is the run's eq. 9-11 of the inductive vectors: explain decomposes it to the same value
    with graph.driver.session(database=graph.info.database) as s:
        u, score, rank = s.run("MATCH (u:User)-[r:RECOMMENDED]->(:Item {id: $i}) RETURN u.id, r.score, r.rank "
                               "LIMIT 1", i=COLD).single()
    se = score_explanation(graph, u, COLD, dataset=TINY_NAME, model="ikgr")
    assert se.recommended_rank == rank and se.score == pytest.approx(score, abs=1e-5)
    assert any(t["name"] == "intent match" for t in se.terms)
    # ranks stay 1..k in score order for that user
    with graph.driver.session(database=graph.info.database) as s:
        rows = s.run("MATCH (:User {id: $u})-[r:RECOMMENDED]->() RETURN r.rank AS rank, r.score AS score "
                     "ORDER BY rank", u=u).data()
    assert [r["rank"] for r in rows] == list(range(1, 11))
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    # a second cold start finds nothing new (the item is now in the run) only if asked by id: it is refused
    with pytest.raises(ConfigError, match="training data"):
        cold_start_items(graph, settings, TINY_NAME, [data.item_ids[0]], extract_intents=False)
    with pytest.raises(NotFound):
        cold_start_items(graph, settings, TINY_NAME, ["no-such-item"], extract_intents=False)
    assert new_items(graph, TINY_NAME, state, run) == []
    # a new user with five interactions (copied from a trained user) gets a top-k without retraining
    donor = data.user_ids[next(u for u in range(data.num_users) if data.sequence(u).numel() >= 8)]
    with graph.driver.session(database=graph.info.database) as s:
        s.run("""MATCH (d:User {id: $donor})-[r:INTERACTED]->(i:Item) WITH d, r, i ORDER BY r.pos LIMIT 5
                 MERGE (n:User {id: $id}) ON CREATE SET n.dataset = $ds, n.rawId = 'new-user-1'
                 CREATE (n)-[:INTERACTED {pos: r.pos, ts: r.ts, rating: r.rating}]->(i)""",
              donor=donor, id=NEW_USER, ds=TINY_NAME).consume()
        taken = {r["id"] for r in s.run("MATCH (:User {id: $id})-[:INTERACTED]->(i) RETURN i.id AS id", id=NEW_USER)}
    assert new_users(graph, TINY_NAME, state, run) == [NEW_USER] and len(taken) == 5
    urep = cold_start_users(graph, settings, TINY_NAME, k=10)
    assert urep.users == [NEW_USER] and urep.recommendations == 10
    assert urep.per_user[NEW_USER]["known_items"] == 5 and urep.per_user[NEW_USER]["intents"] is not None
    from kgplatform.explain import recommend

    run_id, recs = recommend(graph, NEW_USER, k=10, model="ikgr")
    assert run_id == run and len(recs) == 10 and not ({r.item for r in recs} & taken)
    se = score_explanation(graph, NEW_USER, recs[0].item, dataset=TINY_NAME, model="ikgr")
    assert se.score == pytest.approx(recs[0].score, abs=1e-5) and se.recommended_rank == 1
    assert new_users(graph, TINY_NAME, state, run) == []
    with pytest.raises(ConfigError, match="training data"):
        cold_start_users(graph, settings, TINY_NAME, [data.user_ids[0]])
    # the CLI: nothing new is left; bad options and an unknown dataset give one-line errors
    r = kgp(neo4j_server, tmp_path, "cold-start", "-d", TINY_NAME, "--no-extract", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["items"] == [] and doc["run"] == result.run_id
    r = kgp(neo4j_server, tmp_path, "cold-start", "-d", TINY_NAME, "--users", "new", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["users"] == []
    for args, msg in ((["cold-start", "-d", TINY_NAME, "--items", ",", "--no-extract"], "--items is empty"),
                      (["cold-start", "-d", TINY_NAME, "--users", ","], "--users is empty"),
                      (["cold-start", "-d", TINY_NAME, "--users", "new", "--items", "x"], "not both"),
                      (["cold-start", "-d", TINY_NAME, "--items", data.item_ids[0], "--no-extract"], "training data"),
                      (["cold-start", "-d", TINY_NAME, "--evaluate", "--fraction", "2"], "--fraction"),
                      (["cold-start", "-d", "nope", "--no-extract"], "no ikgr run")):
        bad = kgp(neo4j_server, tmp_path, *args)
        assert bad.returncode != 0 and bad.stderr.strip().startswith("Error:") and msg in bad.stderr, bad.stderr
