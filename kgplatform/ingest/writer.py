"""Write a validated :class:`ParsedDataset` into Neo4j: batched ``UNWIND … MERGE``, one transaction per
batch, idempotent (a second run changes no count)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from ..db.graph import Graph
from .model import ParsedDataset

_FACT_QUERIES = {
    ("item", "entity"): "facts_item_entity",
    ("entity", "item"): "facts_entity_item",
    ("entity", "entity"): "facts_entity_entity",
    ("item", "item"): "facts_item_item",
}


@dataclass
class IngestReport:
    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def relationships(self) -> int:
        return sum(self.rows.get(k, 0) for k in ("interactions", "sessions", "session_items", "facts"))


def write_dataset(graph: Graph, data: ParsedDataset, *, batch_size: int = 5000, progress: bool | None = None
                  ) -> IngestReport:
    """Write everything in dependency order (nodes before the edges that match them).

    Nodes are always MERGEd. Relationships are MERGEd too, except on a dataset's first ingest: when the
    dataset has no edges of a kind yet (checked once, before writing), the validated, de-duplicated rows are
    CREATEd, which is several times faster. A run killed half-way leaves some edges, so its re-run takes the
    MERGE path and still ends with exactly one edge per row.
    """
    t0 = time.perf_counter()
    report = IngestReport(data.name)
    fact_groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data.facts:
        fact_groups.setdefault((f.head[0], f.tail[0]), []).append(
            {"head": f.head[1], "predicate": f.predicate, "tail": f.tail[1], "source": f.source})
    present = graph.read_one("ingest/dataset_edges_present", dataset=data.name) or {}

    def verb(kind: str) -> str:
        return "merge" if present.get(kind, True) else "create"

    steps: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("users", "ingest/merge_users", data.users),
        ("items", "ingest/merge_items", data.items),
        ("entities", "ingest/merge_entities", data.entities),
        ("interactions", f"ingest/{verb('interactions')}_interactions", data.interactions),
        ("sessions", "ingest/merge_sessions", data.sessions),
        ("session_items", f"ingest/{verb('session_items')}_session_items", data.session_items),
    ]
    for key, rows in sorted(fact_groups.items()):
        # entity-entity triples are not owned by one dataset: always MERGE them
        v = "merge" if key == ("entity", "entity") else verb("facts")
        steps.append(("facts", f"ingest/{v}_{_FACT_QUERIES[key]}", rows))
    total = sum(len(rows) for _, _, rows in steps)
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    with tqdm(total=total, desc=f"ingest {data.name}", unit="row", file=sys.stderr, disable=disable) as bar:
        for label, query, rows in steps:
            if not rows:
                continue
            bar.set_postfix_str(label)
            t = time.perf_counter()
            n = graph.write_rows(query, rows, batch_size=batch_size, progress=bar.update)
            report.rows[label] = report.rows.get(label, 0) + n
            step = query.rsplit("/", 1)[-1]
            report.step_seconds[step] = report.step_seconds.get(step, 0.0) + time.perf_counter() - t
    graph.write("ingest/merge_dataset", name=data.name, kind=data.kind, path=data.path,
                counts={"users": len(data.users), "items": len(data.items),
                        "interactions": len(data.interactions), "sessions": len(data.sessions),
                        "entities": len(data.entities), "facts": len(data.facts)})
    report.seconds = time.perf_counter() - t0
    return report
