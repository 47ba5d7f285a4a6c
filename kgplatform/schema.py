"""The graph vocabulary: labels, relationship types and property names, shared by code, Cypher and tests.

Model (see README "Graph model")::

    (:User {id, dataset, rawId, ...profile})-[:INTERACTED {pos, ts, rating, behavior}]->(:Item {id, dataset, rawId, title, text})
    (:User)-[:HAS_SESSION]->(:Session {id, dataset, start, end})-[:CONTAINS {pos, ts}]->(:Item)
    (:Item|Entity)-[:FACT {predicate, source}]->(:Item|Entity)      external KG triples (DBpedia, Freebase)
    (:Item)-[:SATISFIES {kind: 'exact'|'related', ...}]->(:Intent {key, name})
    (:User)-[:HAS_INTENT {kind: 'exact'|'related', ...}]->(:Intent)
    (:User)-[:HAS_PERSONA]->(:Persona {id})
    (:User)-[:HAS_KNOWLEDGE]->(:Knowledge {id, scope, likes, dislikes, contexts, leanings, text, model, run, ...})
    (:User)-[:HAS_TUNING_KNOWLEDGE]->(:Knowledge {id: '<user>#tuning', scope: 'tuning', ...})
    (:User)-[:RECOMMENDED {rank, score, run}]->(:Item)
    (:Session|User)-[:INFERRED {view, prefixEnd, text, score, rank, weight, model, promptVersion, run}]->(:Item)
    (:Run {id, model, dataset, scoreKind, scoreLambda, ...})-[:INTENT_EMBEDDING {vector}]->(:Intent)

Node ids are dataset-qualified strings ``"<dataset>:<rawId>"`` so several datasets share one graph; the raw id
is kept in ``rawId``. External entities are global (``Entity.uri``), so DBpedia entities are shared across
datasets. A Freebase entity linked to an item (``.link`` file) *is* that item: its triples attach to the Item.
"""
from __future__ import annotations

import re

# Labels
USER = "User"
ITEM = "Item"
ENTITY = "Entity"
SESSION = "Session"
INTENT = "Intent"
PERSONA = "Persona"
KNOWLEDGE = "Knowledge"
RUN = "Run"
MIGRATION = "KgpMigration"
EMBEDDING_MODEL = "KgpEncoder"
DATASET = "Dataset"

LABELS = frozenset({USER, ITEM, ENTITY, SESSION, INTENT, PERSONA, KNOWLEDGE, RUN, MIGRATION, EMBEDDING_MODEL,
                    DATASET})

# Relationship types
INTERACTED = "INTERACTED"
HAS_SESSION = "HAS_SESSION"
CONTAINS = "CONTAINS"
FACT = "FACT"
SATISFIES = "SATISFIES"
HAS_INTENT = "HAS_INTENT"
HAS_PERSONA = "HAS_PERSONA"
RECOMMENDED = "RECOMMENDED"
INTENT_EMBEDDING = "INTENT_EMBEDDING"
HAS_KNOWLEDGE = "HAS_KNOWLEDGE"
HAS_TUNING_KNOWLEDGE = "HAS_TUNING_KNOWLEDGE"
INFERRED = "INFERRED"

REL_TYPES = frozenset({INTERACTED, HAS_SESSION, CONTAINS, FACT, SATISFIES, HAS_INTENT, HAS_PERSONA, RECOMMENDED,
                       INTENT_EMBEDDING, HAS_KNOWLEDGE, HAS_TUNING_KNOWLEDGE, INFERRED})

# Intent edge kinds
EXACT = "exact"
RELATED = "related"
INTENT_KINDS = (EXACT, RELATED)

# Entity sources
DBPEDIA = "dbpedia"
FREEBASE = "freebase"

FREEBASE_NS = "http://rdf.freebase.com/ns/"
DBPEDIA_RESOURCE = "http://dbpedia.org/resource/"
DBPEDIA_CATEGORY = "http://dbpedia.org/resource/Category:"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Behaviour types of INTERACTED edges (``behavior``): an open vocabulary of short lowercase words, since each
# becomes a PyG edge type ``(user, <behavior>, item)`` and a RecBole token. Names the exported graph already uses
# for other edge types are refused.
BEHAVIOR_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
RESERVED_BEHAVIORS = frozenset({"interacted", "has_session", "contains", "satisfies", "has_intent", "has_persona",
                                "recommended", "fact"})
#: MovieLens typed feedback from the 1-5 star rating (README "Behaviour types")
FEEDBACK_BEHAVIORS = ((5.0, "loved"), (4.0, "liked"), (3.0, "watched"), (float("-inf"), "disliked"))
#: Amazon 5-core rows are reviews of purchased products, one behaviour
PURCHASE_BEHAVIOR = "bought"


def behavior_problem(value: str) -> str | None:
    """Why ``value`` (already stripped and lower-cased) cannot be a behaviour type, or None when it can."""
    if "__" in value or not BEHAVIOR_PATTERN.match(value):
        return "must be a lowercase word: a letter, then letters, digits or _ (at most 32, no '__')"
    if value in RESERVED_BEHAVIORS:
        return f"is reserved for another edge type ({', '.join(sorted(RESERVED_BEHAVIORS))})"
    return None


def feedback_behavior(rating: float | None) -> str | None:
    """MovieLens' typed feedback: 5 → loved, 4 → liked, 3 → watched, ≤ 2 → disliked (no rating: None)."""
    if rating is None:
        return None
    for floor, name in FEEDBACK_BEHAVIORS:
        if rating >= floor:
            return name
    return None  # unreachable: the last floor is -inf


def node_id(dataset: str, raw_id: str) -> str:
    """The graph id of a user/item/session of ``dataset``."""
    return f"{dataset}:{raw_id}"


def quote_identifier(name: str, allowed: frozenset[str]) -> str:
    """Backtick-quote a label/type/property that must vary, after checking it against an allow-list.

    The only sanctioned way to put an identifier (never a value) into Cypher text.
    """
    if name not in allowed or not _IDENT.match(name):
        raise ValueError(f"identifier {name!r} is not in the schema allow-list")
    return f"`{name}`"


_EMB_PROP = re.compile(r"^emb_[a-z0-9_]+$")


def check_identifier(kind: str, value: str) -> str:
    """Validate and backtick-quote an identifier for a templated query (``{{label}}``, ``{{property}}``)."""
    if kind == "label":
        return quote_identifier(value, LABELS)
    if kind == "property" and _EMB_PROP.match(value):
        return f"`{value}`"
    raise ValueError(f"identifier {kind}={value!r} is not allowed in a query template")


def embedding_property(model: str) -> str:
    """Property name holding a learned embedding for ``model`` (e.g. ``emb_ikgr``)."""
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
    if not slug:
        raise ValueError(f"bad model name {model!r}")
    return f"emb_{slug}"


TEXT_EMBEDDING = "textEmbedding"
TEXT_HASH = "textHash"
