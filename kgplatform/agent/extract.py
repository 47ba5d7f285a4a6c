"""Two-round intent extraction (IKGR §4.1–4.3).

Round 1 (``round=1``, exact intents): for every item — and every user that has profile text — a LangChain
chain (prompt template → chat model → structured output) returns up to five short intent phrases. They are
normalised, merged case-insensitively into ``(:Intent {key, name})`` and linked with
``(:Item)-[:SATISFIES {kind: 'exact'}]->`` / ``(:User)-[:HAS_INTENT {kind: 'exact'}]->``, each edge carrying
``model``, ``promptVersion`` and ``runId``. Domain-glossary explanations for terms found in the node's text
are appended under ``### Knowledge Context:``.

Round 2 (``round=2``, related intents): every node's text vector is matched against the intent vector index
(``db.index.vector.queryNodes``); the top-K intents the node does *not* already have as exact intents are
offered as options, and the model picks the most relevant. The picks must be a subset of the options; they
are linked with ``kind: 'related'`` and the retrieval ``score``. New items/users simply run both rounds and
join the existing pool. Missing or stale text vectors (of the intents, and of the nodes being processed)
are computed first. A node is offered options only after round 1 has seen it (else ``pending_round1``).

Robustness:

- An unusable answer is retried (``Settings.llm_retries`` times, sampling at temperature 0.7 with a fixed
  seed), then the node is marked ``extractStatus``/``relatedStatus = 'failed'`` with the reason in
  ``extractError``/``relatedError``, and the run goes on. A *backend* failure (endpoint down, model crash)
  records nothing on the node (the next run simply retries it); five in a row abort the run.
- Each node's result is written in one transaction together with its status and key
  ``"<model>|<promptVersion>|<inputHash>"`` (``extractKey``; round 2's ``relatedKey`` adds ``|k<K>``), where
  the input hash covers the node's prompt block (text and glossary context). Redoing a node's round 1
  replaces its edges and voids its round-2 result; intents no node links to any more are removed. A node
  whose key matches and whose status is ``ok`` is skipped; one that failed with the same key is skipped
  unless ``retry_failed``.
  So a run killed at any point and started again ends with the same graph as an uninterrupted run (edges
  and intents are MERGEd; a redone node's old edges are replaced, never duplicated).
- Validated answers are cached in SQLite (``<home>/cache/llm-results.sqlite``) by a hash of model, prompt
  version and the exact rendered messages, so re-runs (even against a rebuilt graph) are cheap.

LLM output never becomes Cypher: phrases fill pydantic models that fixed named queries write.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import ValidationError

from .. import schema
from ..config import Settings
from ..embed import embed_graph, item_text, load_encoder, text_hash, user_text
from ..errors import ConfigError, ExtractionError
from .cache import ResultCache, cache_key
from .glossary import Glossary, load_glossary
from .llm import LLMBackend, load_backend
from .prompts import PromptSet, describe, example_keys, format_options, round1_prompts, round2_prompts
from .runlog import recorded_run
from .schemas import (
    MAX_RELATED,
    IntentList,
    InvalidAnswer,
    normalize_phrases,
    related_schema,
    validate_selection,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph

OK = "ok"
FAILED = "failed"
#: Abort the run after this many consecutive backend errors (not bad answers: a dead endpoint).
MAX_CONSECUTIVE_BACKEND_ERRORS = 5
_UNSET: Any = object()

_AREA = {schema.ITEM: "item", schema.USER: "user"}
_TEXT = {schema.ITEM: item_text, schema.USER: user_text}


@dataclass
class ExtractSummary:
    """What one :func:`extract` run did (the CLI prints it; ``to_dict`` for ``--json``)."""

    round: int
    model: str
    prompt_version: str
    run_id: str
    dataset: str | None = None
    considered: int = 0  # nodes looked at (after ``limit``)
    ok: int = 0  # nodes extracted and written in this run
    failed: int = 0  # nodes marked failed in this run (unusable answers after all retries)
    errors: int = 0  # nodes left pending because the backend failed (retried by the next run)
    skipped: int = 0  # already done with the same model + prompt version + input
    skipped_failed: int = 0  # failed before with the same key (use retry_failed to try again)
    no_text: int = 0  # users without profile text, nodes without a text vector
    pending_round1: int = 0  # round 2 only: nodes round 1 has not seen yet
    no_options: int = 0  # round 2 only: nothing left to offer
    cached: int = 0  # answers replayed from the result cache
    llm_calls: int = 0
    retries: int = 0
    rejected_copies: int = 0  # answers rejected for repeating the few-shot examples
    phrases: int = 0  # round 1: phrases the model proposed (every attempt, cached answers included)
    dropped_phrases: int = 0  # phrases dropped by normalisation
    dropped_reasons: dict[str, int] = field(default_factory=dict)  # reason → phrases dropped for it
    links: int = 0  # intent edges written
    seconds: float = 0.0
    llm_seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)  # first 50 {id, reason}

    @property
    def processed(self) -> int:
        return self.ok + self.failed + self.errors

    @property
    def nodes_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["processed"] = self.processed
        d["nodes_per_s"] = round(self.nodes_per_s, 3)
        d["seconds"] = round(self.seconds, 3)
        d["llm_seconds"] = round(self.llm_seconds, 3)
        return d

    def lines(self) -> list[str]:
        """A short human summary."""
        return [
            f"round {self.round} ({self.model}, prompt {self.prompt_version}, run {self.run_id})",
            f"  considered {self.considered}: ok {self.ok}, failed {self.failed}, backend errors {self.errors},"
            f" skipped {self.skipped}"
            f" (+{self.skipped_failed} failed earlier), no text {self.no_text}"
            + (f", waiting for round 1 {self.pending_round1}, no options {self.no_options}" if self.round == 2 else ""),
            f"  {self.links} intent links; {self.llm_calls} LLM calls ({self.retries} retries, {self.cached} cached);"
            f" {self.nodes_per_s:.2f} nodes/s over {self.seconds:.1f}s",
        ]


@dataclass
class _Node:
    label: str
    id: str
    text: str
    title: str | None
    description: str
    key: str
    text_hash: str | None = None


def _hash(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()[:16]


def default_cache_path(settings: Settings) -> Path:
    return settings.home / "cache" / "llm-results.sqlite"


def _new_run_id(round_: int) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"extract-r{round_}-{stamp}-{uuid.uuid4().hex[:6]}"


#: the orders a round can visit nodes in (``extract(order=…)``)
ORDERS = ("id", "popular")


def _pages(graph: Graph, label: str, dataset: str | None, page: int = 1000,
           order: str = "id") -> Iterator[dict[str, Any]]:
    """The nodes of ``label`` by id, or (``order="popular"``) by their training interactions, most first (ties
    by id): a limited budget (``--limit``, or a run stopped early) then covers the nodes that matter most.
    Training counts leave out each user's last two interactions (validation and test of the leave-one-out
    split), so the order reflects no held-out interaction."""
    if order == "popular":
        counts = {r["id"]: r["n"] for r in graph.read("agent/training_counts", dataset=dataset, label=label)}
        rows = list(_pages(graph, label, dataset, page))
        rows.sort(key=lambda r: (-counts.get(r["id"], 0), r["id"]))
        yield from rows
        return
    after = ""
    while True:
        rows = graph.read(f"agent/page_{_AREA[label]}s", dataset=dataset, after=after, page=page)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["id"]


def extract(
    graph: Graph,
    settings: Settings,
    round: int = 1,  # noqa: A002 - the paper's word
    dataset: str | None = None,
    limit: int | None = None,
    items_only: bool = False,
    model: str | None = None,
    endpoint: str | None = None,
    *,
    glossary: str | Path | Glossary | None = _UNSET,
    related_k: int | None = None,
    retry_failed: bool = False,
    use_cache: bool = True,
    progress: bool = True,
    backend: LLMBackend | None = None,
    shard: tuple[int, int] | None = None,
    redo: bool = False,
    ids: Sequence[str] | None = None,
    parallel: int | None = None,
    order: str = "id",
) -> ExtractSummary:
    """Run one extraction round over the graph's items (and users with profile text).

    Args:
        round: 1 = exact intents, 2 = related intents via retrieval over the existing pool.
        dataset: restrict to one dataset's items/users.
        limit: consider only the first ``limit`` nodes of each label (in ``order``) — stable across re-runs.
        items_only: skip users.
        model: bundled model name or GGUF path (default ``settings.llm_model``).
        endpoint: OpenAI-compatible base URL (default ``settings.llm_endpoint``); ``model`` is then the
            served model's name.
        glossary: a :class:`Glossary`, a bundled name (``movies``, ``beauty``, ``ecommerce``), a path, or
            ``None`` for none; default ``settings.glossary``, else the dataset's domain glossary
            (:func:`domain_glossary`: movies for MovieLens, beauty for Amazon Beauty, ecommerce otherwise).
        related_k: round-2 candidates per node (default ``settings.related_k``, 100 as in the paper).
        retry_failed: try again nodes that failed earlier with the same model/prompt/input.
        use_cache: read/write the result cache.
        backend: an already built :class:`LLMBackend` (tests, benchmarks); overrides model/endpoint.
        shard: ``(i, n)``: only the nodes whose id hashes (CRC-32) to ``i`` modulo ``n``, so ``n`` processes
            can share a round without overlap; applied after ``limit``.
        redo: also redo nodes already done with the same model, prompt and input (with ``use_cache=False``
            the model is asked again, e.g. to measure it).
        ids: only these node ids (e.g. the new items of ``kgp cold-start``); applied before ``limit``.
        parallel: nodes answered together (default ``settings.llm_parallel``): sequences of the fast llama.cpp
            engine, which gives the plain chain's greedy answers (0 = the plain chain, one node at a time), or
            requests in flight per endpoint. Ignored with ``backend``.
        order: ``id`` (default) or ``popular``: nodes with the most training interactions first (items: users
            who took them; users: their training interactions), so a run cut short, or ``limit``, covers the
            behaviour that matters most first.
    """
    if order not in ORDERS:
        raise ConfigError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if round not in (1, 2):
        raise ConfigError(f"round must be 1 or 2, not {round!r}")
    if limit is not None and limit < 0:
        raise ConfigError("limit must be >= 0")
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be I/N with 0 <= I < N, got {shard[0]}/{shard[1]}")
    started = time.perf_counter()
    if glossary is _UNSET:
        glossary = settings.glossary if settings.glossary is not None else domain_glossary(graph, dataset)
    gloss = glossary if isinstance(glossary, Glossary) or glossary is None else load_glossary(glossary)
    prompts = round1_prompts() if round == 1 else round2_prompts()
    labels = [schema.ITEM] if items_only else [schema.ITEM, schema.USER]
    k = int(related_k if related_k is not None else settings.related_k)
    if round == 2 and k < 1:
        raise ConfigError("related_k must be >= 1")

    if round == 2:
        pool = graph.read_one("agent/count_intents") or {}
        if not pool.get("intents"):
            raise ExtractionError("there are no intents yet", hint="run round 1 first (kgp extract --round 1)")
        # Round 2 retrieves by text vectors: bring the intents' vectors up to date first (the nodes'
        # own vectors are refreshed per label below, only for the nodes this run processes).
        embed_graph(graph, settings, dataset, progress=progress, labels=[schema.INTENT])

    be = backend or load_backend(settings, model, endpoint, parallel=parallel)
    summary = ExtractSummary(round, be.model_id, prompts.version, _new_run_id(round), dataset)
    cache = ResultCache(default_cache_path(settings) if use_cache else None)
    streak = [0]  # consecutive backend errors, across labels

    def run_props() -> dict[str, Any]:
        return {"round": round, "model": summary.model, "promptVersion": summary.prompt_version,
                "dataset": dataset, "ok": summary.ok, "failed": summary.failed, "errors": summary.errors,
                "skipped": summary.skipped, "seconds": _r3(summary.seconds), "llmCalls": summary.llm_calls}

    with recorded_run(graph, summary, run_props, cache=cache, started=started):
        for label in labels:
            todo = _select(graph, summary, label, dataset, limit, gloss, prompts, k, retry_failed, shard, redo,
                           None if ids is None else frozenset(ids), order)
            if round == 2:
                _ensure_vectors(graph, settings, label, todo)
            _run_label(graph, settings, summary, be, prompts, label, todo, k, cache, progress, streak)
        if round == 1:
            graph.write("agent/delete_orphan_intents")
    return summary


#: bundled glossary per dataset kind (the loader that ingested it), used when none is given
DOMAIN_GLOSSARIES = {"movielens": "movies", "amazon-beauty": "beauty", "amazon-games": "ecommerce",
                     "amazon": "ecommerce", "generic": "ecommerce"}


def domain_glossary(graph: Graph, dataset: str | None) -> str | None:
    """The bundled glossary for ``dataset``'s domain (:data:`DOMAIN_GLOSSARIES` by the kind it was ingested
    as); ``None`` without a dataset or for an unknown kind."""
    if dataset is None:
        return None
    row = graph.read_one("agent/dataset_kind", dataset=dataset)
    return DOMAIN_GLOSSARIES.get(row["kind"]) if row and row["kind"] else None


def _r3(x: float) -> float:
    return float(f"{x:.3f}")


def extract_all(graph: Graph, settings: Settings, **kwargs: Any) -> list[ExtractSummary]:
    """Round 1 then round 2 with the same options (what a new dataset, or new items/users, need)."""
    return [extract(graph, settings, round=1, **kwargs), extract(graph, settings, round=2, **kwargs)]


def _select(graph: Graph, summary: ExtractSummary, label: str, dataset: str | None, limit: int | None,
            gloss: Glossary | None, prompts: PromptSet, k: int, retry_failed: bool,
            shard: tuple[int, int] | None = None, redo: bool = False,
            ids: frozenset[str] | None = None, order: str = "id") -> list[_Node]:
    """The nodes of ``label`` this run must (re)do, in ``order``; counts the rest in ``summary``."""
    todo: list[_Node] = []
    seen = 0
    for row in _pages(graph, label, dataset, order=order):
        if ids is not None and row["id"] not in ids:
            continue
        if limit is not None and seen >= limit:
            break
        seen += 1
        if shard is not None and zlib.crc32(str(row["id"]).encode("utf-8")) % shard[1] != shard[0]:
            continue
        summary.considered += 1
        text = _TEXT[label](row["props"])
        if not text:
            summary.no_text += 1
            continue
        context = gloss.context(text) if gloss else ""
        description = describe(label, text, context)
        if summary.round == 1:
            key = f"{summary.model}|{summary.prompt_version}|{_hash(description)}"
            status, prev = row.get("extractStatus"), row.get("extractKey")
        else:
            if row.get("extractStatus") is None:
                summary.pending_round1 += 1
                continue
            key = f"{summary.model}|{summary.prompt_version}|{_hash(description)}|k{k}"
            status, prev = row.get("relatedStatus"), row.get("relatedKey")
        if prev == key and status == OK and not redo:
            summary.skipped += 1
            continue
        if prev == key and status == FAILED and not retry_failed:
            summary.skipped_failed += 1
            continue
        title = (row["props"].get("title") or None) if label == schema.ITEM else None
        todo.append(_Node(label, row["id"], text, title, description, key, row.get("textHash")))
    return todo


def _ensure_vectors(graph: Graph, settings: Settings, label: str, todo: list[_Node]) -> None:
    """Encode the text of the nodes about to be processed whose ``textHash`` is missing or stale."""
    if not todo:
        return
    enc = load_encoder(settings)
    stale = [(n, text_hash(enc.name, n.text)) for n in todo]
    stale = [(n, h) for n, h in stale if n.text_hash != h]
    if not stale:
        return
    vectors = enc.encode([n.text for n, _ in stale])
    graph.write_rows(f"embed/set_{_AREA[label]}_embeddings",
                     [{"key": n.id, "hash": h, "embedding": v.tolist()} for (n, h), v in zip(stale, vectors)],
                     batch_size=1000)


def _run_label(graph: Graph, settings: Settings, summary: ExtractSummary, be: LLMBackend, prompts: PromptSet,
               label: str, todo: list[_Node], k: int, cache: ResultCache, progress: bool, streak: list[int]
               ) -> None:
    if not todo:
        return
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"round {summary.round} {label.lower()}s", unit=label.lower(),
                   file=sys.stderr, dynamic_ncols=True)
    template = prompts.templates[label]
    examples = example_keys()
    area = _AREA[label]
    size = max(1, be.group_size)
    try:
        for start in range(0, len(todo), size):
            group = todo[start:start + size]
            if summary.round == 1:
                results = _round1_group(group, be, template, summary, settings, cache, examples)
                query = f"agent/write_{area}_exact"
            else:
                results = _round2_group(graph, group, be, template, summary, settings, cache, k)
                query = f"agent/write_{area}_related"
            # written in the group's order (intents merge keeping the first surface form: a fixed order keeps
            # the graph the same whatever the batching or which endpoint answered first)
            for node, (row, backend_error) in zip(group, results):
                _record(graph, summary, query, node, row, backend_error, streak)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(ok=summary.ok, failed=summary.failed, refresh=False)
    finally:
        if bar is not None:
            bar.close()


def _record(graph: Graph, summary: ExtractSummary, query: str, node: _Node, row: dict[str, Any],
            backend_error: str | None, streak: list[int]) -> None:
    if backend_error:
        # The backend itself failed (endpoint down, model crash): nothing is recorded on the node, so the next
        # run tries it again without --retry-failed.
        summary.errors += 1
        if len(summary.failures) < 50:
            summary.failures.append({"id": node.id, "reason": backend_error})
    else:
        # The node's edges, intents and status in one transaction: a kill leaves it done or untouched.
        graph.write_rows(query, [row], model=summary.model, promptVersion=summary.prompt_version,
                         runId=summary.run_id)
        if row["status"] == OK:
            summary.ok += 1
            summary.links += len(row["intents"])
        else:
            summary.failed += 1
            if len(summary.failures) < 50:
                summary.failures.append({"id": node.id, "reason": row["error"]})
    streak[0] = streak[0] + 1 if backend_error else 0
    if streak[0] >= MAX_CONSECUTIVE_BACKEND_ERRORS:
        raise ExtractionError(
            f"the LLM backend failed {streak[0]} times in a row: {backend_error}",
            hint="check the endpoint/model; nodes done so far are kept and the run can be resumed",
        )


def _messages_key(round_no: int, be: LLMBackend, prompts_version: str, template, variables: dict[str, Any],
                  extra: str = "") -> str:
    msgs = template.format_messages(**variables)
    rendered = json.dumps([[m.type, m.content] for m in msgs], ensure_ascii=False)
    return cache_key(f"r{round_no}", be.model_id, prompts_version, rendered, extra)


def _ask_with_retries(be: LLMBackend, template, variables: dict[str, Any], schema_: Any, settings: Settings,
                      summary: ExtractSummary, check, first: Any = _UNSET
                      ) -> tuple[Any, list[Any] | None, str | None, str | None]:
    """Call the model up to ``1 + llm_retries`` times until ``check(answer)`` accepts it. ``first``: the
    first attempt's answer (or exception), already asked for in a batch (:meth:`LLMBackend.ask_many`).

    Returns ``(checked, raw_answer, error, backend_error)``; ``checked`` is ``None`` on failure.
    """
    error = backend_error = None
    for attempt in range(settings.llm_retries + 1):
        if attempt:
            summary.retries += 1
        summary.llm_calls += 1
        t0 = time.perf_counter()
        try:
            if attempt == 0 and first is not _UNSET:
                if isinstance(first, BaseException):
                    raise first
                answer = first
            else:
                answer = be.ask(template, variables, schema_, attempt)
            checked = check(answer)
            return checked, answer, None, None
        except (InvalidAnswer, ValidationError) as e:
            error = f"attempt {attempt + 1}: {_one_line(e)}"
            backend_error = None
            if isinstance(e, InvalidAnswer) and "repeat the few-shot" in str(e):
                summary.rejected_copies += 1
        except Exception as e:  # noqa: BLE001 - backend failure: recorded on the node, run goes on
            error = backend_error = f"attempt {attempt + 1}: {type(e).__name__}: {_one_line(e)}"
        finally:
            summary.llm_seconds += time.perf_counter() - t0
    return None, None, error, backend_error


def _one_line(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return s[:300]


def _first_answers(be: LLMBackend, template, pending: list[dict[str, Any]], schemas: Any,
                   summary: ExtractSummary) -> list[Any]:
    """The first attempt of every pending node of a group, asked together through :meth:`LLMBackend.ask_many`
    (the fast llama.cpp engine or the endpoint pool). ``_UNSET`` for each without either, or for a lone node
    of a backend that has neither: the node then asks on its own."""
    if not pending or not (be.batched or len(pending) > 1):
        return [_UNSET] * len(pending)
    t0 = time.perf_counter()
    try:
        return be.ask_many(template, pending, schemas)
    finally:
        summary.llm_seconds += time.perf_counter() - t0


def _round1_group(nodes: list[_Node], be: LLMBackend, template, summary: ExtractSummary, settings: Settings,
                  cache: ResultCache, examples: frozenset[str]) -> list[tuple[dict[str, Any], str | None]]:
    checks, keys, norms = [], [], []
    for node in nodes:
        def check(answer: list[Any], node: _Node = node):
            summary.phrases += len(answer) if isinstance(answer, list) else 0
            try:
                norm = normalize_phrases(answer, source_text=node.text, title=node.title, example_keys=examples)
            except InvalidAnswer as e:
                for _, reason in getattr(e, "dropped", []):
                    summary.dropped_reasons[reason] = summary.dropped_reasons.get(reason, 0) + 1
                raise
            summary.dropped_phrases += len(norm.dropped)
            for _, reason in norm.dropped:
                summary.dropped_reasons[reason] = summary.dropped_reasons.get(reason, 0) + 1
            return norm

        variables = {"description": node.description}
        ck = _messages_key(1, be, summary.prompt_version, template, variables)
        norm = None
        cached = cache.get(ck)
        if cached is not None:
            try:
                norm = check(cached)
            except InvalidAnswer:
                norm = None
        checks.append(check)
        keys.append(ck)
        norms.append(norm)
    pending = [i for i, n in enumerate(norms) if n is None]
    firsts = _first_answers(be, template, [{"description": nodes[i].description} for i in pending], IntentList,
                            summary)
    out: list[tuple[dict[str, Any], str | None]] = []
    first_of = dict(zip(pending, firsts))
    for i, node in enumerate(nodes):
        norm, error, backend_error = norms[i], None, None
        if norm is None:
            norm, answer, error, backend_error = _ask_with_retries(
                be, template, {"description": node.description}, IntentList, settings, summary, checks[i],
                first=first_of[i])
            if norm is not None:
                cache.put(keys[i], answer, round=1, model=be.model_id, prompt_version=summary.prompt_version)
        if norm is None:
            out.append(({"id": node.id, "status": FAILED, "error": error, "key": node.key, "intents": []},
                        backend_error))
            continue
        intents = [{"key": x.key, "name": x.name} for x in norm.intents]
        out.append(({"id": node.id, "status": OK, "error": None, "key": node.key, "intents": intents}, None))
    return out


def _fit_options(be: LLMBackend, template, description: str, options: list[str]) -> list[str]:
    """Drop the least similar options until the prompt fits the context window (llama.cpp only)."""
    if be.n_ctx is None or be.count_tokens("x") is None:
        return options
    budget = be.n_ctx - (be.max_tokens or 96) - 64
    while len(options) > 5:
        msgs = template.format_messages(description=description, options=format_options(options))
        n = sum((be.count_tokens(m.content) or 0) + 8 for m in msgs)
        if n <= budget:
            break
        options = options[: max(5, int(len(options) * 0.8))]
    return options


def _round2_group(graph: Graph, nodes: list[_Node], be: LLMBackend, template, summary: ExtractSummary,
                  settings: Settings, cache: ResultCache, k: int) -> list[tuple[dict[str, Any], str | None]]:
    prepared: list[dict[str, Any] | None] = []
    for node in nodes:
        rows = graph.read(f"agent/retrieve_{_AREA[node.label]}_options", id=node.id, k=k)
        if not rows:
            summary.no_options += 1
            prepared.append(None)
            continue
        names = _fit_options(be, template, node.description, [r["name"] for r in rows])
        kept = set(names)
        offered = {r["key"]: float(r["score"]) for r in rows if r["name"] in kept}
        variables = {"description": node.description, "options": format_options(names)}
        ck = _messages_key(2, be, summary.prompt_version, template, variables)

        def check(answer: list[Any], offered: dict[str, float] = offered):
            return validate_selection(answer, offered, MAX_RELATED)

        picked = None
        cached = cache.get(ck)
        if cached is not None:
            try:
                picked = check(cached)
            except InvalidAnswer:
                picked = None
        prepared.append({"variables": variables, "schema": related_schema(names, MAX_RELATED), "check": check,
                         "key": ck, "picked": picked})
    pending = [i for i, p in enumerate(prepared) if p is not None and p["picked"] is None]
    firsts = _first_answers(be, template, [prepared[i]["variables"] for i in pending],
                            [prepared[i]["schema"] for i in pending], summary)
    first_of = dict(zip(pending, firsts))
    out: list[tuple[dict[str, Any], str | None]] = []
    for i, node in enumerate(nodes):
        p = prepared[i]
        if p is None:
            out.append(({"id": node.id, "status": OK, "error": None, "key": node.key, "intents": []}, None))
            continue
        picked, error, backend_error = p["picked"], None, None
        if picked is None:
            picked, answer, error, backend_error = _ask_with_retries(
                be, template, p["variables"], p["schema"], settings, summary, p["check"], first=first_of[i])
            if picked is not None:
                cache.put(p["key"], answer, round=2, model=be.model_id, prompt_version=summary.prompt_version)
        if picked is None:
            out.append(({"id": node.id, "status": FAILED, "error": error, "key": node.key, "intents": []},
                        backend_error))
            continue
        out.append(({"id": node.id, "status": OK, "error": None, "key": node.key,
                     "intents": [{"key": x.key, "score": x.score} for x in picked]}, None))
    return out
