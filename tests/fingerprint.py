"""A graph's fingerprint: what two runs must agree on to have written "the same graph".

Counts per label and per relationship type, plus a SHA-256 over the sorted node keys (labels + the node's key
property) and over the sorted relationship tuples (start key, type, end key, the type's key property). Duplicates
count: a re-run that CREATEs an edge twice changes both the count and the checksum. Timestamps and other
non-key properties (``Dataset.ingestedAt``, ``Run.finished``…) are deliberately left out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from kgplatform.db.graph import Graph

#: the property that identifies a node, by label (first match wins)
NODE_KEY = "coalesce(n.id, n.uri, n.key, n.name, toString(n.version))"
#: the property that tells two edges of one type between the same nodes apart
REL_KEY = {"INTERACTED": "pos", "CONTAINS": "pos", "FACT": "predicate", "SATISFIES": "kind", "HAS_INTENT": "kind",
           "RECOMMENDED": "run"}

_NODES = f"MATCH (n) RETURN labels(n) AS labels, {NODE_KEY} AS key"
_RELS = f"""
MATCH (a)-[r]->(b)
RETURN {NODE_KEY.replace('n.', 'a.')} AS start, type(r) AS type, {NODE_KEY.replace('n.', 'b.')} AS end,
       r {{.pos, .predicate, .kind, .run}} AS props
"""


@dataclass(frozen=True)
class Fingerprint:
    nodes: dict[str, int]
    relationships: dict[str, int]
    node_checksum: str
    relationship_checksum: str
    unkeyed: list[str] = field(default_factory=list)  # labels of nodes without any key property (should be empty)

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
        return out


def _digest(lines: list[str]) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


def fingerprint(graph: Graph) -> Fingerprint:
    """The fingerprint of everything in ``graph`` (one read transaction per part)."""
    with graph.driver.session(database=graph.info.database, default_access_mode="READ") as s:
        nodes = s.execute_read(lambda tx: [(sorted(r["labels"]), r["key"]) for r in tx.run(_NODES)])
        rels = s.execute_read(lambda tx: [(r["start"], r["type"], r["end"], r["props"]) for r in tx.run(_RELS)])
    node_counts: dict[str, int] = {}
    for labels, _ in nodes:
        for label in labels:
            node_counts[label] = node_counts.get(label, 0) + 1
    rel_counts: dict[str, int] = {}
    rel_lines = []
    for start, rtype, end, props in rels:
        rel_counts[rtype] = rel_counts.get(rtype, 0) + 1
        key = props.get(REL_KEY[rtype]) if rtype in REL_KEY else None
        rel_lines.append(f"{start}\t{rtype}\t{end}\t{key}")
    return Fingerprint(
        nodes=dict(sorted(node_counts.items())),
        relationships=dict(sorted(rel_counts.items())),
        node_checksum=_digest([":".join(labels) + "\t" + str(key) for labels, key in nodes]),
        relationship_checksum=_digest(rel_lines),
        unkeyed=sorted({":".join(labels) for labels, key in nodes if key is None}),
    )
