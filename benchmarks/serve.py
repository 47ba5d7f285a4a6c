"""Serving benchmark: ``recommend`` and ``explain`` latency (p50/p95/p99), the current code against the code
before issue 13 measured in the same process, on the same graph, back to back.

Usage::

    nice -n 5 .venv/bin/python benchmarks/serve.py [--dataset movielens-100k] [--users 300] [--explain 100]

Uses a throwaway local Neo4j (or KGP_BENCH_NEO4J_URI), ingests the dataset with its KG, trains BPR-MF for two
epochs and writes its top-10 back (materialised ``RECOMMENDED`` edges and the vectors the score explanation
decomposes), then adds stand-ins for what needs an LLM or an encoder (``benchmarks/_serve_graph.py``: genre
intents, round-robin personas, random text vectors), so every kind of explanation has work to do.

**Reference.** The code path of commit ``--reference`` (default ``1cf2558``, the last commit before issue 13),
kept callable here: its Cypher text read with ``git show`` into a registry of its own, run the way that commit
ran it — ``recommend`` as three reads (user, newest run, top-k), ``explain`` as the score's two reads then one
read per kind, one after the other, each through ``execute_query`` (a managed transaction per read). The same
database serves both, so the reference also has the new ``run_dataset`` index: the ratios are those of the
queries and the client code, not of the index (on this graph the runs are a handful of nodes either way).
Each user/pair is timed reference → new or new → reference, alternating, so load changes hit both alike,
and the outputs are compared: the same items and ranks for ``recommend``; per kind the same ranking keys
(ties may be broken differently; the path shown for a tie is arbitrary in both).

``explain, per kind`` times each kind's query alone (reference: its old text, whole paths, ``execute_query``;
new: its text wrapped in ``serve_paths.fragment``, light paths, ``Graph.serve``). ``explain (all)`` is what
``kgp explain`` does after resolving the ids: the score decomposition plus every
kind of explanation (limit ``--limit``). ``floor`` is the cheapest possible read (one user by id, one row)
timed in the same loop as ``recommend``: on a loaded machine the p99 of any round trip is mostly waiting for a
CPU, and this line says how much. ``sequential`` is the new queries one after the other (no thread
pool), to show the queries' share of the gain. ``top-k`` is ``kgp recommend --explain``'s work for a user's
whole top-10 (reference: item by item; new: :func:`kgplatform.explain.explain_items`).
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from _common import ROOT, bench_graph, peak_rss_mb
from _serve_graph import build

from kgplatform import schema
from kgplatform.db.graph import Graph
from kgplatform.db.queries import QueryRegistry
from kgplatform.explain import (EXPLANATIONS, explain, explain_items, explain_with_score, recommend, render_path,
                                score_explanation, serving_query)

REFERENCE = "1cf2558"
#: what the reference ran
REFERENCE_QUERIES = [*EXPLANATIONS.values(), "explain/score_inputs", "recommend/user_exists",
                     "recommend/latest_run", "recommend/top_k"]
#: the explanation kinds the reference commit had (:func:`reference_registry` drops the later ones)
REFERENCE_KINDS = dict(EXPLANATIONS)
#: per kind, what its query orders by: what must agree even where ties were broken differently
SORT_KEYS = {"shared intents": lambda d: (d["viaKind"], d["itemKind"]),
             "user intents": lambda d: (d["userKind"], d["itemKind"]),
             "knowledge graph": lambda d: (d["degree"], d["viaPredicate"] == d["itemPredicate"]),
             "similar users": lambda d: (d["overlap"], d["similarUser"]),
             "persona": lambda d: (d["persona"], d["peers"], d["personaSize"]),
             "similar content": lambda d: (round(d["similarity"], 6),)}


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def reference_registry(rev: str) -> QueryRegistry:
    """A registry of every query file at commit ``rev`` that the reference runs. Explanation kinds added after
    ``rev`` (their query file is not there) are dropped from :data:`REFERENCE_KINDS`: the reference path cannot
    run them, and the new path's output is compared on the kinds both have."""
    root = Path(tempfile.mkdtemp(prefix="kgp-ref-cypher-"))
    for name in REFERENCE_QUERIES:
        res = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:cypher/{name}.cypher"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            if name not in EXPLANATIONS.values():
                raise SystemExit(f"reference {rev} has no cypher/{name}.cypher: {res.stderr.strip()}")
            REFERENCE_KINDS.pop(next(k for k, v in EXPLANATIONS.items() if v == name), None)
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.cypher").write_text(res.stdout, encoding="utf-8")
    return QueryRegistry(root)


# ----------------------------------------------------------------------------------- the reference path
def recommend_reference(ref: Graph, user: str, *, k: int = 10) -> list[tuple[str, int]]:
    """``recommend`` before issue 13: the user, then the newest run, then the top-k (three reads)."""
    row = ref.read_one("recommend/user_exists", user=user)
    run = ref.read_one("recommend/latest_run", dataset=row["dataset"], model=None)
    return [(r["item"], r["rank"]) for r in ref.read("recommend/top_k", user=row["id"], run=run["id"], k=k)]


def kind_reference(ref: Graph, kind: str, user: str, item: str, limit: int) -> list[tuple[str, str, dict]]:
    rows = ref.read_records(EXPLANATIONS[kind], user=user, item=item, limit=limit)
    return [(kind, render_path(r["p"]), {k: v for k, v in r.items() if k != "p"}) for r in rows]


def explain_reference(ref: Graph, user: str, item: str, dataset: str, *, limit: int) -> list[tuple[str, str, dict]]:
    """``kgp explain`` before issue 13 (after resolving ids): the newest run and the score's inputs, then one
    read per kind, one after the other. (The score's arithmetic is the same code in both paths.)"""
    run = ref.read_one("recommend/latest_run", dataset=dataset, model=None)
    ref.read_one("explain/score_inputs", user=user, item=item, run=run["id"],
                 prop=schema.embedding_property(run["model"]))
    out = []
    for kind in REFERENCE_KINDS:
        out.extend(kind_reference(ref, kind, user, item, limit))
    return out


# ----------------------------------------------------------------------------------------- measuring
def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def both(n: int, old, new) -> tuple[float, object, float, object]:
    """Time ``old`` and ``new`` back to back, reference first on even ``n``."""
    if n % 2 == 0:
        to, oo = timed(old)
        tn, on = timed(new)
    else:
        tn, on = timed(new)
        to, oo = timed(old)
    return to, oo, tn, on


def keys(rows) -> dict[str, list]:
    by: dict[str, list] = {}
    for kind, _, d in rows:
        by.setdefault(kind, []).append(SORT_KEYS[kind](d))
    return by


def line(label: str, old: list[float], new: list[float]) -> str:
    q = [(pct(new, p), pct(old, p)) for p in (0.5, 0.95, 0.99)]
    return (f"{label:30s}" + "".join(f"  p{int(p * 100)} {n:7.1f} ms (ref {o:7.1f}, {o / n:4.1f}x)"
                                     for p, (n, o) in zip((0.5, 0.95, 0.99), q)))


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(graph: Graph, dataset: str, args) -> None:
    ref = Graph(graph.driver, graph.info, registry=reference_registry(args.reference))
    with graph.driver.session(database=graph.info.database) as s:
        users = sorted(r["id"] for r in s.run("MATCH (u:User {dataset: $d}) RETURN u.id AS id", d=dataset))
    users = random.Random(0).sample(users, min(args.users, len(users)))
    print(f"\n{load()}")

    # recommend ---------------------------------------------------------------------------------------
    for u in users[:50]:  # warm-up: plans cached and compiled, sessions and pool filled
        recommend_reference(ref, u)
        recommend(graph, u, k=10)
        graph.serve("recommend/user_exists", user=u)
    old, new, same, floor = [], [], 0, []
    for n, u in enumerate(users):
        to, oo, tn, (_, recs) = both(n, lambda: recommend_reference(ref, u), lambda: recommend(graph, u, k=10))
        old.append(to)
        new.append(tn)
        same += oo == [(r.item, r.rank) for r in recs]
        floor.append(timed(lambda: graph.serve("recommend/user_exists", user=u))[0])
    print(line(f"recommend k=10 ({len(users)} users)", old, new) + f"   [{load()}]")
    print(f"  outputs: {same} of {len(users)} users get the reference's items and ranks")
    print(f"  floor: one trivial read (user by id, Graph.serve) in the same loop: p50 {pct(floor, 0.5):.1f} ms, "
          f"p95 {pct(floor, 0.95):.1f} ms, p99 {pct(floor, 0.99):.1f} ms")

    # explain -----------------------------------------------------------------------------------------
    pairs = []
    for u in users[: args.explain]:
        run, recs = recommend(graph, u, k=10)
        pairs.append((u, recs[0].item, [r.item for r in recs]))
    run = {"id": run, "model": ref.read_one("recommend/latest_run", dataset=dataset, model=None)["model"]}
    for u, i, _ in pairs[:10]:
        explain_reference(ref, u, i, dataset, limit=args.limit)
        explain_with_score(graph, u, i, dataset=dataset, limit=args.limit)
    per_kind = {k: ([], []) for k in REFERENCE_KINDS}
    for n, (u, i, _) in enumerate(pairs):
        for kind, name in REFERENCE_KINDS.items():
            to, _, tn, _ = both(n, lambda: kind_reference(ref, kind, u, i, args.limit),
                                lambda: graph.serve(serving_query(graph, name), user=u, item=i, limit=args.limit))
            per_kind[kind][0].append(to)
            per_kind[kind][1].append(tn)
    later = [k for k in EXPLANATIONS if k not in REFERENCE_KINDS]
    print(f"explain, per kind ({len(pairs)} pairs: each user's top item, limit {args.limit})"
          + (f"; kinds added after the reference, run by the new path only: {', '.join(later)}" if later else "")
          + ":")
    for kind, (o, nw) in per_kind.items():
        print("  " + line(kind, o, nw))
    old, new, seq, mismatch = [], [], [], []
    for n, (u, i, _) in enumerate(pairs):
        to, oo, tn, (se, exps) = both(n, lambda: explain_reference(ref, u, i, dataset, limit=args.limit),
                                      lambda: explain_with_score(graph, u, i, dataset=dataset, limit=args.limit))
        ts, _ = timed(lambda: (score_explanation(graph, u, i, dataset=dataset),
                               explain(graph, u, i, limit=args.limit, parallel=False)))
        old.append(to)
        new.append(tn)
        seq.append(ts)
        if keys(oo) != keys([(e.kind, e.text, e.details) for e in exps if e.kind in REFERENCE_KINDS]):
            mismatch.append((u, i))
    print(line(f"explain (all) ({len(pairs)} pairs)", old, new) + f"   [{load()}]")
    print(line("  same, sequential", old, seq))
    print(f"  outputs: {len(pairs) - len(mismatch)} of {len(pairs)} pairs give the reference's ranking keys, "
          f"kind by kind" + (f"; differ: {mismatch[:5]}" if mismatch else ""))
    old, new = [], []
    for n, (u, _, items) in enumerate(pairs[: args.topk_users]):
        to, _, tn, _ = both(n, lambda: [explain_reference(ref, u, i, dataset, limit=2) for i in items],
                            lambda: explain_items(graph, u, items, dataset=dataset, run=run, limit=2))
        old.append(to)
        new.append(tn)
    print(line(f"recommend --explain top-10 ({len(old)} users)", old, new) + f"   [{load()}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="movielens-100k", choices=["movielens-100k", "amazon-beauty", "amazon-games"])
    ap.add_argument("--model", default="bpr", help="model trained and written back")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--users", type=int, default=300, help="users timed for recommend")
    ap.add_argument("--explain", type=int, default=100, help="users whose top item is explained")
    ap.add_argument("--topk-users", type=int, default=20, help="users whose whole top-10 is explained")
    ap.add_argument("--limit", type=int, default=3, help="paths per kind of explanation (kgp explain's default)")
    ap.add_argument("--reference", default=REFERENCE, help="commit whose code path is the reference")
    ap.add_argument("--no-build", action="store_true",
                    help="measure the graph KGP_BENCH_NEO4J_URI already holds (built by an earlier run)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with bench_graph() as graph:
        if not args.no_build:
            build(graph, args.dataset, model=args.model, epochs=args.epochs)
        measure(graph, args.dataset, args)
    print(f"peak RSS (python): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
