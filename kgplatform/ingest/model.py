"""Parsed, validated dataset rows, ready to be written (the ingest stage's one intermediate form)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fact:
    """One external-KG triple. Endpoints are ``("item", graph_id)`` or ``("entity", uri)``."""

    head: tuple[str, str]
    predicate: str
    tail: tuple[str, str]
    source: str


@dataclass
class ParsedDataset:
    """Everything one dataset contributes to the graph, validated before anything is written."""

    name: str
    kind: str  # movielens | amazon-beauty | amazon-games | generic
    path: str
    users: list[dict[str, Any]] = field(default_factory=list)  # {id, rawId, dataset, ...profile}
    items: list[dict[str, Any]] = field(default_factory=list)  # {id, rawId, dataset, title, text, ...}
    interactions: list[dict[str, Any]] = field(default_factory=list)  # {user, item, pos, ts, rating, behavior}
    sessions: list[dict[str, Any]] = field(default_factory=list)  # {id, user, dataset, start, end, size}
    session_items: list[dict[str, Any]] = field(default_factory=list)  # {session, item, pos, ts}
    entities: list[dict[str, Any]] = field(default_factory=list)  # {uri, label, source, kind}
    facts: list[Fact] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "items": len(self.items),
            "interactions": len(self.interactions),
            "sessions": len(self.sessions),
            "entities": len(self.entities),
            "facts": len(self.facts),
        }
