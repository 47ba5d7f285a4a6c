"""A graph's fingerprint: what two runs must agree on to have written "the same graph".

- Counts per label and per relationship type.
- A SHA-256 over the sorted node keys (labels + the node's key property) and over the sorted relationship tuples
  (start key, type, end key, the type's key property). Duplicates count: a re-run that CREATEs an edge twice
  changes both the count and the checksum.
- A SHA-256 per label over every node's properties, and per relationship type over every edge's properties, so a
  half-written node (say, items with ``textEmbedding`` but no ``textHash``, an intent edge without its
  provenance, an item whose extraction status was never recorded) shows up too. Vectors (``textEmbedding``,
  ``emb_<model>``) count by their presence and length, not their values; floats are rounded to 6 digits.

What cannot be equal between two runs by nature is left out: timestamps (``Dataset.ingestedAt``,
``extractAt``…), the ids of the run that wrote something (``runId``, ``extractRunId``, ``emb_<model>_run``, the
``run`` of a ``RECOMMENDED`` edge: run ids hold the start time), timings and counts of work done (a resumed run
skips what its killed predecessor finished). ``(:Run)`` nodes are keyed by what they are a run *of*
(``kind``/``model``/``dataset``/``seed``/``round``), not by their id, and keep only ``recommendations`` as a
property: the number of complete runs of each kind must match, and so must the number of recommendations each
one recorded.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from kgplatform.db.graph import Graph

#: the property that identifies a node, by label (first match wins)
NODE_KEY = "coalesce(n.id, n.uri, n.key, n.name, toString(n.version))"
#: the property that tells two edges of one type between the same nodes apart
REL_KEY = {"INTERACTED": "pos", "CONTAINS": "pos", "FACT": "predicate", "SATISFIES": "kind", "HAS_INTENT": "kind",
           "RECOMMENDED": "rank"}
#: properties that differ between two correct runs by nature (times, run ids, timings, work counters)
VOLATILE = frozenset({
    "ingestedAt", "appliedAt", "updatedAt", "extractAt", "relatedAt", "extractRunId", "relatedRunId", "runId", "run",
    "finished", "finishedAt", "started", "startedAt", "seconds",
})
#: the only properties a Run node is compared by (its id holds a timestamp; its metrics hold timings)
RUN_KEY = ("kind", "model", "dataset", "seed", "round")
RUN_PROPS = ("recommendations",)

_NODES = f"MATCH (n) RETURN labels(n) AS labels, {NODE_KEY} AS key, properties(n) AS props"
_RELS = f"""
MATCH (a)-[r]->(b)
RETURN {NODE_KEY.replace('n.', 'a.')} AS start, type(r) AS type, {NODE_KEY.replace('n.', 'b.')} AS end,
       properties(r) AS props
"""


@dataclass(frozen=True)
class Fingerprint:
    nodes: dict[str, int]
    relationships: dict[str, int]
    node_checksum: str
    relationship_checksum: str
    unkeyed: list[str] = field(default_factory=list)  # labels of nodes without any key property (should be empty)
    properties: dict[str, str] = field(default_factory=dict)  # label or relationship type -> property digest

    def differences(self, other: "Fingerprint") -> list[str]:
        """Human-readable differences (empty when equal)."""
        out = []
        for what, a, b in (("nodes", self.nodes, other.nodes), ("relationships", self.relationships,
                                                                   other.relationships)):
            for k in sorted(set(a) | set(b)):
                if a.get(k, 0) != b.get(k, 0):
                    out.append(f"{what} {k}: {a.get(k, 0)} != {b.get(k, 0)}")
        if self.node_checksum != other.node_checksum:
            out.append("node ids differ")
        if self.relationship_checksum != other.relationship_checksum:
            out.append("relationship tuples differ")
        for k in sorted(set(self.properties) | set(other.properties)):
            if self.properties.get(k) != other.properties.get(k):
                out.append(f"properties of {k} differ")
        return out

    def without(self, *names: str) -> "Fingerprint":
        """The same fingerprint without the given labels/relationship types in the counts and property digests
        (the key checksums are kept only when nothing was dropped from them)."""
        drop = set(names)
        return Fingerprint(
            nodes={k: v for k, v in self.nodes.items() if k not in drop},
            relationships={k: v for k, v in self.relationships.items() if k not in drop},
            node_checksum=self.node_checksum if not drop & set(self.nodes) else "-",
            relationship_checksum=self.relationship_checksum if not drop & set(self.relationships) else "-",
            unkeyed=self.unkeyed,
            properties={k: v for k, v in self.properties.items() if k not in drop},
        )


def _digest(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, (list, tuple)):
        if len(v) > 16 and all(isinstance(x, float) for x in v):
            return f"<vector {len(v)}>"
        return [_value(x) for x in v]
    if not isinstance(v, (str, int, bool, type(None))):
        return str(v)  # temporal values and points
    return v


def _props(props: dict[str, Any]) -> str:
    kept = {k: _value(v) for k, v in props.items() if k not in VOLATILE and not k.endswith("_run")}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False)


def _node_key(labels: list[str], key: Any, props: dict[str, Any]) -> Any:
    if "Run" in labels:
        return "Run(" + ",".join(f"{k}={props.get(k)}" for k in RUN_KEY if props.get(k) is not None) + ")"
    return key


def fingerprint(graph: Graph) -> Fingerprint:
    """The fingerprint of everything in ``graph`` (one read transaction per part)."""
    with graph.driver.session(database=graph.info.database, default_access_mode="READ") as s:
        nodes = s.execute_read(lambda tx: [(sorted(r["labels"]), r["key"], r["props"]) for r in tx.run(_NODES)])
        rels = s.execute_read(lambda tx: [(r["start"], r["type"], r["end"], r["props"]) for r in tx.run(_RELS)])
    node_counts: dict[str, int] = {}
    prop_lines: dict[str, list[str]] = {}
    node_lines = []
    for labels, key, props in nodes:
        key = _node_key(labels, key, props)
        node_lines.append(":".join(labels) + "\t" + str(key))
        if "Run" in labels:
            props = {k: props.get(k) for k in RUN_PROPS}
        for label in labels:
            node_counts[label] = node_counts.get(label, 0) + 1
            prop_lines.setdefault(label, []).append(f"{key}\t{_props(props)}")
    rel_counts: dict[str, int] = {}
    rel_lines = []
    for start, rtype, end, props in rels:
        rel_counts[rtype] = rel_counts.get(rtype, 0) + 1
        key = props.get(REL_KEY[rtype]) if rtype in REL_KEY else None
        rel_lines.append(f"{start}\t{rtype}\t{end}\t{key}")
        prop_lines.setdefault(rtype, []).append(f"{start}\t{end}\t{key}\t{_props(props)}")
    return Fingerprint(
        nodes=dict(sorted(node_counts.items())),
        relationships=dict(sorted(rel_counts.items())),
        node_checksum=_digest(node_lines),
        relationship_checksum=_digest(rel_lines),
        unkeyed=sorted({":".join(labels) for labels, key, _ in nodes if key is None}),
        properties={k: _digest(v) for k, v in sorted(prop_lines.items())},
    )
