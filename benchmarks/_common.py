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
