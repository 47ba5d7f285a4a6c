"""Export benchmark: ``export_recdata`` (columnar key-range queries, parallel reads) against the row-by-row
exporter it replaced, back to back on the same graph, with and without the driver's Rust extension.

Usage:
  .venv/bin/python benchmarks/export.py [--datasets movielens-100k amazon-games] [--repeat 3] [--no-ingest]

A throwaway local Neo4j is started and the datasets are ingested first (or ``KGP_BENCH_NEO4J_URI`` points at a
database that already holds them: ``--no-ingest``). For each dataset, after one warm-up export, every repetition
runs the reference (``_export_recdata_rowwise``), the new path with one reader and with two, in rotating order,
and checks that all three give the same ``RecData.checksum()``. A child process then repeats the measurement
with the Rust extension blocked (``neo4j._rust`` unimportable): the pure-Python driver. Printed: median seconds,
edges/s, ratio to the reference of the same process, ratio Rust / pure Python, the load average, and this
process's CPU seconds (less sensitive to other jobs than wall time).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

if "--no-rust" in sys.argv:  # before the driver is imported anywhere
    sys.modules["neo4j._rust"] = None  # type: ignore[assignment]

from _common import bench_graph, data_dir, peak_rss_mb  # noqa: E402

from kgplatform.db.graph import ConnectionInfo, Graph  # noqa: E402
from kgplatform.graph.export import _export_recdata_rowwise, export_recdata  # noqa: E402
from kgplatform.ingest import LOADERS, load_dataset, write_dataset  # noqa: E402

PATHS = {
    "reference": lambda g, d: _export_recdata_rowwise(g, d, progress=False),
    "new, 1 reader": lambda g, d: export_recdata(g, d, workers=1, progress=False),
    "new, 2 readers": lambda g, d: export_recdata(g, d, workers=2, progress=False),
}


def rust_in_use() -> bool:
    from neo4j._codec.packstream import v1

    return getattr(v1, "_rust_unpack", None) is not None


def measure(graph: Graph, datasets: list[str], repeat: int) -> dict:
    out: dict = {"rust": rust_in_use(), "datasets": {}}
    for ds in datasets:
        export_recdata(graph, ds, progress=False)  # warm-up (server caches, JIT)
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        cpu: dict[str, list[float]] = {p: [] for p in PATHS}
        edges = 0
        checksums = set()
        names = list(PATHS)
        for r in range(repeat):
            for p in names[r % len(names):] + names[:r % len(names)]:
                c0, t0 = time.process_time(), time.perf_counter()
                data, rep = PATHS[p](graph, ds)
                times[p].append(time.perf_counter() - t0)
                cpu[p].append(time.process_time() - c0)
                edges = rep.edges
                checksums.add(data.checksum())
        out["datasets"][ds] = {"edges": edges, "same": len(checksums) == 1, "load": os.getloadavg()[0],
                               "seconds": {p: statistics.median(v) for p, v in times.items()},
                               "cpu": {p: statistics.median(v) for p, v in cpu.items()},
                               "rss_mb": peak_rss_mb()}
    return out


def report(res: dict, other: dict | None) -> None:
    label = "Rust extension" if res["rust"] else "pure-Python driver"
    print(f"\n{label}: median of the repetitions; ratio = reference seconds / path seconds (same process)")
    versus = "Rust gain" if res["rust"] else "Rust loss"
    print(f"{'dataset':<16}{'path':<16}{'seconds':>9}{'edges/s':>11}{'ratio':>8}{'client cpu':>11}"
          f"{versus:>11}  load  same RecData")
    for ds, d in res["datasets"].items():
        ref = d["seconds"]["reference"]
        for p, s in d["seconds"].items():
            vs = ""
            if other and ds in other["datasets"]:
                o = other["datasets"][ds]["seconds"][p]
                vs = f"{o / s:.2f}x"
            print(f"{ds:<16}{p:<16}{s:>9.2f}{d['edges'] / s:>11,.0f}{ref / s:>7.2f}x{d['cpu'][p]:>11.2f}{vs:>11}"
                  f"  {d['load']:.1f}  {d['same']}")
        print(f"{ds:<16}peak RSS of this process so far: {d['rss_mb']:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["movielens-100k", "amazon-games"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ingest", action="store_true", help="the database already holds the datasets")
    ap.add_argument("--no-rust", action="store_true", help=argparse.SUPPRESS)  # the child's mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # measure on the parent's database, print JSON
        graph = Graph.open(ConnectionInfo(os.environ["KGP_BENCH_CHILD_URI"], os.environ.get("KGP_BENCH_NEO4J_USER"),
                                          os.environ.get("KGP_BENCH_NEO4J_PASSWORD")))
        try:
            print(json.dumps(measure(graph, args.datasets, args.repeat)))
        finally:
            graph.close()
        return
    with bench_graph() as graph:
        if not args.no_ingest:
            for kind in args.datasets:
                t = time.perf_counter()
                rep = write_dataset(graph, load_dataset(kind, data_dir() / LOADERS[kind][2]), progress=False)
                print(f"ingested {kind}: {rep.relationships:,} relationships in {time.perf_counter() - t:.1f} s",
                      file=sys.stderr)
        res = measure(graph, args.datasets, args.repeat)
        env = {**os.environ, "KGP_BENCH_CHILD_URI": graph.info.uri}
        child = subprocess.run([sys.executable, __file__, "--child", "--no-rust", "--repeat", str(args.repeat),
                                "--datasets", *args.datasets], env=env, capture_output=True, text=True)
        other = json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else None
        if other is None:
            print("the pure-Python child failed:\n" + child.stderr[-2000:], file=sys.stderr)
    report(res, other)
    if other:
        report(other, res)
        print("\nthe shipped baseline (reference exporter, pure-Python driver) against the new path with Rust:")
        for ds, d in res["datasets"].items():
            base = other["datasets"][ds]["seconds"]["reference"]
            for p in ("new, 1 reader", "new, 2 readers"):
                s = d["seconds"][p]
                print(f"{ds:<16}{p:<16}{d['edges'] / s:>11,.0f} edges/s vs {d['edges'] / base:>9,.0f} edges/s: "
                      f"{base / s:.1f}x")


if __name__ == "__main__":
    main()
