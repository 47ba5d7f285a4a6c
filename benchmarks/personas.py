"""Persona benchmark: HDGI seconds per epoch and peak memory per dataset, against a dense metapath adjacency
measured in the same process, and anonymous-session latency (p50/p95, warm) against the bare backbone.

Run from the repository root (CPU; progress on stderr, one JSON document on stdout)::

    python benchmarks/personas.py --datasets movielens-100k,amazon-beauty,amazon-games --epochs 20
    python benchmarks/personas.py --datasets amazon-beauty --sessions 500 --json

* HDGI: full-batch DGI epochs (forward + backward + step) on each dataset's *training view*; features are the
  item text vectors when the graph has them (``KGP_BENCH_NEO4J_URI`` pointing at an embedded database), else
  random 384-d vectors (cost does not depend on their values). Reference: the same encoder with the ``UIU``
  metapath materialised as a dense ``U × U`` matrix (what the reference code does) — only where it fits in
  ``--dense-limit-gb``; the ratio sparse/dense is printed.
* Sessions: an untrained persona-sasrec (latency does not depend on the weights) built on the dataset;
  ``SessionRecommender.recommend`` for random sessions of 1–20 training items, warm, one thread; reference: the
  same request with the persona switched off (backbone + re-ranking only), in the same process.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import data_dir  # noqa: E402
from kgplatform.data import RecData, leave_one_out, training_view  # noqa: E402
from kgplatform.data.contract import train_pairs  # noqa: E402
from kgplatform.nn.hdgi import HDGI, MetaPath, build_metapaths  # noqa: E402


def load(name: str) -> RecData:
    from kgplatform.data.devdata import load_recbole_atomic, load_user_sequences

    root = data_dir()
    if name == "movielens-100k":
        return load_recbole_atomic(root / "movielens-100k" / "ml-100k", "movielens-100k")
    if name == "amazon-beauty":
        return load_user_sequences(root / "amazon-beauty" / "user_sequence.txt", "amazon-beauty")
    if name == "amazon-games":
        users, items, seqs = [], {}, []
        with open(root / "amazon-games" / "Games-6k.test.inter", encoding="utf-8") as f:
            next(f)
            for line in f:
                u, hist, tgt = line.rstrip("\n").split("\t")
                seq = [items.setdefault(i, len(items)) for i in hist.split() + [tgt]]
                users.append(u)
                seqs.append(seq)
        return RecData.from_sequences(name, users, list(items), seqs)
    raise SystemExit(f"unknown dataset {name}")


def with_text(data: RecData, dim: int = 384) -> RecData:
    import dataclasses

    if data.item_text_emb is not None:
        return data
    g = torch.Generator().manual_seed(0)
    return dataclasses.replace(data, item_text_emb=torch.randn(data.num_items, dim, generator=g))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_epochs(model: HDGI, x: torch.Tensor, epochs: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    opt.zero_grad()
    model.loss(x).backward()  # warm-up
    opt.step()
    t0 = time.perf_counter()
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        model.loss(x).backward()
        opt.step()
    return (time.perf_counter() - t0) / epochs


def bench_hdgi(data: RecData, epochs: int, dense_limit_gb: float) -> dict:
    from kgplatform.models.personas import item_entity_pairs, item_intent_pairs, user_text_features

    train = training_view(data, leave_one_out(data))
    x = user_text_features(train)
    users, items = train_pairs(train)
    r0 = rss_mb()
    paths = build_metapaths(train.num_users, train.num_items, (users, items),
                            item_entity=item_entity_pairs(train, 0.1), item_intent=item_intent_pairs(train))
    model = HDGI(x.shape[1], 64, paths, 128, generator=torch.Generator().manual_seed(0))
    sparse = time_epochs(model, x, epochs)
    out = {"users": train.num_users, "items": train.num_items, "train_interactions": int(items.numel()),
           "metapaths": [p.name for p in paths], "sparse_s_per_epoch": sparse, "peak_rss_mb": rss_mb(),
           "rss_growth_mb": rss_mb() - r0}
    # reference: UIU (the one metapath every dataset has) as a dense U x U matrix, sparse vs dense on UIU alone
    uiu_sparse = HDGI(x.shape[1], 64, paths[:1], 128, generator=torch.Generator().manual_seed(0))
    out["uiu_sparse_s_per_epoch"] = time_epochs(uiu_sparse, x, epochs)
    need_gb = train.num_users ** 2 * 4 / 1e9
    out["dense_uiu_gb"] = need_gb
    if need_gb <= dense_limit_gb:
        a_ui = paths[0].first.to_dense()
        adj = a_ui @ paths[0].tail[0].to_dense()  # [U, U], what a dense HDGI holds per metapath
        del a_ui

        class Dense(MetaPath):
            def aggregate(self, x):  # noqa: D102
                return adj @ x

            def item_messages(self, x):  # noqa: D102
                return x

        ref = HDGI(x.shape[1], 64, [Dense("UIU-dense", paths[0].first, ())], 128,
                   generator=torch.Generator().manual_seed(0))
        out["uiu_dense_s_per_epoch"] = time_epochs(ref, x, epochs)
        out["sparse_over_dense"] = out["uiu_sparse_s_per_epoch"] / out["uiu_dense_s_per_epoch"]
        out["peak_rss_mb_after_dense"] = rss_mb()
    else:
        out["uiu_dense_s_per_epoch"] = None
        out["note"] = f"dense UIU needs {need_gb:.1f} GB > --dense-limit-gb {dense_limit_gb}: not run"
    return out


def bench_sessions(data: RecData, n: int) -> dict:
    from kgplatform.models import build_model
    from kgplatform.session import SessionRecommender

    split = leave_one_out(data)
    cfg = {"hdgi_epochs": 5, "num_personas": 8}
    res = {}
    g = torch.Generator().manual_seed(1)
    train = training_view(data, split)
    sessions = []
    for _ in range(n):
        u = int(torch.randint(train.num_users, (1,), generator=g))
        s = train.sequence(u)
        if s.numel() == 0:
            continue
        k = int(torch.randint(1, min(20, s.numel()) + 1, (1,), generator=g))
        sessions.append([data.item_ids[i] for i in s[-k:].tolist()])
    for name, opts in (("persona", cfg), ("backbone_only", cfg | {"persona": "none"})):
        model = build_model("persona-sasrec", data, split, opts)
        model.set_eval_param("rerank_mu", 0.2)
        svc = SessionRecommender("bench", data.dataset, model, data.item_ids)
        for s in sessions[:20]:
            svc.recommend(s, k=10)  # warm
        lat = []
        for s in sessions:
            t0 = time.perf_counter()
            svc.recommend(s, k=10)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        res[name] = {"p50_ms": statistics.median(lat), "p95_ms": lat[int(0.95 * (len(lat) - 1))], "n": len(lat)}
    res["p95_ratio_persona_over_backbone"] = res["persona"]["p95_ms"] / res["backbone_only"]["p95_ms"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="movielens-100k,amazon-beauty,amazon-games")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--dense-limit-gb", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {"threads": a.threads, "epochs": a.epochs, "datasets": {}}
    for name in [d for d in a.datasets.split(",") if d]:
        data = with_text(load(name))
        print(f"[bench] {name}: {data.num_users} users, {data.num_items} items", file=sys.stderr)
        h = bench_hdgi(data, a.epochs, a.dense_limit_gb)
        print(f"[bench] {name} HDGI {h['sparse_s_per_epoch']:.3f} s/epoch ({'+'.join(h['metapaths'])}), "
              f"UIU sparse {h['uiu_sparse_s_per_epoch']:.3f} vs dense "
              + (f"{h['uiu_dense_s_per_epoch']:.3f} s/epoch = {h['sparse_over_dense']:.2f}x"
                 if h["uiu_dense_s_per_epoch"] else "not run") + f"; peak RSS {h['peak_rss_mb']:.0f} MB",
              file=sys.stderr)
        s = bench_sessions(data, a.sessions) if a.sessions else None
        if s:
            print(f"[bench] {name} session p50 {s['persona']['p50_ms']:.1f} ms, p95 {s['persona']['p95_ms']:.1f} ms "
                  f"(backbone only p95 {s['backbone_only']['p95_ms']:.1f} ms, ratio "
                  f"{s['p95_ratio_persona_over_backbone']:.2f}x)", file=sys.stderr)
        out["datasets"][name] = {"hdgi": h, "sessions": s}
    if a.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
