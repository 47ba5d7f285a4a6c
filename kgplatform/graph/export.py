"""Export a dataset's subgraph from Neo4j into the data contract (:class:`~kgplatform.data.RecData`), PyG
``HeteroData`` (the training graph by default; the full graph only as the explicitly named serving export) and
RecBole atomic files.

Every read pages by business key (``WHERE n.id > $after ORDER BY n.id LIMIT $page``) in read transactions,
so no query returns one giant eager result. Index maps are stable: users and items are numbered in id order,
KG entities in order of first appearance over items in id order, relations and intents sorted by name.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..db.graph import Graph
from ..errors import NotFound, TrainingError
from ..data import EXACT_KIND, RELATED_KIND, RecData, leave_one_out, serving_graph, training_graph, training_view

KIND_CODES = {"exact": EXACT_KIND, "related": RELATED_KIND}


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
    progress: bool | None = None,
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
    user_emb: list[Any] = []
    for row in _pages(graph, "export/users_page", dataset, page):
        seq, ts = [], []
        for item, t in row["interactions"]:
            if t is not None and ((since is not None and t < since) or (until is not None and t >= until)):
                continue
            if item not in item_index:
                bar.close()
                raise TrainingError(f"user {row['id']} interacted with {item}, which is not an item of {dataset}")
            seq.append(item_index[item])
            ts.append(float(t) if t is not None else float(len(ts)))
        user_ids.append(row["id"])
        sequences.append(seq)
        timestamps.append(ts)
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

    Tokens are the graph ids' raw part (``"movielens-100k:42"`` → ``42``); KG entities keep their key
    (URI or item id), items are linked to themselves (``.link`` maps item token → entity token ``item:<id>``).
    """
    name = data.dataset
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    raw = lambda gid: gid.split(":", 1)[1] if ":" in gid else gid  # noqa: E731
    written = []
    with (folder / f"{name}.inter").open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        ts = data.seq_ts
        for u in range(data.num_users):
            lo, hi = int(data.seq_indptr[u]), int(data.seq_indptr[u + 1])
            for k in range(lo, hi):
                t = float(ts[k]) if ts is not None else float(k - lo)
                f.write(f"{raw(data.user_ids[u])}\t{raw(data.item_ids[int(data.seq_items[k])])}\t{t:.0f}\n")
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
