"""The serving path (issue 13): ``recommend`` in one read, the rewritten explanation queries against exhaustive
answers computed here, parallel ``explain`` against sequential, and :meth:`Graph.serve` (real Neo4j, the tiny
MovieLens graph)."""
from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from kgplatform.errors import NotFound, QueryError
from kgplatform.explain import (EXPLANATIONS, explain, explain_items, explain_with_score, recommend, render_path,
                                score_explanation)
from kgplatform.graph.export import export_recdata
from kgplatform.graph.writeback import write_back
from kgplatform.train import TrainConfig, Trainer

from ..conftest import TINY_NAME


def _edges(graph) -> Counter:
    """(user, item) → number of INTERACTED edges."""
    with graph.driver.session(database=graph.info.database) as s:
        return Counter((r["u"], r["i"]) for r in s.run(
            "MATCH (u:User)-[:INTERACTED]->(i:Item) RETURN u.id AS u, i.id AS i"))


def _overlaps(m: Counter, user: str, item: str) -> list[tuple[str, int]]:
    """similar_users by definition: per user v <> u who took the item, the number of paths u -> x <- v; a v
    whose only shared item is the recommended one through its only edge to it has no path u -> x <- v -> item
    with distinct edges to show, and is left out (as before issue 13)."""
    by_user: dict[str, Counter] = defaultdict(Counter)
    for (u, i), n in m.items():
        by_user[u][i] += n
    mine = by_user[user]
    out = []
    for v, theirs in by_user.items():
        if v != user and theirs[item]:
            o = sum(n * theirs[x] for x, n in mine.items() if theirs[x])
            shown = any(theirs[x] for x in mine if x != item) or (mine[item] and theirs[item] >= 2)
            if o and shown:
                out.append((v, o))
    return sorted(out, key=lambda t: (-t[1], t[0]))


def _sides(m: Counter, user: str, item: str) -> str:
    """Which side similar_users counts from (the cheaper, as the query decides)."""
    deg_item, deg_user = Counter(), Counter()
    for (u, i), n in m.items():
        deg_item[i] += n
        deg_user[u] += n
    via_user = sum(deg_item[i] * n for (u, i), n in m.items() if u == user)
    via_item = sum(deg_user[u] * n for (u, i), n in m.items() if i == item)
    return "user" if via_user <= via_item else "item"


def _check_similar_users(graph, pairs, m) -> set[str]:
    sides = set()
    for u, i in pairs:
        got = [(r["similarUser"], r["overlap"]) for r in graph.serve("explain/similar_users", user=u, item=i,
                                                                       limit=100)]
        assert got == _overlaps(m, u, i)[:100], (u, i)
        for r in graph.serve("explain/similar_users", user=u, item=i, limit=3):
            nodes = [n["id"] for n in r["p"].nodes]
            assert nodes[0] == u and nodes[2] == r["similarUser"] and nodes[3] == i
            assert m[(u, nodes[1])] and m[(nodes[2], nodes[1])] and m[(nodes[2], i)]
        sides.add(_sides(m, u, i))
    return sides


def test_similar_users_counts_the_overlap_from_either_side(tiny_graph):
    """Known answer from the edges themselves, for pairs counted from the user's side and from the item's; then
    again after some users took some items twice (several edges per pair: the path count, as before)."""
    graph = tiny_graph
    m = _edges(graph)
    rng = random.Random(3)
    users = sorted({u for u, _ in m})
    items = sorted({i for _, i in m})
    pairs = [(rng.choice(users), rng.choice(items)) for _ in range(25)]
    # a heavy user with a rarely taken item (item side) and a light user with a popular item (user side)
    deg_u, deg_i = Counter(u for u, _ in m), Counter(i for _, i in m)
    pairs += [(deg_u.most_common(1)[0][0], min(items, key=lambda i: (deg_i[i] < 2, deg_i[i]))),
              (min(users, key=lambda u: deg_u[u]), deg_i.most_common(1)[0][0])]
    assert _check_similar_users(graph, pairs, m) == {"user", "item"}
    # repeated interactions: a second edge (another pos) for a few (user, item) pairs
    again = rng.sample(sorted(m), 300)
    with graph.driver.session(database=graph.info.database) as s:
        s.run("UNWIND $rows AS row MATCH (u:User {id: row[0]}), (i:Item {id: row[1]}) "
              "CREATE (u)-[:INTERACTED {pos: 100000}]->(i)", rows=[list(p) for p in again]).consume()
    m = _edges(graph)
    assert max(m.values()) == 2
    pairs = [(u, i) for u, i in again[:10]] + pairs
    assert _check_similar_users(graph, pairs, m) == {"user", "item"}


def _kg_exhaustive(graph, user: str, item: str) -> list[tuple[int, int]]:
    """Every KG path's ranking key (entity degree, 0 when both facts have the same predicate) in order: the
    query before issue 13, which expanded every path before sorting."""
    with graph.driver.session(database=graph.info.database) as s:
        rows = s.run("""
            MATCH (u:User {id: $user}), (i:Item {id: $item})
            MATCH (u)-[:INTERACTED]->(liked:Item)-[f1:FACT]-(e)-[f2:FACT]-(i)
            WHERE liked <> i AND e <> u
            RETURN COUNT { (e)-[:FACT]-() } AS degree, CASE WHEN f1.predicate = f2.predicate THEN 0 ELSE 1 END AS same
            """, user=user, item=item).data()
    return sorted((r["degree"], r["same"]) for r in rows)


def test_kg_paths_finds_the_most_specific_entities_first(tiny_graph):
    graph = tiny_graph
    m = _edges(graph)
    rng = random.Random(5)
    users = sorted({u for u, _ in m})
    items = sorted({i for _, i in m})
    found = 0
    for u, i in [(rng.choice(users), rng.choice(items)) for _ in range(30)]:
        want = _kg_exhaustive(graph, u, i)
        for limit in (1, 3, 100):
            rows = graph.serve("explain/kg_paths", user=u, item=i, limit=limit)
            got = [(r["degree"], 0 if r["viaPredicate"] == r["itemPredicate"] else 1) for r in rows]
            assert got == want[:limit], (u, i, limit)
            for r in rows:
                nodes = [n.get("id") or n.get("uri") for n in r["p"].nodes]
                assert nodes[0] == u and nodes[-1] == i and m[(u, nodes[1])] and nodes[1] != i
        found += bool(want)
    assert found >= 5


@pytest.fixture
def bpr_run(tiny_graph, tmp_path):
    data, _ = export_recdata(tiny_graph, TINY_NAME, progress=False)
    cfg = TrainConfig(epochs=1, eval_every=1, device="cpu", cache_dir=tmp_path / "cands")
    result = Trainer(cfg, log=lambda m: None).fit("bpr", data)
    write_back(tiny_graph, result, data, k=5)
    return tiny_graph, data, result


def test_recommend_in_one_read_equals_the_three_reads(bpr_run):
    graph, data, result = bpr_run
    for u in range(0, data.num_users, 23):
        uid = data.user_ids[u]
        run = graph.read_one("recommend/latest_run", dataset=TINY_NAME, model=None)
        want = [(r["item"], r["rank"], r["score"]) for r in graph.read("recommend/top_k", user=uid, run=run["id"], k=4)]
        got_run, recs = recommend(graph, uid, k=4)
        assert got_run == run["id"] == result.run_id
        assert [(r.item, r.rank, r.score) for r in recs] == want and len(want) == 4
        raw = uid.split(":", 1)[1]
        assert recommend(graph, raw, k=4, dataset=TINY_NAME, model="bpr") == (got_run, recs)
    with pytest.raises(NotFound, match="no training run with recommendations for dataset 'ml-tiny' and model 'kgcn'"
                       .replace("ml-tiny", TINY_NAME)):
        recommend(graph, data.user_ids[0], model="kgcn")
    with pytest.raises(NotFound, match="unknown user 'nobody'"):
        recommend(graph, "nobody")
    with pytest.raises(NotFound, match="unknown user"):
        recommend(graph, data.user_ids[0], dataset="another")


def test_recommend_without_a_run(tiny_graph):
    with pytest.raises(NotFound, match="no training run with recommendations"):
        recommend(tiny_graph, f"{TINY_NAME}:1")


def _flat(exps):
    return [(e.kind, e.query, e.text, e.details) for e in exps]


def test_parallel_explain_equals_sequential(bpr_run):
    graph, data, result = bpr_run
    run = {"id": result.run_id, "model": "bpr"}
    seen: set[str] = set()
    for u in range(0, data.num_users, 41):
        uid = data.user_ids[u]
        _, recs = recommend(graph, uid, k=5)
        items = [r.item for r in recs]
        many = explain_items(graph, uid, items, dataset=TINY_NAME, run=run, limit=2)
        for item, (se, exps) in zip(items, many):
            seq = explain(graph, uid, item, limit=2, parallel=False)
            assert _flat(exps) == _flat(explain(graph, uid, item, limit=2)) == _flat(seq)
            se2, exps2 = explain_with_score(graph, uid, item, dataset=TINY_NAME, limit=2, parallel=False)
            assert se == se2 == score_explanation(graph, uid, item, dataset=TINY_NAME)
            assert _flat(exps2) == _flat(seq)
            assert se.recommended_rank is not None and se.score == pytest.approx(se.recommended_score, abs=1e-5)
            # the serving path sends paths as light maps: the same rows and text as the whole paths
            full = []
            for kind, name in EXPLANATIONS.items():
                for row in graph.read_records(name, user=uid, item=item, limit=2):
                    full.append((kind, name, render_path(row["p"]), {k: v for k, v in row.items() if k != "p"}))
            assert [(k, q, t.split("  — ")[0], d) for k, q, t, d in _flat(exps)] == full
            seen.update(k for k, *_ in full)
    assert {"knowledge graph", "similar users"} <= seen


def test_serve_reads_only_and_recovers_after_an_error(tiny_graph):
    graph = tiny_graph
    with pytest.raises(QueryError, match="declared 'write'"):
        graph.serve("ingest/merge_users", rows=[])
    with pytest.raises(QueryError, match="missing parameters: limit"):
        graph.serve("explain/user_history", user="x")
    with pytest.raises(QueryError):  # a server-side error: LIMIT must be a non-negative integer
        graph.serve("explain/user_history", user=f"{TINY_NAME}:1", limit=-1)
    assert len(graph.serve("explain/user_history", user=f"{TINY_NAME}:1", limit=2)) == 2
