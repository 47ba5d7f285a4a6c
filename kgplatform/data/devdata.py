"""Development loaders that build :class:`RecData` straight from raw files, bypassing Neo4j.

Production data comes from the exporter (``kgplatform.graph.export``); these exist for tests, benchmarks and
for checking the evaluation harness against published numbers on the same files. They read:

* ``user_sequence.txt`` (S3Rec format, Amazon Beauty): ``user item item ...`` in time order;
* RecBole atomic files (MovieLens-100k): ``.inter`` (+ ``.kg`` + ``.link`` for the Freebase KG);
* a synthetic toy dataset with a planted signal (:func:`toy_data`).

:func:`title_word_intents` derives *stand-in* intents (title keywords) so IKGR can run before the LLM
extraction has filled the graph; it is a benchmark device, not the paper's intent extraction.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from kgplatform.errors import DataValidationError
from kgplatform.data.recdata import RecData


def load_user_sequences(path: str | Path, dataset: str = "amazon-beauty") -> RecData:
    """One line per user: ``user_id item item ...`` in chronological order. Item indices in order of first
    appearance in the file."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: not found")
    users: list[str] = []
    item_index: dict[str, int] = {}
    seqs: list[list[int]] = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataValidationError(f"{path}:{lineno}: a user with no items")
            users.append(parts[0])
            seqs.append([item_index.setdefault(it, len(item_index)) for it in parts[1:]])
    return RecData.from_sequences(dataset, users, list(item_index), seqs)


def _read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = [h.split(":")[0] for h in rows[0]]
    return header, rows[1:]


def load_recbole_atomic(prefix: str | Path, dataset: str | None = None, *, kg: bool = True) -> RecData:
    """RecBole atomic files ``<prefix>.inter`` (+ ``.kg``/``.link`` when ``kg``).

    Each user's interactions are sorted by timestamp (stable, so file order breaks ties); items are indexed
    in order of first appearance in the ``.inter`` file. KG entities linked to an item (``.link``) *are* that
    item; other entities get indices ``num_items..``; relations in order of first appearance.
    """
    prefix = Path(prefix)
    inter = prefix.with_suffix(".inter")
    if not inter.is_file():
        raise DataValidationError(f"{inter}: not found")
    header, rows = _read_atomic(inter)
    try:
        cu, ci, ct = header.index("user_id"), header.index("item_id"), header.index("timestamp")
    except ValueError as e:
        raise DataValidationError(f"{inter}:1: needs user_id, item_id and timestamp columns") from e
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    us, its, ts = [], [], []
    for r in rows:
        us.append(user_index.setdefault(r[cu], len(user_index)))
        its.append(item_index.setdefault(r[ci], len(item_index)))
        ts.append(float(r[ct]))
    us_a, it_a, ts_a = np.asarray(us), np.asarray(its), np.asarray(ts)
    order = np.lexsort((ts_a, us_a))  # by user, then time; lexsort is stable
    us_a, it_a, ts_a = us_a[order], it_a[order], ts_a[order]
    bounds = np.searchsorted(us_a, np.arange(len(user_index) + 1))
    seqs = [it_a[bounds[u] : bounds[u + 1]] for u in range(len(user_index))]
    tss = [ts_a[bounds[u] : bounds[u + 1]] for u in range(len(user_index))]
    triples = None
    rel_names: list[str] = []
    entity_ids: list[str] = []
    num_entities = None
    kg_path, link_path = prefix.with_suffix(".kg"), prefix.with_suffix(".link")
    if kg and kg_path.is_file() and link_path.is_file():
        _, links = _read_atomic(link_path)
        ent_index: dict[str, int] = {}
        for item, ent in links:
            if item in item_index:
                ent_index[ent] = item_index[item]
        _, kg_rows = _read_atomic(kg_path)
        rel_index: dict[str, int] = {}
        n_items = len(item_index)
        extra: dict[str, int] = {}

        def ent(e: str) -> int:
            if e in ent_index:
                return ent_index[e]
            if e not in extra:
                extra[e] = n_items + len(extra)
            return extra[e]

        trip = [(ent(h), rel_index.setdefault(r, len(rel_index)), ent(t)) for h, r, t in kg_rows]
        triples = np.asarray(trip, dtype=np.int64).reshape(-1, 3)
        rel_names = list(rel_index)
        entity_ids = list(extra)
        num_entities = n_items + len(extra)
    return RecData.from_sequences(
        dataset or prefix.name,
        list(user_index),
        list(item_index),
        seqs,
        timestamps=tss,
        kg_triples=triples,
        num_entities=num_entities,
        relation_names=rel_names,
        entity_ids=entity_ids or None,
    )


_STOP = frozenset(
    "a an and the of for with in on to by from at or & - + x oz ml fl pack set count pcs piece pieces"
    " 1 2 3 4 5 6 7 8 9 10 12 16 24 new".split()
)


def title_word_intents(
    data: RecData,
    titles: dict[str, str],
    *,
    min_items: int = 5,
    max_frac: float = 0.05,
    max_per_item: int = 8,
) -> RecData:
    """Attach stand-in intents: title words used by at least ``min_items`` items and at most ``max_frac`` of
    them become intent nodes, linked to items as *exact* intents. A word's frequent co-occurring words are
    linked as *related* intents of the item (first-order co-occurrence, a crude imitation of the second
    RAG round). For benchmarks only."""
    import dataclasses

    words_per_item: list[list[str]] = []
    for iid in data.item_ids:
        words = [w for w in re.findall(r"[a-z][a-z0-9']+", titles.get(iid, "").lower()) if w not in _STOP]
        words_per_item.append(list(dict.fromkeys(words)))
    df = Counter(w for ws in words_per_item for w in ws)
    n = data.num_items
    vocab = sorted(w for w, c in df.items() if c >= min_items and c <= max_frac * n)
    index = {w: i for i, w in enumerate(vocab)}
    exact: list[tuple[int, int, int]] = []
    per_item: list[list[int]] = []
    for it, ws in enumerate(words_per_item):
        ids = [index[w] for w in ws if w in index][:max_per_item]
        per_item.append(ids)
        exact.extend((it, k, 0) for k in ids)
    # related: the most frequent co-occurring intent of each exact intent, not already exact for the item
    co = Counter()
    for ids in per_item:
        for a in ids:
            for b in ids:
                if a != b:
                    co[(a, b)] += 1
    best: dict[int, tuple[int, int]] = {}
    for (a, b), c in co.items():
        if c > best.get(a, (-1, 0))[1]:
            best[a] = (b, c)
    related: list[tuple[int, int, int]] = []
    for it, ids in enumerate(per_item):
        have = set(ids)
        for a in ids[:3]:
            if a in best and best[a][0] not in have:
                related.append((it, best[a][0], 1))
                have.add(best[a][0])
    edges = np.asarray(exact + related, dtype=np.int64).reshape(-1, 3)
    return dataclasses.replace(
        data,
        intent_keys=vocab,
        item_intents=torch.as_tensor(edges[:, :2]),
        item_intent_kind=torch.as_tensor(edges[:, 2]),
        user_intents=torch.zeros(0, 2, dtype=torch.long),
        user_intent_kind=torch.zeros(0, dtype=torch.long),
    )


def read_titles(path: str | Path) -> dict[str, str]:
    """``item_id phrase...`` per line (Amazon ``item_titles.txt``)."""
    out: dict[str, str] = {}
    with Path(path).open() as fh:
        for line in fh:
            parts = line.rstrip("\n").split(" ", 1)
            if parts and parts[0]:
                out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def toy_data(
    num_users: int = 60,
    num_items: int = 40,
    num_groups: int = 4,
    seq_len: int = 8,
    *,
    seed: int = 0,
    kg: bool = True,
    intents: bool = True,
    text_dim: int = 0,
    sequential: bool = False,
) -> RecData:
    """A synthetic dataset with a planted signal.

    Items fall into ``num_groups`` groups; each user prefers one group and draws most of their items from it
    (90 %). With ``sequential=True`` each user instead walks the items of their group in cyclic order, so
    the next item is predictable from the last. Group membership is visible in the KG (``in_group`` triples
    to one entity per group) and as intents (each item's group is its exact intent; the next group is a
    related intent; users get their group as a profile intent). A model that learns anything beats random.
    """
    g = np.random.default_rng(seed)
    group_of_item = np.arange(num_items) % num_groups
    group_of_user = g.integers(0, num_groups, num_users)
    seqs: list[list[int]] = []
    for u in range(num_users):
        members = np.flatnonzero(group_of_item == group_of_user[u])
        if sequential:
            start = g.integers(len(members))
            seqs.append([int(members[(start + k) % len(members)]) for k in range(seq_len)])
            continue
        s: list[int] = []
        while len(s) < seq_len:
            pool = members if g.random() < 0.9 else np.arange(num_items)
            it = int(g.choice(pool))
            if it not in s:
                s.append(it)
        seqs.append(s)
    kw: dict = {}
    if kg:
        triples = [(i, 0, num_items + int(group_of_item[i])) for i in range(num_items)]
        kw.update(kg_triples=triples, num_entities=num_items + num_groups, relation_names=["in_group"])
    if intents:
        ii = [(i, int(group_of_item[i]), 0) for i in range(num_items)]
        ii += [(i, int((group_of_item[i] + 1) % num_groups), 1) for i in range(num_items)]
        ui = [(u, int(group_of_user[u]), 0) for u in range(num_users)]
        kw.update(intent_keys=[f"group{k}" for k in range(num_groups)], item_intents=ii, user_intents=ui)
        if text_dim:
            kw["intent_text_emb"] = g.normal(size=(num_groups, text_dim)).astype(np.float32)
    if text_dim:
        kw["item_text_emb"] = g.normal(size=(num_items, text_dim)).astype(np.float32)
    return RecData.from_sequences(
        "toy", [f"u{u}" for u in range(num_users)], [f"i{i}" for i in range(num_items)], seqs, **kw
    )


def intents_as_kg(data: RecData) -> RecData:
    """A copy whose item–intent edges are also KG triples (``satisfies_exact``/``satisfies_related`` to one
    entity per intent), so KG baselines (KGCN) see the same side information IKGR gets as intents."""
    import dataclasses

    if not data.has_intents:
        return data
    base_ent = data.num_entities
    base_rel = data.num_relations
    ii, kind = data.item_intents, data.item_intent_kind
    trip = torch.stack([ii[:, 0], base_rel + kind.clamp(max=1), base_ent + ii[:, 1]], 1)
    if data.has_kg:
        old = torch.stack([data.kg_heads, data.kg_rels, data.kg_tails], 1)
        trip = torch.cat([old, trip])
    ent_ids = list(data.entity_ids or [f"entity:{k}" for k in range(data.num_items, base_ent)])
    return dataclasses.replace(
        data,
        kg_heads=trip[:, 0].contiguous(),
        kg_rels=trip[:, 1].contiguous(),
        kg_tails=trip[:, 2].contiguous(),
        num_entities=base_ent + data.num_intents,
        relation_names=list(data.relation_names) + ["satisfies_exact", "satisfies_related"],
        entity_ids=ent_ids + [f"intent:{k}" for k in data.intent_keys],
    )
