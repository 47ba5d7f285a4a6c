"""Intent-graph statistics: the IKGR paper's Table 1 rows (#Intents, #IntEdges, AvgIntDeg)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph


def intent_stats(graph: Graph, dataset: str | None = None) -> dict[str, Any]:
    """Table 1 figures for the whole graph or one dataset.

    ``intents`` is the number of intent nodes (with a dataset: those linked to its items/users);
    ``int_edges`` counts SATISFIES + HAS_INTENT edges, split into ``exact_edges``/``related_edges`` and
    ``item_edges``/``user_edges``; ``avg_intent_degree`` = ``int_edges / intents`` (edges per intent node,
    the paper's AvgIntDeg). Coverage counts say how many items/users each round has done or failed.
    """
    row = graph.read_one("agent/intent_stats", dataset=dataset) or {}
    intents = int(row.get("linkedIntents", 0) if dataset else row.get("allIntents", 0))
    edges = int(row.get("intEdges", 0))
    return {
        "dataset": dataset,
        "intents": intents,
        "int_edges": edges,
        "exact_edges": int(row.get("exactEdges", 0)),
        "related_edges": int(row.get("relatedEdges", 0)),
        "item_edges": int(row.get("itemEdges", 0)),
        "user_edges": int(row.get("userEdges", 0)),
        "avg_intent_degree": round(edges / intents, 3) if intents else 0.0,
        "items": int(row.get("items", 0)),
        "items_exact_ok": int(row.get("itemsExactOk", 0)),
        "items_exact_failed": int(row.get("itemsExactFailed", 0)),
        "items_related_ok": int(row.get("itemsRelatedOk", 0)),
        "items_related_failed": int(row.get("itemsRelatedFailed", 0)),
        "users": int(row.get("users", 0)),
        "users_exact_ok": int(row.get("usersExactOk", 0)),
        "users_exact_failed": int(row.get("usersExactFailed", 0)),
        "users_related_ok": int(row.get("usersRelatedOk", 0)),
        "users_related_failed": int(row.get("usersRelatedFailed", 0)),
    }


def node_intents(graph: Graph, node_id: str, *, user: bool = False) -> list[dict[str, Any]]:
    """The intents of one item (or user) with edge kind, provenance and score."""
    return graph.read("agent/intents_of_user" if user else "agent/intents_of_item", id=node_id)
