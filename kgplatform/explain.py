"""Recommendations served from the graph, and "why this item for this user?" as Cypher paths.

Recommendations are the ``RECOMMENDED`` edges materialised by the newest run of a model
(:mod:`kgplatform.graph.writeback`); an anonymous session is served by :mod:`kgplatform.session`.
Explanations are the named read queries in ``cypher/explain/`` (shared intents, the user's intents, KG paths,
similar users, persona peers, the user's items closest in text embedding, the user's fused knowledge that
matches the item, the LLM4SBR session intents localised to or near the item); each
returns paths, printed as text and runnable as-is in Neo4j Browser after ``:param user => '…'`` /
``:param item => '…'`` / ``:param limit => 3``. Those paths are graph evidence. Where the run's score is a
function of the vectors it wrote back (IKGR's Eq. 9–11, dot-product models) :func:`score_explanation` also
recomputes the score of the pair and splits it into the terms that sum to it: the model's own reason.

Serving cost. ``recommend`` is one round trip (``cypher/recommend/serve_top_k``: user, newest run and top-k
in one read). ``explain`` sends its independent reads (one per kind, and the score's) at the same time from a
small thread pool, each on its thread's reused session (:meth:`Graph.serve`), so a call waits for about the
slowest query rather than their sum; :func:`explain_items` does that for all of a user's top-k at once.
"""
from __future__ import annotations

import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from neo4j.graph import Node, Path, Relationship

from . import schema
from .config import resource_dir
from .db.graph import Graph
from .db.queries import NamedQuery
from .errors import ConfigError, NotFound, QueryError

#: Bounds of ``k`` (recommendations per user) and ``limit`` (paths per kind of explanation).
MAX_K = 1000
MAX_LIMIT = 100

#: kind → named query, in the order they are shown
EXPLANATIONS = {
    "shared intents": "explain/shared_intents",
    "user intents": "explain/user_intents",
    "knowledge graph": "explain/kg_paths",
    "similar users": "explain/similar_users",
    "persona": "explain/persona_peers",
    "similar content": "explain/similar_content",
    "fused knowledge": "explain/knowledge_match",
    "session intents": "explain/session_intents",
}


@dataclass
class Recommendation:
    item: str
    title: str | None
    rank: int
    score: float
    explanations: list["Explanation"] = field(default_factory=list)
    #: the score split into terms (``score_explanation``), where the model has a decomposition
    terms: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Explanation:
    kind: str
    query: str
    text: str
    details: dict[str, Any]


def resolve_user(graph: Graph, user: str, dataset: str | None = None) -> tuple[str, str]:
    """Accept a graph id (``dataset:raw``) or a raw id with ``dataset``; return (graph id, dataset)."""
    candidates = [user] if ":" in user else []
    if dataset is not None:
        candidates.append(f"{dataset}:{user}")
    for c in candidates:
        rows = graph.serve("recommend/user_exists", user=c)
        row = rows[0] if rows else None
        if row and (dataset is None or row["dataset"] == dataset):
            return row["id"], row["dataset"]
    raise NotFound(f"unknown user {user!r}" + (f" in dataset {dataset!r}" if dataset else ""),
                   hint="pass the raw id with --dataset, or the full id '<dataset>:<raw id>'")


def resolve_item(graph: Graph, item: str, dataset: str) -> str:
    """Accept a graph id (``dataset:raw``) or a raw id of ``dataset``; return the graph id (NotFound otherwise,
    also for an item of another dataset)."""
    candidates = [item] if ":" in item else []
    candidates.append(f"{dataset}:{item}")
    for c in candidates:
        rows = graph.serve("recommend/item_exists", item=c)
        row = rows[0] if rows else None
        if row and row["dataset"] == dataset:
            return row["id"]
    raise NotFound(f"unknown item {item!r} in dataset {dataset!r}",
                   hint="pass the raw item id (as in 'kgp recommend'), or the full id '<dataset>:<raw id>'")


def check_range(name: str, value: int, low: int, high: int) -> None:
    """ConfigError (exit 2) unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def recommend(graph: Graph, user: str, *, k: int = 10, model: str | None = None, dataset: str | None = None
              ) -> tuple[str, list[Recommendation]]:
    """Top-k unseen items for ``user`` from the newest run of ``model`` (any model if ``None``).

    ``user`` is a graph id (``dataset:raw``) or a raw id with ``dataset``, as in :func:`resolve_user`; one
    read (``recommend/serve_top_k``) resolves the user, finds the run and returns its top-k."""
    check_range("k", k, 1, MAX_K)
    candidates = [user] if ":" in user else []
    if dataset is not None:
        candidates.append(f"{dataset}:{user}")
    rows = graph.serve("recommend/serve_top_k", candidates=candidates, dataset=dataset, model=model, k=k) \
        if candidates else []
    if not rows:
        raise NotFound(f"unknown user {user!r}" + (f" in dataset {dataset!r}" if dataset else ""),
                       hint="pass the raw id with --dataset, or the full id '<dataset>:<raw id>'")
    row = rows[0]
    if row["run"] is None:
        ds = row["dataset"]
        raise NotFound(f"no training run with recommendations for dataset {ds!r}"
                       + (f" and model {model!r}" if model else ""),
                       hint=f"train one first: kgp train {model or 'ikgr'} --dataset {ds}")
    return row["run"], [Recommendation(r["item"], r["title"], r["rank"], r["score"]) for r in row["items"]]


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The thread pool for the independent serving reads (made on first use, shared by every Graph)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=len(EXPLANATIONS) + 1, thread_name_prefix="kgp-explain")
        return _pool


def _submit(parallel: bool, fn: Callable[..., Any], *args: Any, **kw: Any) -> Future:
    """``fn`` on the pool, or (``parallel=False``) run here and now, wrapped in a done future."""
    if parallel:
        return _executor().submit(fn, *args, **kw)
    f: Future = Future()
    try:
        f.set_result(fn(*args, **kw))
    except BaseException as e:  # noqa: BLE001 - re-raised by f.result()
        f.set_exception(e)
    return f


_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_served: dict[tuple[int, str], NamedQuery] = {}


def serving_query(graph: Graph, name: str) -> NamedQuery:
    """The explanation query ``name`` wrapped in ``cypher/explain/serve_paths.fragment``: the same rows, with
    its path ``p`` as ``pathNodes``/``pathRels`` (what :func:`render_path` shows) instead of whole nodes."""
    key = (id(graph.registry), name)
    nq = _served.get(key)
    if nq is None:
        base = graph.query(name)
        columns = [c for c in graph.columns(name) if c != "p"]
        if not all(_COLUMN.match(c) for c in columns):
            raise QueryError(f"query {name!r}: unexpected column names {columns}")
        fragment = parse_fragment(resource_dir("cypher") / "explain" / "serve_paths.fragment")
        text = fragment.replace("{{query}}", base.text).replace("{{columns}}", "".join(f", {c}" for c in columns))
        nq = _served[key] = NamedQuery(name, text, "read", base.params, base.description, base.path)
    return nq


def parse_fragment(path) -> str:
    """A Cypher fragment file without its leading ``//`` comment lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and lines[0].lstrip().startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip()


def _serve_kind(graph: Graph, name: str, **params: Any) -> list[Any]:
    return graph.serve(serving_query(graph, name), **params)


def _explanations(kind: str, name: str, rows: list[Any]) -> list[Explanation]:
    out = []
    for row in rows:
        details = {k: v for k, v in row.items() if k not in ("p", "pathNodes", "pathRels")}
        text = render_path(row["p"]) if "p" in row.keys() else render_light_path(row["pathNodes"], row["pathRels"])
        if kind == "persona":
            text += (f"  — {details['peers']} of the {details['personaSize']} users of persona "
                     f"{details['persona']!r} took it")
        elif kind == "similar content":
            text += f"  — text cosine {details['similarity']:.2f} with the recommended item"
        elif kind == "fused knowledge":
            text += (f"  — {details['field']}: {details['phrase']!r} matches {', '.join(details['matched'])!r} of "
                     f"the item (LLM-generated from training behaviour, {details['model']})")
        elif kind == "session intents":
            tie = ("is the recommended item" if details["similarity"] >= 0.999999
                   else f"has text cosine {details['similarity']:.2f} with the recommended item")
            text += (f"  — the LLM's {details['view']}-term guess at prefix {details['prefixEnd']}: "
                     f"{details['answer']!r}, localised to {details['localized']!r} (rank {details['rank']}), which "
                     f"{tie} (generated text, {details['model']})")
        out.append(Explanation(kind, name, text, details))
    return out


def _submit_kinds(graph: Graph, user: str, item: str, limit: int, parallel: bool) -> list[Future]:
    return [_submit(parallel, _serve_kind, graph, name, user=user, item=item, limit=limit)
            for name in EXPLANATIONS.values()]


def _collect_kinds(futures: list[Future]) -> list[Explanation]:
    out: list[Explanation] = []
    for (kind, name), f in zip(EXPLANATIONS.items(), futures):
        out.extend(_explanations(kind, name, f.result()))
    return out


def explain(graph: Graph, user: str, item: str, *, limit: int = 3, parallel: bool = True) -> list[Explanation]:
    """Every kind of explanation found for (user, item), best first within each kind (ids as in the graph).

    The kinds are independent reads: with ``parallel`` (the default) they are sent at once from the pool, so
    the call waits for about the slowest; the result is the same either way, in :data:`EXPLANATIONS` order."""
    check_range("limit", limit, 1, MAX_LIMIT)
    return _collect_kinds(_submit_kinds(graph, user, item, limit, parallel))


def explain_with_score(graph: Graph, user: str, item: str, *, dataset: str, limit: int = 3,
                       model: str | None = None, run: dict[str, str] | None = None, parallel: bool = True
                       ) -> tuple["ScoreExplanation | None", list[Explanation]]:
    """:func:`score_explanation` and :func:`explain` of one pair, their reads sent at the same time."""
    check_range("limit", limit, 1, MAX_LIMIT)
    score = _submit(parallel, score_explanation, graph, user, item, dataset=dataset, model=model, run=run)
    kinds = _submit_kinds(graph, user, item, limit, parallel)
    return score.result(), _collect_kinds(kinds)


def explain_items(graph: Graph, user: str, items: list[str], *, dataset: str, run: dict[str, str],
                  limit: int = 2, parallel: bool = True
                  ) -> list[tuple["ScoreExplanation | None", list[Explanation]]]:
    """:func:`explain_with_score` for each of ``items`` (e.g. a top-k) with one run, every read sent at once."""
    check_range("limit", limit, 1, MAX_LIMIT)
    pending = [(_submit(parallel, score_explanation, graph, user, i, dataset=dataset, run=run),
                _submit_kinds(graph, user, i, limit, parallel)) for i in items]
    return [(score.result(), _collect_kinds(kinds)) for score, kinds in pending]


@dataclass
class ScoreExplanation:
    """A run's score of one (user, item) pair, split into terms (largest contribution first).

    ``score`` is the sum of ``terms``; it equals the score the run ranked by (``recommended_score`` where the
    pair is in the user's materialised top-k) up to float32 rounding. ``terms`` is empty and ``score`` the
    materialised one (or ``None``) where the model has no decomposition; ``note`` says why.
    """

    run: str
    model: str
    score: float | None
    terms: list[dict[str, Any]]
    recommended_rank: int | None = None
    recommended_score: float | None = None
    lam: float | None = None
    note: str | None = None


def score_explanation(graph: Graph, user: str, item: str, *, dataset: str, model: str | None = None,
                      run: dict[str, str] | None = None) -> ScoreExplanation | None:
    """The newest run's (of ``model``, or of any model) score of (user, item) split into its terms; ``None``
    when the dataset has no run with recommendations. ``run`` (``{"id", "model"}``, e.g. from
    :func:`recommend`'s lookup) skips looking the run up again. Ids as in the graph."""
    if run is None:
        rows = graph.serve("recommend/latest_run", dataset=dataset, model=model)
        run = rows[0].data() if rows else None
    if run is None:
        return None
    prop = schema.embedding_property(run["model"])
    rows = graph.serve("explain/score_inputs", user=user, item=item, run=run["id"], prop=prop)
    if not rows:
        return None
    row = rows[0]
    out = ScoreExplanation(run["id"], run["model"], row["recommendedScore"], [],
                           row["recommendedRank"], row["recommendedScore"])
    kind = row["kind"]
    if kind is None:
        out.note = (f"run {run['id']} recorded no decomposition of its score ({run['model']}'s score is not a "
                    "function of vectors stored in the graph, or an older kgplatform wrote the run back); the "
                    "paths are graph evidence, not the model's reason")
        return out
    if row["userVector"] is None or row["itemVector"] is None or row["userRun"] != run["id"] \
            or row["itemRun"] != run["id"]:
        out.note = (f"the {prop} vectors in the graph are not those of run {run['id']} (a later write-back "
                    "replaced them, or this pair has none); no decomposition")
        return out
    if kind == "dot":
        dot = float(np.asarray(row["userVector"], dtype=np.float64) @ np.asarray(row["itemVector"], dtype=np.float64))
        out.terms = [{"name": "embedding", "value": dot, "weight": 1.0, "dot": dot}]
    elif kind == "ikgr":
        from .models.ikgr import score_terms

        lam = float(row["lam"] or 0.0)
        vec = {x["key"]: (x["name"] or x["key"], x["vector"]) for x in row["intents"]}
        ui = [vec[k] for k in row["userIntents"] if k in vec]
        ii = [vec[k] for k in row["itemIntents"] if k in vec]
        out.lam = lam
        out.terms = score_terms(row["userVector"], row["itemVector"], lam, ui, ii)
        if not lam:
            out.note = "λ = 0 in this run (chosen on validation): intents do not enter the score"
        elif not ui:
            out.note = "the user has no intent in this run, so only the embedding term counts"
    else:
        out.note = f"unknown score kind {kind!r} on run {run['id']}"
        return out
    out.terms.sort(key=lambda t: -t["value"])
    out.score = float(sum(t["value"] for t in out.terms))
    return out


def describe_term(t: dict[str, Any]) -> str:
    """One line per term: ``+0.2841  embedding: (1-λ) × cos 0.3157``."""
    if t["name"] == "intent match":
        if t.get("user_intent") is None:
            what = t.get("note", "no intent match")
        else:
            what = (f"intent match: user intent {t['user_intent']!r} ~ item intent {t['item_intent']!r} "
                    f"(cos {t['cos']:.3f} × weight {t['weight']:.4f})")
    elif "dot" in t:
        what = "embedding: dot product of the user and item vectors"
    else:
        what = f"embedding: cos {t['cos']:.3f} × weight {t['weight']:.3f}"
    return f"{t['value']:+.4f}  {what}"


def summarize_terms(terms: list[dict[str, Any]], top: int = 3) -> str:
    """``score 0.3127 = 0.2841 embedding + 0.0286 intent 'heist'~'bank robbery' + …`` (largest first)."""
    def short(t: dict[str, Any]) -> str:
        if t["name"] == "intent match":
            if not t.get("user_intent"):
                return "0 intent (the item has none)"
            return f"{t['value']:.4f} intent {t['user_intent']!r}~{t['item_intent']!r}"
        return f"{t['value']:.4f} {t['name']}"

    total = sum(t["value"] for t in terms)
    return f"score {total:.4f} = " + " + ".join(short(t) for t in terms[:top]) + (" + …" if len(terms) > top else "")


def _node_text(n: Node | dict[str, Any]) -> str:
    label = next(iter(n.labels if isinstance(n, Node) else frozenset(n["labels"])), "?")
    name = n.get("title") or n.get("name") or n.get("label") or n.get("id") or n.get("uri")
    return f"({label} {name!r})" if label != "User" else f"(User {n.get('id')})"


def _rel_text(r: Relationship | dict[str, Any]) -> str:
    extra = r.get("predicate") or r.get("kind")
    kind = r.type if isinstance(r, Relationship) else r["type"]
    return f"{kind}{' ' + extra if extra else ''}"


def render_path(p: Path) -> str:
    """``(User ml:1)-[INTERACTED]->(Item 'Toy Story')-[FACT director]->(Entity 'John Lasseter')<-…``"""
    parts = [_node_text(p.nodes[0])]
    for rel, node in zip(p.relationships, p.nodes[1:]):
        forward = rel.start_node.element_id != node.element_id
        parts.append(f"-[{_rel_text(rel)}]->" if forward else f"<-[{_rel_text(rel)}]-")
        parts.append(_node_text(node))
    return "".join(parts)


def render_light_path(nodes: list[dict[str, Any]], rels: list[dict[str, Any]]) -> str:
    """:func:`render_path` of a path sent as ``serve_paths.fragment``'s maps (the same text)."""
    parts = [_node_text(nodes[0])]
    for rel, node in zip(rels, nodes[1:]):
        forward = rel["start"] != node["eid"]
        parts.append(f"-[{_rel_text(rel)}]->" if forward else f"<-[{_rel_text(rel)}]-")
        parts.append(_node_text(node))
    return "".join(parts)
