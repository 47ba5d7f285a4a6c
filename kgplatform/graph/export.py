"""Export a dataset's subgraph from Neo4j into the data contract (:class:`~kgplatform.data.RecData`), PyG
``HeteroData`` (the training graph by default; the full graph only as the explicitly named serving export) and
RecBole atomic files.

How the export reads (``export_recdata``): a key pass reads the item and user ids in id order
(``export/item_ids``, ``export/user_ids``, one list per page), which splits each into key ranges of ``page`` ids.
Then one *columnar* query per key range (``export/item_columns``, ``export/user_columns``) returns a single row
of lists aligned by node: the interactions of a page of users as item positions (the item id -> position map
travels as a parameter, so integers come back, not id strings), their timestamps, sessions and intents; the KG
facts and intents of a page of items. The ranges are read by ``workers`` threads at once (read transactions,
one session each), at most ``workers + 1`` pages in flight, so memory holds a few pages of lists, never one
giant eager result nor a record per edge. Everything runs in read transactions.

Index maps are stable: users and items are numbered in id order, KG entities in order of first appearance over
items in id order (facts of one item in the order the store returns them), relations and intents sorted by
name. The result is bit-identical to the row-by-row exporter it replaced (``_export_recdata_rowwise``, kept as
the reference in ``tests/graph/test_export_columnar.py`` and ``benchmarks/export.py``).
"""
from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..db.graph import Graph
from ..errors import NotFound, TrainingError
from ..data import EXACT_KIND, RELATED_KIND, RecData, leave_one_out, serving_graph, training_graph, training_view

KIND_CODES = {"exact": EXACT_KIND, "related": RELATED_KIND}
#: "no timestamp" in the columnar interaction query (validated timestamps lie within the years 1-9999)
_NO_TS = -(2**62)


@dataclass
class ExportReport:
    seconds: float
    rows: int
    edges: int

    @property
    def edges_per_s(self) -> float:
        return self.edges / self.seconds if self.seconds else 0.0


def export_recdata(
    graph: Graph,
    dataset: str,
    *,
    kg: bool = True,
    intents: bool = True,
    text: bool = True,
    since: float | None = None,
    until: float | None = None,
    sessions: bool = True,
    page: int = 5000,
    workers: int = 2,
    progress: bool | None = None,
    knowledge: bool = False,
    session_intents: bool = False,
    encode_answers: Callable[[Sequence[str]], Any] | None = None,
) -> tuple[RecData, ExportReport]:
    """Read one dataset into a :class:`RecData`.

    Args:
        dataset: the dataset name (``Dataset.name``; node ids are ``"<dataset>:<raw id>"``).
        kg: include ``FACT`` triples touching the dataset's items (one relation per predicate and direction).
        intents: include ``SATISFIES`` (item) and ``HAS_INTENT`` (user profile) intent edges.
        text: include the stored sentence-transformer vectors (``textEmbedding``) as features.
        since / until: keep only interactions with ``since <= ts < until`` (a time window; rows without a
            timestamp are kept; session boundaries are then not exported).
        sessions: read the graph's ``Session`` boundaries into ``RecData.seq_session``.
        knowledge: read the embedded fused user knowledge (``(:User)-[:HAS_KNOWLEDGE]->(:Knowledge)``, status
            ok, with a text vector) into ``RecData.user_knowledge_emb`` / ``user_knowledge_mask``;
            :class:`TrainingError` when no user of the dataset has any.
        session_intents: read the LLM4SBR session intents (``kgp extract --round sessions``) into
            ``RecData.session_intents`` (:func:`with_session_intents`); ``encode_answers`` (texts → vectors) also
            encodes the raw answers.
        page: users or items per read (one key range).
        workers: key ranges read at once (threads, one read transaction each); 1 reads them one by one.
    """
    if page < 1 or workers < 1:
        raise TrainingError(f"page and workers must be >= 1, got page={page}, workers={workers}")
    t0 = time.perf_counter()
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    bar = tqdm(desc=f"export {dataset}", unit="row", file=sys.stderr, disable=disable)
    with_sessions = sessions and since is None and until is None
    try:
        with _Reader(graph, workers) as reader:
            # key pass: the ids in order, cut into ranges of `page` ids
            item_keys, user_keys = reader.key_pass(["export/item_ids", "export/user_ids"], dataset, page)
            if not item_keys:
                raise NotFound(f"dataset {dataset!r} has no items in the graph", hint="ingest it first (kgp ingest …)")
            item_ids = [k for ids, _ in item_keys for k in ids]
            items = _ItemColumns(dataset, item_ids, np.concatenate([nodes for _, nodes in item_keys]))
            users = _UserColumns(dataset, items, since, until)
            present = (graph.read_one("export/intent_edge_counts") or {}) if intents else {}
            item_intents = intents and present.get("satisfies", 1) > 0  # no intent edge at all: skip the expansions
            user_intents = intents and present.get("hasIntent", 1) > 0
            jobs: list[tuple[str, dict[str, Any]]] = []
            for name, chunks, extra in (
                ("export/item_columns", item_keys, dict(kg=kg, intents=item_intents)),
                ("export/user_columns", user_keys, dict(missing=_NO_TS, sessions=with_sessions, intents=user_intents)),
            ):
                for ids, _ in chunks:  # the range is bounded by ids of the dataset: no other dataset's keys seeked
                    jobs.append((name, dict(dataset=dataset, first=ids[0], last=ids[-1], vectors=text, **extra)))
            expected = iter([*item_keys, *user_keys])
            for (name, _), rec in zip(jobs, reader.pages(jobs)):
                ids, nodes = next(expected)
                if rec["ids"] != ids or (name == "export/item_columns" and not np.array_equal(rec["nodes"], nodes)):
                    raise TrainingError(f"dataset {dataset!r} changed while it was being exported", hint="run it again")
                (items if name == "export/item_columns" else users).add(rec)
                bar.update(len(ids))
    finally:
        bar.close()

    user_ids = users.ids
    sequences, timestamps, behaviors = users.sequences()
    n_edges = sum(map(len, sequences))
    session_ordinals = users.session_ordinals(sequences) if with_sessions else None

    triples = None
    entity_ids: list[str] | None = None
    relation_names: list[str] = []
    num_entities = len(item_ids)
    if kg:
        triples, relation_names, entity_ids = items.triples()
        num_entities = len(item_ids) + len(entity_ids)
        n_edges += len(triples)

    intent_keys: list[str] = []
    item_int = user_int = intent_emb = None
    if intents:
        ii_rows, ui_rows = items.intent_rows, users.intent_rows
        key_index = {key: k for k, key in enumerate(sorted({k for _, k, _ in ii_rows} | {k for _, k, _ in ui_rows}))}
        intent_keys = list(key_index)
        if intent_keys:
            item_int = np.array([(a, key_index[k], c) for a, k, c in ii_rows], dtype=np.int64).reshape(-1, 3)
            user_int = np.array([(a, key_index[k], c) for a, k, c in ui_rows], dtype=np.int64).reshape(-1, 3)
            n_edges += len(ii_rows) + len(ui_rows)
            if text:
                vecs: dict[str, Any] = {}
                for start in range(0, len(intent_keys), page):
                    for r in graph.read_records("export/intent_vectors", keys=intent_keys[start:start + page]):
                        vecs[r["key"]] = r["emb"]
                intent_emb = _matrix([vecs.get(k) for k in intent_keys])

    has_kg = triples is not None and len(triples) > 0
    data = RecData.from_sequences(
        dataset, user_ids, item_ids, sequences,
        timestamps=timestamps,
        sessions=session_ordinals,
        kg_triples=triples if has_kg else None,
        num_entities=num_entities if has_kg else None,
        relation_names=relation_names or None,
        entity_ids=entity_ids if has_kg else None,
        intent_keys=intent_keys or None,
        item_intents=item_int,
        user_intents=user_int,
        item_text_emb=_matrix(items.vectors) if text else None,
        user_text_emb=_matrix(users.vectors) if text else None,
        intent_text_emb=intent_emb,
        behaviors=behaviors,
    )
    if knowledge:
        data = with_user_knowledge(graph, data)
    if session_intents:
        data = with_session_intents(graph, data, encode_answers=encode_answers)
    return data, ExportReport(time.perf_counter() - t0, len(item_ids) + len(user_ids), n_edges)


def with_session_intents(graph: Graph, data: RecData, *, run: str | None = None,
                         encode_answers: Callable[[Sequence[str]], Any] | None = None) -> RecData:
    """``data`` with the stored session intents of its users (:func:`~kgplatform.graph.session_intents.
    read_session_intents`); :class:`TrainingError` when there are none. Every row was inferred from the items
    before its prefix's target only, so the rows are inputs of their prefixes (see
    :mod:`kgplatform.data.session_intents`)."""
    import dataclasses

    from .session_intents import read_session_intents

    si = read_session_intents(graph, data.dataset, data.user_ids, data.item_ids, run=run, encode=encode_answers)
    if not len(si):
        raise TrainingError(f"{data.dataset}: no session intents in the graph",
                            hint=f"run kgp extract --round sessions -d {data.dataset} first")
    out = dataclasses.replace(data, session_intents=si)
    out.validate()
    return out


def with_user_knowledge(graph: Graph, data: RecData) -> RecData:
    """``data`` with the embedded fused knowledge of its users (``knowledge/user_knowledge``): a ``[U, d]``
    matrix (zero rows for users without) and a ``[U]`` mask. The knowledge round builds every prompt from the
    training view of the same leave-one-out split, so these features carry no validation/test interaction."""
    import dataclasses

    index = {u: i for i, u in enumerate(data.user_ids)}
    rows = [(index[r["user"]], r["vector"]) for r in graph.read("knowledge/user_knowledge", dataset=data.dataset)
            if r["vector"] and r["user"] in index]
    if not rows:
        raise TrainingError(f"{data.dataset}: no user has embedded fused knowledge",
                            hint=f"run kgp extract --round knowledge -d {data.dataset} first")
    dim = len(rows[0][1])
    emb = torch.zeros(data.num_users, dim)
    mask = torch.zeros(data.num_users, dtype=torch.bool)
    for i, vec in rows:
        if len(vec) != dim:
            raise TrainingError(f"{data.dataset}: fused knowledge vectors of two sizes ({dim} and {len(vec)})",
                                hint="re-run kgp extract --round knowledge with one encoder")
        emb[i] = torch.as_tensor(vec, dtype=torch.float32)
        mask[i] = True
    out = dataclasses.replace(data, user_knowledge_emb=emb, user_knowledge_mask=mask)
    out.validate()
    return out


class _Reader:
    """Runs named read queries on ``workers`` threads (one driver session each), results in submission order."""

    def __init__(self, graph: Graph, workers: int) -> None:
        self.graph = graph
        self.workers = workers
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "_Reader":
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="kgp-export")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, name: str, params: dict[str, Any]) -> Any:
        records = self.graph.read_records(name, **params)
        if len(records) != 1:
            raise TrainingError(f"query {name!r} returned {len(records)} rows, expected one")
        return records[0]

    def _keys(self, name: str, dataset: str, page: int) -> list[tuple[list[str], np.ndarray]]:
        """All (ids, internal ids) of a key-pass query in id order, as chunks of ``page``."""
        chunks: list[tuple[list[str], np.ndarray]] = []
        after = ""
        while True:
            rec = self._one(name, dict(dataset=dataset, after=after, page=page))
            ids = rec["ids"]
            if ids:
                chunks.append((ids, np.asarray(rec["nodes"], dtype=np.int64)))
                after = ids[-1]
            if len(ids) < page:
                return chunks

    def key_pass(self, names: list[str], dataset: str, page: int) -> list[list[tuple[list[str], np.ndarray]]]:
        if self.pool is None:
            return [self._keys(name, dataset, page) for name in names]
        futures = [self.pool.submit(self._keys, name, dataset, page) for name in names]
        return [f.result() for f in futures]

    def pages(self, jobs: list[tuple[str, dict[str, Any]]]) -> Iterator[Any]:
        """One record per job, in order; at most ``workers + 1`` jobs in flight."""
        if self.pool is None:
            for name, params in jobs:
                yield self._one(name, params)
            return
        pending: deque[Future] = deque()
        todo = iter(jobs)
        for name, params in todo:
            pending.append(self.pool.submit(self._one, name, params))
            if len(pending) > self.workers:
                break
        while pending:
            rec = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(self.pool.submit(self._one, *nxt))
            yield rec


def _vector(v: Any) -> Any:
    return v if v else None  # the columnar queries send [] for "no vector"


def _flat(lists: list[list[Any]], dtype: Any, counts: np.ndarray) -> np.ndarray:
    return np.fromiter(chain.from_iterable(lists), dtype=dtype, count=int(counts.sum()))


def _counts(lists: list[list[Any]]) -> np.ndarray:
    return np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))


class _ItemColumns:
    """Accumulates ``export/item_columns`` pages: vectors, FACT edges (flat arrays) and intent rows; maps the
    internal ids of this dataset's items to their positions."""

    def __init__(self, dataset: str, item_ids: list[str], nodes: np.ndarray) -> None:
        self.dataset = dataset
        self.item_ids = item_ids
        self._sorter = np.argsort(nodes, kind="stable")
        self._sorted = nodes[self._sorter]
        self.seen = 0
        self.vectors: list[Any] = []
        self.me: list[np.ndarray] = []
        self.out: list[np.ndarray] = []
        self.other: list[np.ndarray] = []
        self.predicates: list[str] = []
        self.entity_key: dict[int, str] = {}  # internal id -> key, for other ends that are not items of the dataset
        self.intent_rows: list[tuple[int, str, int]] = []

    def positions(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item positions of internal ids, and a mask of those that are items of this dataset."""
        at = np.searchsorted(self._sorted, nodes)
        at_ok = np.minimum(at, max(len(self._sorted) - 1, 0))
        found = (at < len(self._sorted)) & (self._sorted[at_ok] == nodes) if len(self._sorted) else np.zeros(len(nodes), bool)
        return self._sorter[at_ok], found

    def add(self, rec: Any) -> None:
        base = self.seen
        n = len(rec["ids"])
        self.seen += n
        self.vectors.extend(map(_vector, rec["vectors"]))
        out = rec["factOut"]
        counts = _counts(out)
        self.me.append(np.repeat(np.arange(base, base + n, dtype=np.int64), counts))
        self.out.append(_flat(out, bool, counts))
        self.other.append(_flat(rec["factOther"], np.int64, counts))
        self.predicates.extend(chain.from_iterable(rec["factPredicates"]))
        self.entity_key.update(zip(rec["entityNodes"], rec["entityKeys"]))
        for k, (keys, kinds) in enumerate(zip(rec["intentKeys"], rec["intentKinds"])):
            for key, kind in zip(keys, kinds):
                self.intent_rows.append((base + k, key, KIND_CODES.get(kind, EXACT_KIND)))

    def triples(self) -> tuple[np.ndarray, list[str], list[str]]:
        """``[T, 3]`` unique (head, relation, tail) rows in sorted order, relation names, entity keys (numbered
        in order of first appearance over items in id order)."""
        if not self.predicates:
            return np.zeros((0, 3), dtype=np.int64), [], []
        me = np.concatenate(self.me)
        out = np.concatenate(self.out)
        other = np.concatenate(self.other)
        entity_nodes = np.fromiter(self.entity_key, dtype=np.int64, count=len(self.entity_key))
        is_entity = np.isin(other, entity_nodes)
        pos, found = self.positions(other)
        if not (found | is_entity).all():
            raise TrainingError(f"dataset {self.dataset!r} changed while it was being exported", hint="run it again")
        # entities are numbered by their key in order of first appearance (items in id order, facts in order)
        nodes, first, inverse = np.unique(other[is_entity], return_index=True, return_inverse=True)
        by_appearance = np.argsort(first, kind="stable")
        keys = [self.entity_key[n] for n in nodes[by_appearance].tolist()]
        entity_ids = list(dict.fromkeys(keys))  # two nodes with one key are one entity, as before
        key_index = {e: k for k, e in enumerate(entity_ids)}
        node_rank = np.empty(len(nodes), dtype=np.int64)
        node_rank[by_appearance] = np.fromiter(map(key_index.__getitem__, keys), dtype=np.int64, count=len(keys))
        other = np.where(is_entity, 0, pos)
        other[is_entity] = len(self.item_ids) + node_rank[inverse.reshape(-1)]
        relation_names = sorted(set(self.predicates))
        rel_index = {p: k for k, p in enumerate(relation_names)}
        rel = np.fromiter(map(rel_index.__getitem__, self.predicates), dtype=np.int64, count=len(self.predicates))
        heads = np.where(out, me, other)
        tails = np.where(out, other, me)
        # an item-item fact is seen from both ends: the unique (h, r, t) keep one, in sorted tuple order
        n_ent, n_rel = len(self.item_ids) + len(entity_ids), len(relation_names)
        code = np.unique((heads * n_rel + rel) * n_ent + tails)
        triples = np.stack([code // (n_rel * n_ent), (code // n_ent) % n_rel, code % n_ent], axis=1)
        return triples.astype(np.int64, copy=False), relation_names, entity_ids


class _UserColumns:
    """Accumulates ``export/user_columns`` pages as compact arrays, one page at a time."""

    def __init__(self, dataset: str, items: _ItemColumns, since: float | None, until: float | None) -> None:
        self.dataset = dataset
        self.items = items
        self.since, self.until = since, until
        self.ids: list[str] = []
        self.vectors: list[Any] = []
        self.counts: list[np.ndarray] = []
        self.seq: list[np.ndarray] = []
        self.ts: list[np.ndarray] = []
        self.behaviors: list[np.ndarray] = []  # object arrays of behaviour names ('' = none)
        self.session_sizes: dict[int, list[int]] = {}  # user index -> sizes in session order (users with sessions)
        self.intent_rows: list[tuple[int, str, int]] = []

    def add(self, rec: Any) -> None:
        ids = rec["ids"]
        base, n = len(self.ids), len(ids)
        counts = _counts(rec["items"])
        nodes = _flat(rec["items"], np.int64, counts)
        pos = _flat(rec["pos"], np.int64, counts)
        ts = _flat(rec["ts"], np.float64, counts)
        user = np.repeat(np.arange(n, dtype=np.int64), counts)
        pos[pos == _NO_TS] = np.iinfo(np.int64).max  # a missing pos sorts last, as ORDER BY does
        order = np.lexsort((pos, user))  # stable: each user's edges by pos
        item, found = self.items.positions(nodes[order])
        if not found.all():
            k = int(np.argmin(found))
            raise TrainingError(f"user {ids[int(user[order][k])]} interacted with a node that is not an item of "
                                f"{self.dataset} (internal id {int(nodes[order][k])})")
        ts = ts[order]
        user = user[order]
        behavior = np.fromiter(chain.from_iterable(rec["behaviors"]), dtype=object, count=int(counts.sum()))[order]
        missing = ts == float(_NO_TS)
        if self.since is not None or self.until is not None:
            keep = missing.copy()
            window = np.ones(len(ts), dtype=bool)
            if self.since is not None:
                window &= ts >= self.since
            if self.until is not None:
                window &= ts < self.until
            keep |= window
            item, ts, user, missing, behavior = item[keep], ts[keep], user[keep], missing[keep], behavior[keep]
            counts = np.bincount(user, minlength=n).astype(np.int64)
        if missing.any():  # no timestamp: the position in the (kept) sequence
            first = np.zeros(n, dtype=np.int64)
            np.cumsum(counts[:-1], out=first[1:])
            position = np.arange(len(ts), dtype=np.int64) - first[user]
            ts[missing] = position[missing]
        self.counts.append(counts)
        self.seq.append(item)
        self.ts.append(ts)
        self.behaviors.append(behavior)
        for k, (sids, sizes) in enumerate(zip(rec["sessionIds"], rec["sessionSizes"])):
            if sids:
                if len(sids) > 1:
                    sizes = [s for _, s in sorted(zip(sids, sizes), key=lambda r: _session_ordinal(r[0]))]
                self.session_sizes[base + k] = sizes
        for k, (keys, kinds) in enumerate(zip(rec["intentKeys"], rec["intentKinds"])):
            for key, kind in zip(keys, kinds):
                self.intent_rows.append((base + k, key, KIND_CODES.get(kind, EXACT_KIND)))
        self.ids.extend(ids)
        self.vectors.extend(map(_vector, rec["vectors"]))

    def sequences(self) -> tuple[list[np.ndarray], list[np.ndarray], list[list[str | None]] | None]:
        """Per-user item positions, timestamps and behaviour types (None when no edge has one), in sequence
        order."""
        if not self.counts:
            return [], [], None
        counts = np.concatenate(self.counts)
        cuts = np.cumsum(counts)[:-1]
        seq, ts = np.concatenate(self.seq), np.concatenate(self.ts)
        behavior = np.concatenate(self.behaviors)
        self.counts, self.seq, self.ts, self.behaviors = [], [], [], []
        behaviors = None
        if (behavior != "").any():
            behavior[behavior == ""] = None
            behaviors = [b.tolist() for b in np.split(behavior, cuts)]
        return np.split(seq, cuts), np.split(ts, cuts), behaviors

    def session_ordinals(self, sequences: list[np.ndarray]) -> list[np.ndarray] | None:
        """Sessions partition each user's sequence in order (kgplatform.ingest.sessions)."""
        if not self.session_sizes:
            return None
        out = []
        for u, seq in enumerate(sequences):
            sizes = self.session_sizes.get(u)
            if sizes is None:
                sizes = [len(seq)]
            elif sum(sizes) != len(seq) or min(sizes) < 0:  # out of step with the interactions: say so, don't guess
                raise TrainingError(f"user {self.ids[u]}: sessions hold {sum(sizes)} interactions, the user has "
                                    f"{len(seq)}", hint="re-ingest the dataset")
            out.append(np.repeat(np.arange(len(sizes), dtype=np.int64), sizes))
        return out


def _pages(graph: Graph, name: str, dataset: str, page: int) -> Iterator[dict[str, Any]]:
    after = ""
    while True:
        rows = graph.read(name, dataset=dataset, after=after, page=page)
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]
        if len(rows) < page:
            return


def _export_recdata_rowwise(
    graph: Graph,
    dataset: str,
    *,
    kg: bool = True,
    intents: bool = True,
    text: bool = True,
    since: float | None = None,
    until: float | None = None,
    sessions: bool = True,
    page: int = 5000,
    progress: bool | None = None,
) -> tuple[RecData, ExportReport]:
    """The previous, row-by-row exporter (one record per user/item, a nested list per edge), kept as the
    reference the columnar :func:`export_recdata` is tested against (``RecData.checksum()`` must be equal) and
    measured against (``benchmarks/export.py``). Same arguments; not used by the platform itself.

    Args:
        dataset: the dataset name (``Dataset.name``; node ids are ``"<dataset>:<raw id>"``).
        kg: include ``FACT`` triples touching the dataset's items (one relation per predicate and direction).
        intents: include ``SATISFIES`` (item) and ``HAS_INTENT`` (user profile) intent edges.
        text: include the stored sentence-transformer vectors (``textEmbedding``) as features.
        since / until: keep only interactions with ``since <= ts < until`` (a time window; rows without a
            timestamp are kept; session boundaries are then not exported).
        sessions: read the graph's ``Session`` boundaries into ``RecData.seq_session``.
        page: rows per read.
    """
    sessions_wanted = sessions
    t0 = time.perf_counter()
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    bar = tqdm(desc=f"export {dataset}", unit="row", file=sys.stderr, disable=disable)
    n_rows = n_edges = 0

    items = []
    for row in _pages(graph, "export/items_page", dataset, page):
        items.append(row)
        bar.update()
    if not items:
        bar.close()
        raise NotFound(f"dataset {dataset!r} has no items in the graph", hint="ingest it first (kgp ingest …)")
    item_ids = [r["id"] for r in items]
    item_index = {iid: k for k, iid in enumerate(item_ids)}

    user_ids: list[str] = []
    sequences: list[list[int]] = []
    timestamps: list[list[float]] = []
    behaviors: list[list[str | None]] = []
    user_emb: list[Any] = []
    for row in _pages(graph, "export/users_page", dataset, page):
        seq, ts, beh = [], [], []
        for item, t, b in row["interactions"]:
            if t is not None and ((since is not None and t < since) or (until is not None and t >= until)):
                continue
            if item not in item_index:
                bar.close()
                raise TrainingError(f"user {row['id']} interacted with {item}, which is not an item of {dataset}")
            seq.append(item_index[item])
            ts.append(float(t) if t is not None else float(len(ts)))
            beh.append(b)
        user_ids.append(row["id"])
        sequences.append(seq)
        timestamps.append(ts)
        behaviors.append(beh)
        user_emb.append(row["emb"])
        n_edges += len(seq)
        bar.update()
    n_rows = len(items) + len(user_ids)

    # session ordinals: sessions partition each user's sequence in order (kgplatform.ingest.sessions)
    sessions: list[list[int]] | None = None
    if sessions_wanted and since is None and until is None:
        sizes: dict[str, list[int]] = {}
        for row in _pages(graph, "export/user_sessions_page", dataset, page):
            sz = [int(size) for _sid, size in sorted(row["sessions"], key=lambda r: _session_ordinal(r[0]))]
            if sz:
                sizes[row["id"]] = sz
        if sizes:
            sessions = []
            for uid, seq in zip(user_ids, sequences):
                sz = sizes.get(uid, [len(seq)])
                if sum(sz) != len(seq):  # sessions out of step with interactions: say so, don't guess
                    bar.close()
                    raise TrainingError(f"user {uid}: sessions hold {sum(sz)} interactions, the user has {len(seq)}",
                                        hint="re-ingest the dataset")
                sessions.append([k for k, n in enumerate(sz) for _ in range(n)])

    triples = None
    entity_ids: list[str] | None = None
    relation_names: list[str] = []
    num_entities = len(item_ids)
    if kg:
        entity_index: dict[str, int] = {}
        rel_index: dict[str, int] = {}
        raw: set[tuple[int, str, int]] = set()
        for row in _pages(graph, "export/item_facts_page", dataset, page):
            me = item_index[row["id"]]
            for outgoing, predicate, other, other_is_item in row["facts"]:
                if other_is_item:
                    o = item_index[other]
                else:
                    o = entity_index.setdefault(other, len(item_ids) + len(entity_index))
                h, t = (me, o) if outgoing else (o, me)
                raw.add((h, predicate, t))  # an item-item fact is seen from both ends: the set keeps one
            bar.update()
        for p in sorted({p for _, p, _ in raw}):
            rel_index[p] = len(rel_index)
        relation_names = list(rel_index)
        triples = np.array(sorted((h, rel_index[p], t) for h, p, t in raw), dtype=np.int64).reshape(-1, 3)
        entity_ids = list(entity_index)
        num_entities = len(item_ids) + len(entity_ids)
        n_edges += len(raw)

    intent_keys: list[str] = []
    item_int = user_int = None
    intent_emb = None
    if intents:
        key_index: dict[str, int] = {}
        ii_rows: list[tuple[int, str, int]] = []
        ui_rows: list[tuple[int, str, int]] = []
        for row in _pages(graph, "export/item_intents_page", dataset, page):
            for key, kind in row["intents"]:
                ii_rows.append((item_index[row["id"]], key, KIND_CODES.get(kind, EXACT_KIND)))
            bar.update()
        user_index = {u: k for k, u in enumerate(user_ids)}
        for row in _pages(graph, "export/user_intents_page", dataset, page):
            for key, kind in row["intents"]:
                ui_rows.append((user_index[row["id"]], key, KIND_CODES.get(kind, EXACT_KIND)))
            bar.update()
        for key in sorted({k for _, k, _ in ii_rows} | {k for _, k, _ in ui_rows}):
            key_index[key] = len(key_index)
        intent_keys = list(key_index)
        if intent_keys:
            item_int = np.array([(a, key_index[k], c) for a, k, c in ii_rows], dtype=np.int64).reshape(-1, 3)
            user_int = np.array([(a, key_index[k], c) for a, k, c in ui_rows], dtype=np.int64).reshape(-1, 3)
            n_edges += len(ii_rows) + len(ui_rows)
            if text:
                vecs: dict[str, Any] = {}
                for start in range(0, len(intent_keys), page):
                    for r in graph.read("export/intent_vectors", keys=intent_keys[start:start + page]):
                        vecs[r["key"]] = r["emb"]
                intent_emb = _matrix([vecs.get(k) for k in intent_keys])
    bar.close()

    data = RecData.from_sequences(
        dataset, user_ids, item_ids, sequences,
        timestamps=timestamps,
        sessions=sessions,
        kg_triples=triples if triples is not None and len(triples) else None,
        num_entities=num_entities if triples is not None and len(triples) else None,
        relation_names=relation_names or None,
        entity_ids=entity_ids if triples is not None and len(triples) else None,
        intent_keys=intent_keys or None,
        item_intents=item_int,
        user_intents=user_int,
        item_text_emb=_matrix([r["emb"] for r in items]) if text else None,
        user_text_emb=_matrix(user_emb) if text else None,
        intent_text_emb=intent_emb,
        behaviors=behaviors if any(b is not None for seq in behaviors for b in seq) else None,
    )
    return data, ExportReport(time.perf_counter() - t0, n_rows, n_edges)


def _matrix(vectors: list[Any]) -> np.ndarray | None:
    """Stack vectors into ``[n, d]``; ``None`` when none is present, zero rows where some are missing."""
    present = [v for v in vectors if v is not None]
    if not present:
        return None
    d = len(present[0])
    out = np.zeros((len(vectors), d), dtype=np.float32)
    for k, v in enumerate(vectors):
        if v is not None:
            if len(v) != d:
                raise TrainingError("stored text vectors have mixed dimensions; re-run kgp embed")
            out[k] = v
    return out


def _session_ordinal(session_id: str) -> int:
    tail = str(session_id).rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def save_pyg(data: RecData, out: Path, *, graph: str = "train", device: str = "cpu") -> Path:
    """Write ``hetero_data.pt`` (a PyG ``HeteroData``) and ``id_maps.json`` under ``out``.

    ``graph="train"`` (default) holds the training interactions only (leave-one-out, see
    :func:`kgplatform.data.training_view`): what a model may learn from. ``graph="serving"`` holds every
    interaction, validation and test included, for serving and inspection; never train on it.
    """
    if graph == "train":
        hetero = training_graph(training_view(data, leave_one_out(data)))
    elif graph == "serving":
        hetero = serving_graph(data)
    else:
        raise TrainingError(f"unknown graph {graph!r} (train|serving)")
    out.mkdir(parents=True, exist_ok=True)
    if device != "cpu":
        hetero = hetero.to(device)
    torch.save(hetero, out / "hetero_data.pt")
    maps = {"dataset": data.dataset, "user": data.user_ids, "item": data.item_ids,
            "entity": data.entity_ids or [], "relation": data.relation_names, "intent": data.intent_keys,
            "graph": graph, "checksum": data.checksum()}
    (out / "id_maps.json").write_text(json.dumps(maps))
    return out / "hetero_data.pt"


def save_recbole(data: RecData, out: Path, *, titles: dict[str, str] | None = None) -> list[Path]:
    """Write RecBole atomic files ``<dataset>.inter/.item/.user/.kg/.link`` under ``out/<dataset>/``.

    ``.inter`` has a ``behavior:token`` column when the data has behaviour types (empty where none recorded).

    Tokens are the graph ids' raw part (``"movielens-100k:42"`` → ``42``); KG entities keep their key
    (URI or item id), items are linked to themselves (``.link`` maps item token → entity token ``item:<id>``).
    """
    name = data.dataset
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    raw = lambda gid: gid.split(":", 1)[1] if ":" in gid else gid  # noqa: E731
    written = []
    beh = data.seq_behavior
    with (folder / f"{name}.inter").open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float" + ("\tbehavior:token\n" if beh is not None else "\n"))
        ts = data.seq_ts
        names = [*data.behavior_names, ""]  # index -1: none recorded (RecBole reads an empty token as missing)
        for u in range(data.num_users):
            lo, hi = int(data.seq_indptr[u]), int(data.seq_indptr[u + 1])
            for k in range(lo, hi):
                t = float(ts[k]) if ts is not None else float(k - lo)
                f.write(f"{raw(data.user_ids[u])}\t{raw(data.item_ids[int(data.seq_items[k])])}\t{t:.0f}")
                f.write(f"\t{names[int(beh[k])]}\n" if beh is not None else "\n")
    written.append(folder / f"{name}.inter")
    with (folder / f"{name}.item").open("w", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\n")
        for iid in data.item_ids:
            title = (titles or {}).get(iid, "") or ""
            f.write(f"{raw(iid)}\t{' '.join(title.split())}\n")
    written.append(folder / f"{name}.item")
    with (folder / f"{name}.user").open("w", encoding="utf-8") as f:
        f.write("user_id:token\n")
        for uid in data.user_ids:
            f.write(f"{raw(uid)}\n")
    written.append(folder / f"{name}.user")
    if data.has_kg:
        ents = [f"item:{raw(i)}" for i in data.item_ids] + [e.replace("\t", " ") for e in (data.entity_ids or [])]
        with (folder / f"{name}.kg").open("w", encoding="utf-8") as f:
            f.write("head_id:token\trelation_id:token\ttail_id:token\n")
            for h, r, t in zip(data.kg_heads.tolist(), data.kg_rels.tolist(), data.kg_tails.tolist()):
                f.write(f"{ents[h]}\t{data.relation_names[r].replace(chr(9), ' ')}\t{ents[t]}\n")
        with (folder / f"{name}.link").open("w", encoding="utf-8") as f:
            f.write("item_id:token\tentity_id:token\n")
            for iid in data.item_ids:
                f.write(f"{raw(iid)}\titem:{raw(iid)}\n")
        written += [folder / f"{name}.kg", folder / f"{name}.link"]
    return written


def item_titles(graph: Graph, dataset: str, page: int = 5000) -> dict[str, str]:
    return {r["id"]: r["title"] or "" for r in _pages(graph, "export/items_page", dataset, page)}
