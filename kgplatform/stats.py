"""Graph-wide figures for ``kgp stats``."""
from __future__ import annotations

from typing import Any

from .db.graph import Graph


def graph_stats(graph: Graph) -> dict[str, Any]:
    """``{"nodes": {label: count}, "relationships": {type: count}}`` from Neo4j's count store."""
    row = graph.read_one("stats/graph_counts") or {"nodes": [], "relationships": []}
    nodes = {n["label"]: n["count"] for n in row["nodes"] if n["count"]}
    rels = {r["type"]: r["count"] for r in row["relationships"] if r["count"]}
    return {"nodes": dict(sorted(nodes.items())), "relationships": dict(sorted(rels.items()))}


def wipe(graph: Graph, *, dataset: str | None = None, batch: int = 20000) -> int:
    """Delete all data (or one dataset's users/items/sessions) in batches; schema and migrations stay."""
    deleted = 0
    while True:
        if dataset is None:
            row = _delete(graph, "admin/delete_batch", batch=batch)
        else:
            row = _delete(graph, "admin/delete_dataset_batch", dataset=dataset, batch=batch)
        if not row:
            return deleted
        deleted += row


def _delete(graph: Graph, name: str, **params: Any) -> int:
    with graph.transaction() as tx:
        rows = tx.run(name, **params)
    return int(rows[0]["deleted"]) if rows else 0
