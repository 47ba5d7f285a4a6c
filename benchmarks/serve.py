"""Export and serving benchmark: Neo4j → RecData/HeteroData edges/s, write-back time, and ``recommend`` latency
(p50/p99 over random users, materialised top-k read through a read transaction).

Usage: .venv/bin/python benchmarks/serve.py [--dataset amazon-beauty] [--users 500]
Uses a throwaway local Neo4j (or KGP_BENCH_NEO4J_URI), ingests the dataset, trains POP and writes it back.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

from _common import bench_graph, data_dir, peak_rss_mb

from kgplatform.explain import explain, recommend
from kgplatform.graph.export import export_recdata
from kgplatform.graph.writeback import write_back
from kgplatform.ingest import LOADERS, load_dataset, write_dataset
from kgplatform.data import serving_graph
from kgplatform.train import TrainConfig, Trainer


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--explain", type=int, default=50, help="users whose top item is also explained")
    args = ap.parse_args()
    with bench_graph() as graph:
        data = load_dataset(args.dataset, data_dir() / LOADERS[args.dataset][2])
        write_dataset(graph, data, progress=False)
        rec, rep = export_recdata(graph, args.dataset, progress=False)
        print(f"export {args.dataset}: {rep.edges:,} edges in {rep.seconds:.1f} s = {rep.edges_per_s:,.0f} edges/s")
        t = time.perf_counter()
        hetero = serving_graph(rec)
        print(f"to HeteroData: {time.perf_counter() - t:.2f} s ({hetero.num_edges:,} edges)")
        result = Trainer(TrainConfig(device="cpu"), log=lambda m: None).fit("pop", rec)
        wb = write_back(graph, result, rec, k=10)
        print(f"write-back: {wb.recommendations:,} RECOMMENDED edges in {wb.seconds:.1f} s")
        rng = random.Random(0)
        users = rng.sample(rec.user_ids, min(args.users, rec.num_users))
        recommend(graph, users[0], k=10)  # warm-up
        lat = []
        for u in users:
            t = time.perf_counter()
            recommend(graph, u, k=10)
            lat.append((time.perf_counter() - t) * 1000)
        print(f"recommend (k=10, {len(lat)} users): p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 0.99):.1f} ms")
        lat = []
        for u in users[: args.explain]:
            _, recs = recommend(graph, u, k=1)
            t = time.perf_counter()
            explain(graph, u, recs[0].item, limit=2)
            lat.append((time.perf_counter() - t) * 1000)
        print(f"explain (4 queries, {len(lat)} users): p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 0.99):.1f} ms")
    print(f"peak RSS (python): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
