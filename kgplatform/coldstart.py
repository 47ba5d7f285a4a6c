"""Cold start without retraining: new items join an IKGR run's recommendations through the model's inductive
parts (``kgp cold-start``).

A new item (ingested with text, e.g. through the ``generic`` loader) gets its text vector and, unless told
otherwise, round-1 intents; then one KG convolution (IKGR eq. 3, :func:`kgplatform.models.ikgr.embed_new_node`)
over what the graph knows about it — its projected text as its own input, its KG neighbours and intents as the
neighbourhood, read through the trained weights and the training nodes' input features saved with the run's
checkpoint — gives it a vector in the run's space. Intents new to the run get a vector the same way. The item is
then scored for every user of the run with the run's own eq. 9–11 (:func:`kgplatform.models.ikgr.score_terms`,
so ``kgp explain`` decomposes its score like any other item), and merged into each user's materialised top-k
where it ranks; users who already took the item are skipped. Everything is written in one transaction.

Approximation (documented, not hidden): the trained nodes' vectors stay as they are; adding the item to a
mean-aggregated graph would shift its neighbours slightly, which the next training run picks up.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from . import schema
from .config import Settings
from .db.graph import Graph
from .errors import ConfigError, NotFound

MODEL = "ikgr"


@dataclass
class ColdStartReport:
    run: str
    dataset: str
    items: list[str]
    new_intents: int = 0
    users_scored: int = 0
    users_updated: int = 0
    recommendations_added: int = 0
    seconds: float = 0.0
    #: seconds of the inductive part (vectors and scores) per new item, without LLM extraction and encoding
    seconds_per_item: float = 0.0
    extract_seconds: float = 0.0
    per_item: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def load_state(graph: Graph, dataset: str, run: str | None = None) -> tuple[str, dict]:
    """The newest IKGR run of ``dataset`` with recommendations (or ``run``) and its inductive state."""
    from .graph.writeback import run_checkpoint

    run, ckpt = run_checkpoint(graph, dataset, MODEL, run)
    state = torch.load(ckpt, map_location="cpu", weights_only=False).get("inductive")
    if state is None:
        raise NotFound(f"run {run} saved no inductive state (more than one convolution layer, item_bias or "
                       "user_recency set, or trained by an older kgplatform)",
                       hint=f"train again: kgp train {MODEL} -d {dataset}")
    return run, state


def _new_ids(graph: Graph, query: str, dataset: str, known: list[str], run: str) -> list[str]:
    """Ids (from ``query``: id and the run of its vector) the run did not train on and no cold start has given
    a vector of ``run`` yet."""
    seen = set(known)
    rows = graph.read(query, dataset=dataset, prop=schema.embedding_property(MODEL))
    return [r["id"] for r in rows if r["id"] not in seen and r["run"] != run]


def new_items(graph: Graph, dataset: str, state: dict, run: str) -> list[str]:
    """The dataset's items the run did not train on and that no cold start has given a vector of ``run`` yet."""
    return _new_ids(graph, "coldstart/dataset_items", dataset, state["ids"]["items"], run)


def cold_start_items(graph: Graph, settings: Settings, dataset: str, items: Sequence[str] | None = None, *,
                     extract_intents: bool = True, run: str | None = None, model: str | None = None,
                     progress: bool = False) -> ColdStartReport:
    """Give new items (``items``, done again if already done; default: every item of ``dataset`` the newest IKGR
    run neither trained on nor has cold-started yet) text
    vectors, round-1 intents (``extract_intents``; ``model`` names the LLM), inductive IKGR vectors, and a place
    in the run's materialised recommendations. See the module docstring."""
    t_all = time.perf_counter()
    run, state = load_state(graph, dataset, run)
    known = set(state["ids"]["items"])
    if items is None:
        ids = new_items(graph, dataset, state, run)
    else:
        from .explain import resolve_item

        ids = []
        for it in items:
            iid = resolve_item(graph, it.strip(), dataset)
            if iid in known:
                raise ConfigError(f"item {iid} is in the training data of run {run}: cold start is for new items",
                                  hint="kgp cold-start -d DATASET without --items finds the new ones")
            ids.append(iid)
        ids = list(dict.fromkeys(ids))
    report = ColdStartReport(run, dataset, ids)
    if not ids:
        report.seconds = time.perf_counter() - t_all
        return report

    t_ext = time.perf_counter()
    from .embed import embed_graph

    embed_graph(graph, settings, dataset, progress=progress, labels=[schema.ITEM, schema.INTENT])
    if extract_intents and state["use_intents"]:
        from .agent import extract

        extract(graph, settings, round=1, dataset=dataset, items_only=True, ids=ids, model=model,
                progress=progress)
        embed_graph(graph, settings, dataset, progress=progress, labels=[schema.INTENT])
    report.extract_seconds = time.perf_counter() - t_ext

    t0 = time.perf_counter()
    vectors, intent_sets, new_intent_vecs, taken = _embed_items(graph, state, dataset, ids)
    report.new_intents = len(new_intent_vecs)
    rows, added, scored = _merge_recommendations(graph, state, dataset, run, vectors, intent_sets,
                                                 new_intent_vecs, taken)
    report.users_scored, report.users_updated, report.recommendations_added = scored, len(rows), added
    prop = schema.embedding_property(MODEL)
    item_rows = [{"id": i, "props": {prop: vectors[i].tolist(), f"{prop}_run": run,
                                     f"{prop}_intents": intent_sets[i]}} for i in ids]
    intent_rows = [{"key": k, "vector": v.tolist()} for k, v in new_intent_vecs.items()]
    report.seconds_per_item = (time.perf_counter() - t0) / len(ids)
    with graph.transaction("coldstart/items") as tx:
        tx.run("runs/lock_dataset", dataset=dataset)
        tx.run("coldstart/set_items", rows=item_rows)
        if intent_rows:
            tx.run("runs/set_intent_embeddings", rows=intent_rows, run=run)
        for start in range(0, len(rows), 500):
            tx.run("coldstart/replace_recommendations", rows=rows[start:start + 500], run=run, model=MODEL)
    for i in ids:
        report.per_item[i] = {"users_reached": sum(any(r["item"] == i for r in row["items"]) for row in rows),
                              "intents": intent_sets[i]}
    report.seconds = time.perf_counter() - t_all
    return report


def training_intent(state: dict, intent_index: dict[str, int], key: str, vector: Sequence[float] | None
                    ) -> tuple[int | None, bool]:
    """The trained intent node a stored intent counts as, the way training made intents into nodes
    (``IKGRConfig.merge_intents``, ``min_intent_items``): ``(t, False)`` for node ``t`` (the intent itself, or
    its merged group's representative); ``(None, True)`` for an intent new to the run, to be embedded on its
    own; ``(None, False)`` for one training would have dropped (it has no trained node, or, with
    ``min_intent_items`` > 1, a new intent that only the new node satisfies)."""
    imap = state.get("intent_map")
    t = intent_index.get(key)
    if t is None:
        texts = state.get("intent_text")
        if texts is not None and vector is not None and texts.shape[0]:
            # merging: a new intent close enough to a trained one joins that one's group
            sims = texts @ torch.nn.functional.normalize(torch.tensor(vector, dtype=torch.float32), dim=0)
            j = int(torch.argmax(sims))
            if float(sims[j]) >= state["merge_intents"]:
                t = j
        if t is None:
            return None, state.get("min_intent_items", 1) <= 1
    if imap is not None:
        t = int(imap[t])
    return (t, False) if t >= 0 else (None, False)


def _embed_items(graph: Graph, state: dict, dataset: str, ids: list[str]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, list[str]], dict[str, torch.Tensor], dict[str, set]]:
    """Inductive eq. 3 vectors of the new items, their intent sets (keys), vectors for intents new to the run,
    and the users who already took each item."""
    from .data.intent_graph import CONSUMES, SAT_EXACT, SAT_RELATED
    from .models.ikgr import embed_new_node

    x0, R, R_kg = state["x0"], state["num_rel_total"], state["rel_base"]
    names = state["ids"]
    item_index = {k: n for n, k in enumerate(names["items"])}
    ent_index = {k: len(names["items"]) + n for n, k in enumerate(names["entities"])}
    rel_index = {p: n for n, p in enumerate(names["relations"])}
    intent_index = {k: n for n, k in enumerate(names["intents"])}
    ent_off, int_off, user_off = state["ent_off"], state["int_off"], state["user_off"]
    user_index = {k: n for n, k in enumerate(names["users"])}
    vectors: dict[str, torch.Tensor] = {}
    sets: dict[str, list[str]] = {}
    new_intents: dict[str, torch.Tensor] = {}
    taken: dict[str, set] = {}
    for row in graph.read("coldstart/item_inputs", ids=ids, dataset=dataset):
        text = torch.tensor(row["text"], dtype=torch.float32) if row["text"] is not None else None
        h_self = (state["text_proj"]["item"] @ text) if text is not None and "item" in state["text_proj"] \
            else torch.zeros(x0.shape[1])
        neighbours: list[tuple[int, torch.Tensor]] = []
        for outgoing, predicate, other in row["facts"]:
            r = rel_index.get(predicate)
            e = item_index.get(other, ent_index.get(other))
            if r is None or e is None:  # a predicate or an entity the run never saw: no trained input for it
                continue
            neighbours.append((r + R if outgoing else r, x0[ent_off + e]))
        if state.get("conv_interactions"):  # users who already took the new item, as the convolution sees them
            for uid in row["takenBy"]:
                if uid in user_index:
                    neighbours.append((R_kg + CONSUMES, x0[user_off + user_index[uid]]))
        pending: list[tuple[str, int]] = []  # new intents of this item, with their satisfies relation
        keys: list[str] = []
        if state["use_intents"]:
            seen: set[int] = set()
            # exact before related: where both kinds of one intent (or of a merged group) meet, exact counts
            for it in sorted(row["intents"], key=lambda x: x["kind"] == schema.RELATED):
                related = it["kind"] == schema.RELATED
                if related and not state["related_intents"]:
                    continue
                r_sat = R_kg + (SAT_RELATED if related else SAT_EXACT)
                t, new = training_intent(state, intent_index, it["key"], it["vector"])
                key = it["key"]
                if t is not None:
                    if t in seen:
                        continue
                    seen.add(t)
                    h_int = x0[int_off + t]
                    key = names["intents"][t]  # the node the run trained for it
                elif new and it["vector"] is not None and "intent" in state["text_proj"]:
                    h_int = state["text_proj"]["intent"] @ torch.tensor(it["vector"], dtype=torch.float32)
                    pending.append((key, r_sat))
                else:
                    continue
                neighbours.append((r_sat + R, h_int))
                if len(keys) < state["max_item_intents"]:
                    keys.append(key)
        vectors[row["id"]] = embed_new_node(state, neighbours, h_self=h_self)
        for key, r_sat in pending:  # an intent new to the run: eq. 3 over its one neighbour, this item
            if key not in new_intents:
                vec = next(i["vector"] for i in row["intents"] if i["key"] == key)
                h_a = state["text_proj"]["intent"] @ torch.tensor(vec, dtype=torch.float32)
                new_intents[key] = embed_new_node(state, [(r_sat, h_self)], h_self=h_a)
        sets[row["id"]] = keys
        taken[row["id"]] = set(row["takenBy"])
    missing = [i for i in ids if i not in vectors]
    if missing:
        raise NotFound(f"item {missing[0]} is not in dataset {dataset!r}")
    return vectors, sets, new_intents, taken


def _merge_recommendations(graph: Graph, state: dict, dataset: str, run: str, vectors: dict[str, torch.Tensor],
                           intent_sets: dict[str, list[str]], new_intent_vecs: dict[str, torch.Tensor],
                           taken: dict[str, set]) -> tuple[list[dict], int, int]:
    """Score the new items for every user of the run (eq. 9–11) and merge them into the materialised top-k."""
    from .models.ikgr import ikgr_scores

    prop = schema.embedding_property(MODEL)
    users = graph.read("coldstart/user_vectors", dataset=dataset, prop=prop, run=run)
    if not users:
        return [], 0, 0
    lam = float(state["lam"])
    ids = list(vectors)
    U = np.asarray([u["vector"] for u in users], dtype=np.float64)
    V = np.stack([vectors[i].double().numpy() for i in ids])
    d = U.shape[1]
    if lam:
        ivec = {r["key"]: np.asarray(r["vector"], dtype=np.float64)
                for r in graph.read("coldstart/run_intent_vectors", run=run)}
        ivec.update({k: v.double().numpy() for k, v in new_intent_vecs.items()})

        def stack(keys: list[str]) -> np.ndarray:
            rows = [ivec[k] for k in keys if k in ivec]
            return np.stack(rows) if rows else np.zeros((0, d))

        scores = ikgr_scores(U, [stack(u["intents"]) for u in users], V, [stack(intent_sets[i]) for i in ids], lam)
    else:
        scores = ikgr_scores(U, [], V, [], 0.0)
    current: dict[str, list[dict]] = {}
    for r in graph.read("coldstart/recommended", run=run, dataset=dataset):
        current.setdefault(r["user"], []).append({"item": r["item"], "score": float(r["score"])})
    rows, added = [], 0
    for n, u in enumerate(users):
        have = current.get(u["id"], [])
        k = len(have)
        if not k:
            continue
        cand = [{"item": i, "score": float(scores[n, j])} for j, i in enumerate(ids) if u["id"] not in taken[i]]
        cur_ids = {h["item"] for h in have}
        merged = sorted([h for h in have] + [c for c in cand if c["item"] not in cur_ids],
                        key=lambda x: -x["score"])[:k]
        new_here = sum(m["item"] in vectors and m["item"] not in cur_ids for m in merged)
        if new_here:
            added += new_here
            rows.append({"user": u["id"], "items": [{"item": m["item"], "rank": r + 1, "score": m["score"]}
                                                    for r, m in enumerate(merged)]})
    return rows, added, len(users)


@dataclass
class ColdUserReport:
    run: str
    dataset: str
    users: list[str]
    recommendations: int = 0
    seconds: float = 0.0
    #: seconds of the inductive part (vector and scores over every item) per new user
    seconds_per_user: float = 0.0
    per_user: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def new_users(graph: Graph, dataset: str, state: dict, run: str) -> list[str]:
    """The dataset's users the run did not train on and that no cold start has given a vector of ``run`` yet."""
    return _new_ids(graph, "coldstart/dataset_users", dataset, state["ids"]["users"], run)


def cold_start_users(graph: Graph, settings: Settings, dataset: str, users: Sequence[str] | None = None, *,
                     k: int = 10, run: str | None = None, progress: bool = False) -> ColdUserReport:
    """Recommendations for users the newest IKGR run never trained on (``users``; default: every such user of
    ``dataset`` not cold-started yet), from their few interactions and profile, without retraining.

    A new user's vector is eq. 3 over what the graph knows of them (their projected profile text as their own
    input; the items they took, their profile intents and the intents inherited from those items, as in
    training, as the neighbourhood); their intent set is built as in training (profile intents first, then
    the taken items' intents by frequency). The run's eq. 9–11 then scores every item the run has a vector for;
    the top ``k`` the user has not taken are written as the run's ``RECOMMENDED`` edges, in one transaction.
    """
    from .explain import check_range, resolve_user
    from .models.ikgr import embed_new_node, ikgr_scores, new_user_inputs

    check_range("k", k, 1, 1000)
    t_all = time.perf_counter()
    run, state = load_state(graph, dataset, run)
    known = set(state["ids"]["users"])
    if users is None:
        ids = new_users(graph, dataset, state, run)
    else:
        ids = []
        for u in users:
            uid, _ = resolve_user(graph, u.strip(), dataset)
            if uid in known:
                raise ConfigError(f"user {uid} is in the training data of run {run}: cold start is for new users",
                                  hint="kgp cold-start -d DATASET --users without a list finds the new ones")
            ids.append(uid)
        ids = list(dict.fromkeys(ids))
    report = ColdUserReport(run, dataset, ids)
    if not ids:
        report.seconds = time.perf_counter() - t_all
        return report
    from .embed import embed_graph

    embed_graph(graph, settings, dataset, progress=progress, labels=[schema.USER])
    t0 = time.perf_counter()
    prop = schema.embedding_property(MODEL)
    names = state["ids"]
    item_index = {kk: n for n, kk in enumerate(names["items"])}
    intent_index = {kk: n for n, kk in enumerate(names["intents"])}
    items = graph.read("coldstart/item_vectors", dataset=dataset, prop=prop, run=run)
    if not items:
        raise NotFound(f"run {run} has no item vectors in the graph", hint=f"kgp train {MODEL} -d {dataset}")
    d = len(items[0]["vector"])
    V = np.asarray([i["vector"] for i in items], dtype=np.float64)
    lam = float(state["lam"])
    ivec: dict[str, np.ndarray] = {}
    if lam:
        ivec = {r["key"]: np.asarray(r["vector"], dtype=np.float64)
                for r in graph.read("coldstart/run_intent_vectors", run=run)}

    def stack(keys: list[str]) -> np.ndarray:
        rows = [ivec[kk] for kk in keys if kk in ivec]
        return np.stack(rows) if rows else np.zeros((0, d))

    item_int = [stack(i["intents"]) for i in items] if lam else []
    item_pos = {i["id"]: n for n, i in enumerate(items)}
    user_rows, rec_rows = [], []
    def trained(key: str) -> int | None:  # a stored intent's trained node (merged, dropped: as in training)
        return training_intent(state, intent_index, key, None)[0] if key in intent_index else None

    for row in graph.read("coldstart/user_inputs", ids=ids, dataset=dataset, prop=prop):
        text = torch.tensor(row["text"], dtype=torch.float32) if row["text"] is not None else None
        known_items = [it for it in row["items"] if it["id"] in item_index]
        profile = [(trained(it["key"]), it["kind"] == schema.RELATED)
                   for it in sorted(row["intents"], key=lambda x: x["kind"] == schema.RELATED)]
        nb, set_idx = new_user_inputs(
            state, [item_index[it["id"]] for it in known_items], [(t, rel) for t, rel in profile if t is not None],
            [list(dict.fromkeys(t for t in map(trained, it["intents"]) if t is not None)) for it in known_items])
        sets = [names["intents"][t] for t in set_idx]
        e_u = embed_new_node(state, nb, text=text, kind="user")
        s = ikgr_scores(e_u.double().numpy()[None], [stack(sets)] if lam else [], V, item_int, lam)[0]
        taken = {it["id"] for it in row["items"]}
        s[[item_pos[t] for t in taken if t in item_pos]] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        recs = [{"item": items[j]["id"], "rank": r + 1, "score": float(s[j])}
                for r, j in enumerate(top.tolist()) if np.isfinite(s[j])]
        user_rows.append({"id": row["id"], "props": {prop: e_u.tolist(), f"{prop}_run": run,
                                                    f"{prop}_intents": sets}})
        rec_rows.append({"user": row["id"], "items": recs})
        report.per_user[row["id"]] = {"interactions": len(row["items"]), "known_items": sum(
            it["id"] in item_index for it in row["items"]), "intents": sets, "recommendations": len(recs)}
    report.seconds_per_user = (time.perf_counter() - t0) / len(ids)
    with graph.transaction("coldstart/users") as tx:
        tx.run("runs/lock_dataset", dataset=dataset)
        tx.run("coldstart/set_users", rows=user_rows)
        tx.run("coldstart/replace_recommendations", rows=rec_rows, run=run, model=MODEL)
    report.recommendations = sum(len(r["items"]) for r in rec_rows)
    report.seconds = time.perf_counter() - t_all
    return report
