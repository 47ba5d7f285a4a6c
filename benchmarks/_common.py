"""Benchmark plumbing: a throwaway local Neo4j (or KGP_BENCH_NEO4J_URI), never a user's database."""
from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgplatform.config import Settings  # noqa: E402
from kgplatform.db.graph import ConnectionInfo, Graph  # noqa: E402
from kgplatform.db.migrations import migrate  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("KGP_DATA_DIR", Settings().data_dir))


@contextlib.contextmanager
def bench_graph(heap: str = "2g", pagecache: str = "1g") -> Iterator[Graph]:
    uri = os.environ.get("KGP_BENCH_NEO4J_URI")
    if uri:
        graph = Graph.open(ConnectionInfo(uri, os.environ.get("KGP_BENCH_NEO4J_USER"),
                                          os.environ.get("KGP_BENCH_NEO4J_PASSWORD")))
        migrate(graph)
        try:
            yield graph
        finally:
            graph.close()
        return
    from kgplatform.db.server import LocalServer

    with tempfile.TemporaryDirectory(prefix="kgp-bench-") as home:
        server = LocalServer(Path(home), bolt_port=0, http_port=0, auth=False, heap=heap, pagecache=pagecache)
        info = server.start()
        try:
            graph = Graph.open(ConnectionInfo(info.uri, None, None, source="local"))
            migrate(graph)
            try:
                yield graph
            finally:
                graph.close()
        finally:
            server.stop()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_spec(spec: str) -> tuple[str, dict]:
    """``NAME[:key=value,...]`` → ``(NAME, {key: value})``, values read as JSON where they parse (numbers,
    ``true``/``false``) and as text otherwise, as ``kgp train --set`` does. A part without ``=`` continues the
    previous value, so ``lightgcn:loader=neighbor,num_neighbors=5,5`` gives ``num_neighbors = "5,5"``."""
    name, _, rest = spec.partition(":")
    pairs: list[list[str]] = []
    for part in filter(None, rest.split(",")):
        if "=" in part or not pairs:
            key, _, value = part.partition("=")
            pairs.append([key.strip(), value.strip()])
        else:
            pairs[-1][1] += "," + part.strip()
    opts: dict = {}
    for key, raw in pairs:
        try:
            opts[key] = json.loads(raw)
        except json.JSONDecodeError:
            opts[key] = raw
    return name.strip(), opts


def split_options(model: str, opts: dict) -> tuple[dict, dict]:
    """``(model options, TrainConfig options)``: the keys that are fields of ``model``'s config go to the model,
    the others (``batch_size``, ``lr``, ...) to training."""
    import dataclasses

    from kgplatform.models import get_spec

    fields = {f.name for f in dataclasses.fields(get_spec(model).config_cls)}
    return ({k: v for k, v in opts.items() if k in fields}, {k: v for k, v in opts.items() if k not in fields})


def rerank_in_chunks(base, rows: list, out: Path, label: str, *, save_every: int = 5, extra: dict | None = None,
                     log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Score ``rows`` with the LLM re-ranker (:func:`kgplatform.tune.evaluate_rerank`) a few users at a time,
    saving the per-user metrics so far to ``out`` (``torch.save``) after each chunk, so a run cut short keeps the
    users it finished; returns the last saved blob (``users``, ``metrics[aggregate][metric]``, ``seconds_per_user``,
    ``candidates``, ``planned_users``, ``load_average`` and ``extra``)."""
    import time

    import torch

    from kgplatform.tune import evaluate_rerank

    done: list = []
    seconds = 0.0
    blob: dict = {}
    for s in range(0, len(rows), save_every):
        part = rows[s:s + save_every]
        res = evaluate_rerank(base, part)
        done.append(res)
        seconds += res.seconds_per_user * len(part)
        n = sum(len(r.users) for r in done)
        log(f"{label}: {n}/{len(rows)} ({time.strftime('%H:%M:%S')})")
        blob = {"users": [u for r in done for u in r.users],
                "metrics": {g: {k: torch.cat([r.metrics[g][k] for r in done]) for k in done[0].metrics[g]}
                            for g in done[0].metrics},
                "seconds_per_user": seconds / n, "candidates": res.candidates, "planned_users": len(rows),
                "load_average": os.getloadavg(), **(extra or {})}
        torch.save(blob, out)
    return blob
