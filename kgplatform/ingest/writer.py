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
    ("item", "entity"): "ingest/merge_facts_item_entity",
    ("entity", "item"): "ingest/merge_facts_entity_item",
    ("entity", "entity"): "ingest/merge_facts_entity_entity",
    ("item", "item"): "ingest/merge_facts_item_item",
}


@dataclass
class IngestReport:
    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def relationships(self) -> int:
        return sum(self.rows.get(k, 0) for k in ("interactions", "sessions", "session_items", "facts"))


def write_dataset(graph: Graph, data: ParsedDataset, *, batch_size: int = 5000, progress: bool | None = None
                  ) -> IngestReport:
    """Write everything in dependency order (nodes before the edges that match them)."""
    t0 = time.perf_counter()
    report = IngestReport(data.name)
    fact_groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data.facts:
        fact_groups.setdefault((f.head[0], f.tail[0]), []).append(
            {"head": f.head[1], "predicate": f.predicate, "tail": f.tail[1], "source": f.source})
    steps: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("users", "ingest/merge_users", data.users),
        ("items", "ingest/merge_items", data.items),
        ("entities", "ingest/merge_entities", data.entities),
        ("interactions", "ingest/merge_interactions", data.interactions),
        ("sessions", "ingest/merge_sessions", data.sessions),
        ("session_items", "ingest/merge_session_items", data.session_items),
    ]
    for key, rows in sorted(fact_groups.items()):
        steps.append(("facts", _FACT_QUERIES[key], rows))
    total = sum(len(rows) for _, _, rows in steps)
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    with tqdm(total=total, desc=f"ingest {data.name}", unit="row", file=sys.stderr, disable=disable) as bar:
        for label, query, rows in steps:
            if not rows:
                continue
            bar.set_postfix_str(label)
            n = graph.write_rows(query, rows, batch_size=batch_size, progress=bar.update)
            report.rows[label] = report.rows.get(label, 0) + n
    graph.write("ingest/merge_dataset", name=data.name, kind=data.kind, path=data.path,
                counts={"users": len(data.users), "items": len(data.items),
                        "interactions": len(data.interactions), "sessions": len(data.sessions),
                        "entities": len(data.entities), "facts": len(data.facts)})
    report.seconds = time.perf_counter() - t0
    return report
