"""Ingest benchmark: wall time and relationships/s for MovieLens-100k (both KGs) and Amazon Beauty.

Usage: .venv/bin/python benchmarks/ingest.py [--datasets movielens-100k amazon-beauty] [--batch-size 5000]
Prints parse time (validation), write time, relationships/s, and a second (idempotent) run's time.
"""
from __future__ import annotations

import argparse
import time

from _common import bench_graph, data_dir, peak_rss_mb

from kgplatform.ingest import LOADERS, load_dataset, write_dataset
from kgplatform.stats import graph_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["movielens-100k", "amazon-beauty"])
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args()
    with bench_graph() as graph:
        print(f"{'dataset':<16}{'parse s':>9}{'write s':>9}{'rels':>10}{'rels/s':>10}{'KG rels/s':>11}{'rerun s':>9}")
        for kind in args.datasets:
            t0 = time.perf_counter()
            data = load_dataset(kind, data_dir() / LOADERS[kind][2])
            parse_s = time.perf_counter() - t0
            rep = write_dataset(graph, data, batch_size=args.batch_size, progress=False)
            core = rep.rows.get("interactions", 0) + rep.rows.get("facts", 0)
            t1 = time.perf_counter()
            write_dataset(graph, data, batch_size=args.batch_size, progress=False)
            rerun = time.perf_counter() - t1
            print(f"{kind:<16}{parse_s:>9.1f}{rep.seconds:>9.1f}{rep.relationships:>10,}"
                  f"{rep.relationships / rep.seconds:>10,.0f}{core / rep.seconds:>11,.0f}{rerun:>9.1f}")
        print("graph:", graph_stats(graph))
    print(f"peak RSS (python): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
