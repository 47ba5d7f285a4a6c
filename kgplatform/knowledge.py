"""``kgp extract --round knowledge``: fused user knowledge from training behaviours (the heterogeneous knowledge
fusion paper, §2), written to the graph as ``(:User)-[:HAS_KNOWLEDGE]->(:Knowledge)``.

What the LLM reads comes from the data contract's **training view** only (:func:`kgplatform.data.training_view`
of the exported dataset): each user's training prefix, grouped by behaviour type (``INTERACTED.behavior``;
``interacted`` where none is recorded), most recent first, with item titles and up to two KG facts per item
(DBpedia / generic entity names; Freebase ids carry no name and are left out), plus the user's profile text.
Validation and test interactions never reach a prompt (``tests/test_knowledge.py`` checks every prompt).

Why a node rather than properties on ``User``: the knowledge is generated text with its own provenance (model,
prompt version, run, input hash, status) and its own text vector; a node keeps that apart from the ingested
profile, is replaced as a whole when a user is redone, and shows as one object in Neo4j Browser.

Two **scopes**, each its own node per user:

- ``training`` (the default; ``(:User)-[:HAS_KNOWLEDGE]->(:Knowledge {id: <user>})``): fused from the whole
  training prefix. This is what models and the re-ranker read at validation and test time; it never holds a
  validation or test item.
- ``tuning`` (``(:User)-[:HAS_TUNING_KNOWLEDGE]->(:Knowledge {id: <user>#tuning, scope: 'tuning'})``): fused
  from the training prefix **before the user's last training item**, the target of the user's instruction-tuning
  example (:mod:`kgplatform.graph.instructions`). Shown in that example, it cannot name its own answer, just as
  a test profile cannot name the test target. Users with fewer than two training items have no tuning example
  and are left out.

Resumable like intent extraction: a user whose knowledge has the same key (model | prompt version | input
hash) is skipped (failed ones too, unless ``retry_failed``); each user is written in one transaction with its
status as soon as it is done; answers are cached; ``shard=(i, n)`` splits the users between processes.
"""
from __future__ import annotations

import re
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .agent.cache import ResultCache
from .agent.extract import default_cache_path
from .agent.runlog import recorded_run
from .agent.knowledge import BehaviorItem, Knowledge, UserBehaviors, fuse_knowledge, input_hash, knowledge_prompt
from .agent.llm import LLMBackend, load_backend
from .config import Settings
from .data import leave_one_out, training_view
from .data.recdata import RecData
from .data.split import Split
from .embed import load_encoder, user_text
from .errors import ConfigError
from .graph.export import export_recdata, item_titles

if TYPE_CHECKING:  # pragma: no cover
    from .db.graph import Graph

#: behaviour name for interactions without one
NO_BEHAVIOR = "interacted"
#: what a profile is fused from (see the module docstring)
SCOPES = ("training", "tuning")
_FREEBASE = "http://rdf.freebase.com/ns/"


@dataclass
class KnowledgeSummary:
    model: str
    prompt_version: str
    run_id: str
    dataset: str
    considered: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    cached: int = 0
    llm_calls: int = 0
    dropped_phrases: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    scope: str = "training"

    @property
    def users_per_s(self) -> float:
        done = self.ok + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "users_per_s": round(self.users_per_s, 4)}

    def lines(self) -> list[str]:
        return [f"knowledge ({self.scope} scope; {self.model}, prompt {self.prompt_version}, run {self.run_id})",
                f"  considered {self.considered}: ok {self.ok}, failed {self.failed}, skipped {self.skipped}"
                f" (+{self.skipped_failed} failed earlier); {self.llm_calls} LLM calls, {self.cached} cached;"
                f" {self.users_per_s:.2f} users/s over {self.seconds:.1f}s"]


def entity_name(key: str) -> str | None:
    """A readable name for a KG entity key: the DBpedia resource / category name, a generic entity's URI tail;
    ``None`` for a Freebase machine id."""
    if key.startswith(_FREEBASE):
        return None
    tail = re.split(r"[/#]", key.rstrip("/"))[-1]
    tail = tail.split("Category:", 1)[-1]
    name = " ".join(tail.replace("_", " ").split())
    return name or None


def item_facts(train: RecData) -> dict[int, list[str]]:
    """Item index → names of its KG neighbours that are not items, in triple order."""
    out: dict[int, list[str]] = {}
    if not train.has_kg or not train.entity_ids:
        return out
    n_items = train.num_items
    for h, t in zip(train.kg_heads.tolist(), train.kg_tails.tolist()):
        for item, other in ((h, t), (t, h)):
            if item < n_items <= other:
                name = entity_name(train.entity_ids[other - n_items])
                if name and name not in out.setdefault(item, []):
                    out[item].append(name)
    return out


def user_behaviors(data: RecData, split: Split, titles: dict[str, str],
                   profiles: dict[str, str] | None = None, *, scope: str = "training") -> list[UserBehaviors]:
    """Every user's training behaviours as text parts (nothing from validation or test: the training view).
    With ``scope="tuning"`` each user's last training item is left out too, and users with fewer than two
    training items are skipped (they have no tuning example)."""
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    train = training_view(data, split)
    facts = item_facts(train)
    names = train.behavior_names
    drop = 1 if scope == "tuning" else 0
    out = []
    for u, uid in enumerate(train.user_ids):
        lo, hi = int(train.seq_indptr[u]), int(train.seq_indptr[u + 1])
        if drop and hi - lo < 2:
            continue
        hi -= drop
        items = train.seq_items[lo:hi].tolist()
        codes = train.seq_behavior[lo:hi].tolist() if train.seq_behavior is not None else [-1] * len(items)
        groups: dict[str, list[BehaviorItem]] = {}
        for i, c in zip(reversed(items), reversed(codes)):  # most recent first
            iid = train.item_ids[i]
            groups.setdefault(names[c] if c >= 0 else NO_BEHAVIOR, []).append(
                BehaviorItem(titles.get(iid) or iid.split(":", 1)[-1], facts.get(i, [])))
        out.append(UserBehaviors(uid, groups, (profiles or {}).get(uid) or "", total=len(items)))
    return out


def knowledge_node_id(user: str, scope: str = "training") -> str:
    """The ``(:Knowledge)`` id of a user's profile of a scope."""
    return user if scope == "training" else f"{user}#{scope}"


def _shard_of(uid: str, n: int) -> int:
    return zlib.crc32(uid.encode("utf-8")) % n


def extract_knowledge(graph: Graph, settings: Settings, dataset: str, *, limit: int | None = None,
                      shard: tuple[int, int] | None = None, model: str | None = None, endpoint: str | None = None,
                      backend: LLMBackend | None = None, retry_failed: bool = False, redo: bool = False,
                      use_cache: bool = True, ids: list[str] | None = None, scope: str = "training",
                      log=None) -> KnowledgeSummary:
    """Fuse and store knowledge for a dataset's users (see the module docstring).

    Args:
        limit: only the first ``limit`` users by id (stable across re-runs).
        shard: ``(i, n)``: only users whose id hashes (CRC-32) to ``i`` modulo ``n``; applied after ``limit``.
        ids: only these user ids (applied before ``limit``).
        redo: ask again for users already done with the same model, prompt and input.
        scope: ``training`` or ``tuning`` (see the module docstring).
    """
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if limit is not None and limit < 0:
        raise ConfigError("limit must be >= 0")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")
    started = time.perf_counter()
    data, _ = export_recdata(graph, dataset, intents=False, text=False, progress=False)
    split = leave_one_out(data)
    profiles = {r["id"]: user_text(r["props"] or {}) or "" for r in graph.read("knowledge/user_profiles",
                                                                                dataset=dataset)}
    everyone = user_behaviors(data, split, item_titles(graph, dataset), profiles, scope=scope)
    if ids is not None:
        wanted = set(ids)
        everyone = [b for b in everyone if b.user in wanted]
    if limit is not None:
        everyone = everyone[:limit]
    if shard is not None:
        everyone = [b for b in everyone if _shard_of(b.user, shard[1]) == shard[0]]

    be = backend or load_backend(settings, model, endpoint)
    _, version = knowledge_prompt()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    summary = KnowledgeSummary(be.model_id, version, f"knowledge-{stamp}-{uuid.uuid4().hex[:6]}", dataset,
                               considered=len(everyone), scope=scope)
    existing = {r["id"]: r for r in graph.read("knowledge/existing", dataset=dataset, scope=scope)}
    todo = []
    for b in everyone:
        key = f"{be.model_id}|{version}|{input_hash(b)}"
        prev = existing.get(knowledge_node_id(b.user, scope))
        if prev is not None and prev["key"] == key and not redo:
            if prev["status"] == "ok":
                summary.skipped += 1
                continue
            if not retry_failed:
                summary.skipped_failed += 1
                continue
        todo.append(b)

    encoder = load_encoder(settings) if todo else None
    cache = ResultCache(default_cache_path(settings) if use_cache else None)

    def write(k: Knowledge) -> None:
        summary.llm_calls += k.attempts
        summary.dropped_phrases += k.dropped
        vector = None
        if k.ok:
            summary.ok += 1
            vector = [float(x) for x in encoder.encode([k.text])[0]]
        else:
            summary.failed += 1
            if len(summary.failures) < 50:
                summary.failures.append({"id": k.user, "reason": k.error or ""})
        query = "knowledge/merge_knowledge" if scope == "training" else "knowledge/merge_tuning_knowledge"
        graph.write(query, run=summary.run_id, row={
            "user": k.user, "id": knowledge_node_id(k.user, scope), "scope": scope, "dataset": dataset,
            "key": f"{k.model}|{k.prompt_version}|{k.input_hash}",
            "status": "ok" if k.ok else "failed", "error": k.error, "likes": k.likes, "dislikes": k.dislikes,
            "contexts": k.contexts, "leanings": k.leanings, "likesText": ", ".join(k.likes[:3]), "text": k.text,
            "model": k.model, "promptVersion": k.prompt_version, "inputHash": k.input_hash, "vector": vector})
        if log:
            log(f"[knowledge:{scope}] {k.user}: {'ok' if k.ok else 'failed'}"
                f" ({summary.ok + summary.failed}/{len(todo)})")

    def run_props() -> dict[str, Any]:
        return {"round": "knowledge", "scope": scope, "model": summary.model,
                "promptVersion": summary.prompt_version,
                "dataset": dataset, "ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped,
                "seconds": round(summary.seconds, 3), "llmCalls": summary.llm_calls}

    with recorded_run(graph, summary, run_props, cache=cache, started=started):
        fuse_knowledge(be, todo, cache=cache, retries=settings.llm_retries, on_result=write)
    return summary


def knowledge_report(graph: Graph, dataset: str, *, top: int = 3, sample: int = 10, seed: int = 0) -> dict[str, Any]:
    """What the graph holds of a dataset's fused knowledge (``kgp extract --round knowledge --report``): users with
    a profile and failed ones, and :func:`kgplatform.agent.quality.knowledge_quality` against each user's ``top``
    reference words of their **training** items only: genres where the dataset's items have them, else category
    labels (DBpedia ``subject`` facts)."""
    from .agent.quality import UserKnowledge, item_rows, knowledge_quality, top_reference_words

    status = {r["id"]: r["status"] for r in graph.read("knowledge/existing", dataset=dataset, scope="training")}
    profiles = {r["user"]: r for r in graph.read("knowledge/user_knowledge", dataset=dataset)}
    data, _ = export_recdata(graph, dataset, intents=False, text=False, progress=False)
    train = training_view(data, leave_one_out(data))
    items = {r.id: r for r in item_rows(graph, dataset)}
    by_genre = any(r.genres for r in items.values())  # genres where the dataset has them, else categories
    users = []
    for u, uid in enumerate(train.user_ids):
        if uid not in profiles:
            continue
        seq = [items.get(train.item_ids[i]) for i in train.seq_items[int(train.seq_indptr[u]):
                                                                     int(train.seq_indptr[u + 1])].tolist()]
        seq = [x for x in seq if x is not None]
        p = profiles[uid]
        users.append(UserKnowledge(uid, list(p["likes"] or []), list(p["dislikes"] or []),
                                   top_reference_words(((x.genres if by_genre else x.reference) for x in seq),
                                                       top),
                                   [x.title for x in seq if x.title]))
    models = sorted({str(r["model"]) for r in profiles.values()})
    return {"dataset": dataset, "users_in_dataset": data.num_users,
            "users_ok": sum(s == "ok" for s in status.values()),
            "users_failed": sum(s == "failed" for s in status.values()), "models": models,
            "reference_top_words": top, "reference": "genres" if by_genre else "categories",
            **knowledge_quality(users, sample=sample, seed=seed)}


__all__ = ["SCOPES", "KnowledgeSummary", "entity_name", "extract_knowledge", "item_facts", "knowledge_node_id",
           "knowledge_report", "user_behaviors"]
