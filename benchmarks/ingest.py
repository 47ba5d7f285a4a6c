"""Ingest benchmark: the transactional writer against the previous one, back to back in one process, and the bulk
first load (``--bulk``) against the transactional path.

Usage:
  .venv/bin/python benchmarks/ingest.py [--datasets movielens-100k amazon-beauty] [--batch-size 5000] [--repeat 2]
  .venv/bin/python benchmarks/ingest.py --bulk [--datasets amazon-games amazon-beauty movielens-100k]

Transactional: for each dataset and repetition, an empty database gets the reference writer (the row-per-dict
``UNWIND … MATCH … MERGE/CREATE`` one transaction per batch that this writer replaced, kept below verbatim) and
then the new writer, alternating which goes first; both write the same validated rows. Printed per run: write
seconds, relationships/s, the ratio reference / new, the re-run (idempotent: counts must not change), the Neo4j
server's and this process's CPU seconds (less sensitive to other jobs than wall time), and the load average.

Bulk: all the datasets together into an empty database with ``neo4j-admin database import full`` (stop, import,
start, migrations, Dataset nodes) against the transactional writer on the same rows.

Every figure is printed with its reference from the same run: the machine is shared, wall times are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import bench_graph, data_dir, peak_rss_mb

from kgplatform.db.graph import ConnectionInfo, Graph
from kgplatform.db.migrations import migrate
from kgplatform.ingest import LOADERS, ParsedDataset, load_dataset, write_dataset
from kgplatform.stats import graph_stats, wipe


# -- the reference: the previous writer, verbatim (its .cypher files are kept) --------------------------------
_FACT_QUERIES = {("item", "entity"): "facts_item_entity", ("entity", "item"): "facts_entity_item",
                 ("entity", "entity"): "facts_entity_entity", ("item", "item"): "facts_item_item"}


def reference_write(graph: Graph, data: ParsedDataset, batch_size: int = 5000) -> float:
    """The writer before this change (``UNWIND $rows`` of dicts, MATCH per endpoint per row); seconds."""
    t0 = time.perf_counter()
    fact_groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data.facts:
        fact_groups.setdefault((f.head[0], f.tail[0]), []).append(
            {"head": f.head[1], "predicate": f.predicate, "tail": f.tail[1], "source": f.source})
    present = graph.read_one("ingest/dataset_edges_present", dataset=data.name) or {}

    def verb(kind: str) -> str:
        return "merge" if present.get(kind, True) else "create"

    steps = [("ingest/merge_users", data.users), ("ingest/merge_items", data.items),
             ("ingest/merge_entities", data.entities),
             (f"ingest/{verb('interactions')}_interactions", data.interactions),
             ("ingest/merge_sessions", data.sessions),
             (f"ingest/{verb('session_items')}_session_items", data.session_items)]
    for key, rows in sorted(fact_groups.items()):
        v = "merge" if key == ("entity", "entity") else verb("facts")
        steps.append((f"ingest/{v}_{_FACT_QUERIES[key]}", rows))
    for query, rows in steps:
        if rows:
            graph.write_rows(query, rows, batch_size=batch_size)
    graph.write("ingest/merge_dataset", name=data.name, kind=data.kind, path=data.path,
                counts={"users": len(data.users), "items": len(data.items),
                        "interactions": len(data.interactions), "sessions": len(data.sessions),
                        "entities": len(data.entities), "facts": len(data.facts)})
    return time.perf_counter() - t0


# -- CPU accounting --------------------------------------------------------------------------------------------
def server_pid(graph: Graph) -> int | None:
    """The pid of the process listening on the graph's Bolt port (this machine only), else None."""
    try:
        port = int(graph.info.uri.rsplit(":", 1)[1].split("/")[0])
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                        inodes.add(cols[9])
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return int(pid)
            except OSError:
                continue
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


class Meter:
    """Wall seconds, server CPU seconds and this process's CPU seconds of a block."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def __enter__(self) -> "Meter":
        self.t, self.s, self.c = time.perf_counter(), cpu_seconds(self.pid), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t
        self.server = cpu_seconds(self.pid) - self.s
        self.client = time.process_time() - self.c


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def reset(graph: Graph) -> None:
    wipe(graph)
    migrate(graph)


# -- transactional -----------------------------------------------------------------------------------------------
def transactional(args: argparse.Namespace) -> None:
    with bench_graph() as graph:
        pid = server_pid(graph)
        warm = load_dataset("movielens-100k", data_dir() / "movielens-100k-tiny",
                            dbpedia_dir=data_dir() / "movielens-100k" / "dbpedia", name="warm-up")
        for fn in (lambda: reference_write(graph, warm), lambda: write_dataset(graph, warm, progress=False)):
            reset(graph)
            fn()  # JIT and query caches warm for both paths
        print(f"{'dataset':<16}{'run':>4}{'path':>11}{'write s':>9}{'rels':>10}{'rels/s':>10}{'ratio':>7}"
              f"{'server cpu':>11}{'client cpu':>11}{'rerun s':>9}  load")
        for kind in args.datasets:
            with Meter(None) as m:
                data = load_dataset(kind, data_dir() / LOADERS[kind][2])
            print(f"{kind:<16} parse+validate {m.wall:.2f} s (this process, CPU {m.client:.2f} s), load {load()}")
            rels = len(data.interactions) + len(data.sessions) + len(data.session_items) + len(data.facts)
            ratios = []
            for r in range(args.repeat):
                order = ("reference", "new") if r % 2 == 0 else ("new", "reference")
                meters: dict[str, Meter] = {}
                counts: dict[str, Any] = {}
                for path in order:
                    reset(graph)
                    with Meter(pid) as m:
                        if path == "reference":
                            reference_write(graph, data, args.batch_size)
                        else:
                            write_dataset(graph, data, batch_size=args.batch_size, workers=args.workers,
                                          progress=False)
                    meters[path] = m
                    counts[path] = graph_stats(graph)
                    meters[path].load = load()  # type: ignore[attr-defined]
                with Meter(pid) as rerun:
                    write_dataset(graph, data, batch_size=args.batch_size, workers=args.workers, progress=False)
                same = graph_stats(graph) == counts["new"] == counts["reference"]
                ratio = meters["reference"].wall / meters["new"].wall
                ratios.append(ratio)
                for path in ("reference", "new"):
                    m = meters[path]
                    print(f"{kind:<16}{r + 1:>4}{path:>11}{m.wall:>9.2f}{rels:>10,}{rels / m.wall:>10,.0f}"
                          f"{(f'{ratio:.2f}x' if path == 'new' else '1.00x'):>7}{m.server:>11.2f}{m.client:>11.2f}"
                          f"{(f'{rerun.wall:.2f}' if path == 'new' else '-'):>9}  {m.load}")  # type: ignore[attr-defined]
                if not same:
                    print(f"  !! counts differ: reference {counts['reference']}, new {counts['new']}, "
                          f"after the re-run {graph_stats(graph)}")
            print(f"{kind:<16} new / reference speed-up: median {statistics.median(ratios):.2f}x over {len(ratios)} runs")
    print(f"peak RSS (python): {peak_rss_mb():.0f} MB")


# -- bulk ------------------------------------------------------------------------------------------------------------
def bulk(args: argparse.Namespace) -> None:
    from kgplatform.db.server import LocalServer
    from kgplatform.ingest.bulk import bulk_load

    datasets = [load_dataset(kind, data_dir() / LOADERS[kind][2]) for kind in args.datasets]
    rels = sum(len(d.interactions) + len(d.sessions) + len(d.session_items) + len(d.facts) for d in datasets)
    with tempfile.TemporaryDirectory(prefix="kgp-bench-bulk-") as home:
        server = LocalServer(Path(home), bolt_port=0, http_port=0, auth=False, heap="2g", pagecache="1g")
        server.start()
        try:
            def connect() -> Graph:
                s = server.status()
                assert s is not None
                return Graph.open(ConnectionInfo(s.uri, None, None, source="local"))

            graph = connect()
            migrate(graph)
            pid = server_pid(graph)
            with Meter(pid) as tx:
                for d in datasets:
                    write_dataset(graph, d, batch_size=args.batch_size, workers=args.workers, progress=False)
            tx_counts = graph_stats(graph)
            tx_load = load()
            reset(graph)
            graph.close()
            report = bulk_load(server, datasets, connect=connect, log=lambda m: None)
            graph = connect()
            bulk_counts = graph_stats(graph)
            graph.close()
        finally:
            server.stop()
    names = "+".join(args.datasets)
    print(f"bulk first load of {names}: {rels:,} relationships")
    print(f"  transactional (reference): {tx.wall:7.2f} s  {rels / tx.wall:>10,.0f} rel/s   load {tx_load}")
    print(f"  bulk, importer only:       {report.import_seconds:7.2f} s  {rels / report.import_seconds:>10,.0f} rel/s"
          f"   {tx.wall / report.import_seconds:.1f}x")
    print(f"  bulk, CSV + importer:      {report.csv_seconds + report.import_seconds:7.2f} s  "
          f"{rels / (report.csv_seconds + report.import_seconds):>10,.0f} rel/s"
          f"   {tx.wall / (report.csv_seconds + report.import_seconds):.1f}x")
    print(f"  bulk, end to end:          {report.seconds:7.2f} s  {rels / report.seconds:>10,.0f} rel/s"
          f"   {tx.wall / report.seconds:.1f}x  (CSV {report.csv_seconds:.1f} s, stop {report.stop_seconds:.1f} s, "
          f"import {report.import_seconds:.1f} s, start {report.start_seconds:.1f} s, migrations and Dataset nodes "
          f"{report.finish_seconds:.1f} s)   load {load()}")
    ph = report.importer_phases
    if ph:
        print("  the importer's phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in ph.items()))
        if ph.get("Relationship import"):
            print(f"  relationship phase alone: {rels / ph['Relationship import']:,.0f} rel/s")
    print(f"  same counts as the transactional path: {bulk_counts == tx_counts}")
    if bulk_counts != tx_counts:
        print(f"    transactional {tx_counts}\n    bulk          {bulk_counts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=None)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--bulk", action="store_true", help="bulk first load against the transactional path")
    args = ap.parse_args()
    if args.bulk:
        args.datasets = args.datasets or ["amazon-games", "amazon-beauty", "movielens-100k"]
        bulk(args)
    else:
        args.datasets = args.datasets or ["movielens-100k"]
        transactional(args)


if __name__ == "__main__":
    sys.exit(main())
