"""Persona write-back and reads: ``(:Persona)`` nodes, ``(:User)-[:HAS_PERSONA {weight, run}]->(:Persona)``,
the users' HDGI vectors (``emb_hdgi``, tagged ``emb_hdgi_run``, with a cosine vector index) and a ``(:Run
{kind: 'persona'})`` — all in **one** transaction, so a new run replaces the dataset's previous personas
atomically and a failed (or killed) write leaves the previous run intact.

The graph layer takes plain data (:class:`PersonaRun`); it does not import the models that produced it.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..db.graph import Graph
from ..errors import QueryError

HDGI_PROPERTY = "emb_hdgi"
BATCH = 2000


@dataclass
class PersonaRow:
    """One persona as written: ``index`` within the run, ``centroid`` (unit norm), what is typical of it
    (display strings plus the ids they came from) and its label with provenance."""

    index: int
    size: int
    centroid: list[float]
    label: str
    label_source: str  # llm | fallback
    label_model: str | None = None
    label_prompt_version: str | None = None
    top_items: list[str] = field(default_factory=list)
    top_item_ids: list[str] = field(default_factory=list)
    top_entities: list[str] = field(default_factory=list)
    top_entity_ids: list[str] = field(default_factory=list)
    top_intents: list[str] = field(default_factory=list)


@dataclass
class PersonaRun:
    """Everything one persona run writes."""

    run_id: str
    dataset: str
    model: str  # "hdgi", "mean" or the recommender that learned them (e.g. "persona-sasrec")
    personas: list[PersonaRow]
    memberships: list[tuple[str, int, float]]  # (user id, persona index, weight)
    user_vectors: list[tuple[str, list[float]]]  # (user id, vector); empty: none written
    params: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    #: the ``(:Run {kind: 'persona'})`` id; default ``run_id`` (personas learned by a training run carry that
    #: run's id on their nodes and get their own record ``<run>-personas``)
    record_id: str | None = None

    def persona_id(self, index: int) -> str:
        return f"{self.dataset}:persona:{self.run_id}:{index}"


@dataclass
class PersonaWriteReport:
    run_id: str
    personas: int
    memberships: int
    user_vectors: int
    seconds: float


def write_personas(graph: Graph, run: PersonaRun) -> PersonaWriteReport:
    """Replace ``run.dataset``'s personas with ``run`` in one transaction (see the module docstring)."""
    t0 = time.perf_counter()
    rows = [{
        "id": run.persona_id(p.index), "index": p.index, "size": p.size, "centroid": [float(x) for x in p.centroid],
        "label": p.label, "labelSource": p.label_source, "labelModel": p.label_model,
        "labelPromptVersion": p.label_prompt_version, "topItems": p.top_items, "topItemIds": p.top_item_ids,
        "topEntities": p.top_entities, "topEntityIds": p.top_entity_ids, "topIntents": p.top_intents,
    } for p in run.personas]
    members = [{"user": u, "persona": run.persona_id(j), "weight": float(w)} for u, j, w in run.memberships if j >= 0]
    vectors = [{"id": u, "props": {HDGI_PROPERTY: v, f"{HDGI_PROPERTY}_run": run.run_id}}
               for u, v in run.user_vectors]
    props = {
        "id": run.record_id or run.run_id, "personaRun": run.run_id, "kind": "persona", "model": run.model,
        "dataset": run.dataset,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(), "personas": len(rows),
        "memberships": len(members), "params": json.dumps(run.params, default=str),
        "record": json.dumps(run.summary, default=str),
    }
    with graph.transaction("personas/write_back") as tx:
        tx.run("runs/lock_dataset", dataset=run.dataset)  # one write-back of a dataset at a time
        tx.run("personas/delete_dataset_personas", dataset=run.dataset)
        tx.run("personas/create_personas", rows=rows, dataset=run.dataset, run=run.run_id)
        for start in range(0, len(members), BATCH):
            tx.run("personas/create_memberships", rows=members[start:start + BATCH], run=run.run_id)
        for start in range(0, len(vectors), BATCH):
            tx.run("runs/set_user_embeddings", rows=vectors[start:start + BATCH])
        tx.run("runs/create_run", run=props)  # last: a clash on Run.id rolls everything back
    if run.user_vectors:
        try:
            graph.write_schema("runs/create_embedding_index", {"label": "User", "property": HDGI_PROPERTY},
                               index=f"user_{HDGI_PROPERTY}", dimensions=len(run.user_vectors[0][1]))
        except QueryError as e:  # a concurrent write created it between IF NOT EXISTS and the creation
            if str(getattr(e.__cause__, "code", "")) != "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists":
                raise
    return PersonaWriteReport(run.run_id, len(rows), len(members), len(vectors), time.perf_counter() - t0)


def entity_labels(graph: Graph, uris: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(uris), 5000):
        for r in graph.read("personas/entity_labels", uris=uris[start:start + 5000]):
            out[r["uri"]] = r["label"] or r["uri"]
    return out


def intent_names(graph: Graph, keys: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(keys), 5000):
        for r in graph.read("personas/intent_names", keys=keys[start:start + 5000]):
            out[r["key"]] = r["name"] or r["key"]
    return out


def list_personas(graph: Graph, dataset: str) -> list[dict[str, Any]]:
    return [dict(r["persona"]) for r in graph.read("personas/list_personas", dataset=dataset)]


def persona_of_user(graph: Graph, user: str) -> tuple[dict[str, Any], float] | None:
    rows = graph.read("personas/persona_of_user", user=user)
    return (dict(rows[0]["persona"]), float(rows[0]["weight"])) if rows else None


def persona_by_index(graph: Graph, dataset: str, run: str, index: int) -> dict[str, Any] | None:
    rows = graph.read("personas/persona_by_index", dataset=dataset, run=run, index=index)
    return dict(rows[0]["persona"]) if rows else None


__all__ = ["HDGI_PROPERTY", "PersonaRow", "PersonaRun", "PersonaWriteReport", "entity_labels", "intent_names",
           "list_personas", "persona_by_index", "persona_of_user", "write_personas"]
