"""Measuring IKGR's cold start (``kgp cold-start --evaluate``).

A seeded share of the items that have interactions (default 10 %) is held out *with everything about them*:
their interactions, KG triples and intent edges are removed from the data IKGR trains on (the items are not in
its index at all). After training on the rest, each cold item gets its vector from the inductive eq. 3
(:func:`kgplatform.models.ikgr.embed_new_node`: its projected text, KG neighbours and intents through the
trained weights), as ``kgp cold-start`` does in the graph. Every user who took a cold item then ranks **all
cold items**; relevant are the cold items the user took. Rows:

* ``ikgr_inductive``: the run's eq. 9–11 score of the inductive vectors;
* ``text_only``: cosine between the cold item's text vector and the mean text vector of the user's (warm)
  items;
* ``popularity``: training popularity is zero for every cold item, so it orders them by a seeded random
  tie-break: the chance level a popularity model has on new items.

Metrics per user (HR@10, NDCG@10, Recall@10 with binary relevance), 95 % bootstrap intervals over users and
paired differences; the inductive step's latency per new item (vector and scores for every user).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np
import torch

from ..data import RecData
from ..errors import ConfigError, TrainingError
from ..eval.stats import bootstrap_interval, paired_difference
from ..models.ikgr import ikgr_scores, unit_rows as _unit


def drop_items(data: RecData, cold: np.ndarray) -> RecData:
    """``data`` without the items ``cold`` (indices): their interactions, KG triples and intent edges are gone and
    the remaining items are renumbered in order (entities after them keep their order)."""
    n = data.num_items
    keep = np.ones(n, dtype=bool)
    keep[cold] = False
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    n_w = int(keep.sum())
    seqs, ts, sess = [], [] if data.seq_ts is not None else None, [] if data.seq_session is not None else None
    ptr = data.seq_indptr.numpy()
    items = data.seq_items.numpy()
    for u in range(data.num_users):
        s = items[ptr[u]:ptr[u + 1]]
        m = keep[s]
        seqs.append(new_index[s[m]].tolist())
        if ts is not None:
            ts.append(data.seq_ts.numpy()[ptr[u]:ptr[u + 1]][m].tolist())
        if sess is not None:
            sess.append(data.seq_session.numpy()[ptr[u]:ptr[u + 1]][m].tolist())

    def ent(e: np.ndarray) -> np.ndarray:  # old entity index → new (-1 for a cold item)
        return np.where(e < n, new_index[np.minimum(e, n - 1)], e - n + n_w)

    triples = None
    if data.has_kg:
        h, r, t = (x.numpy() for x in (data.kg_heads, data.kg_rels, data.kg_tails))
        h2, t2 = ent(h), ent(t)
        ok = (h2 >= 0) & (t2 >= 0)
        triples = np.stack([h2[ok], r[ok], t2[ok]], axis=1)
    ii = None
    if data.item_intents is not None and data.item_intents.numel():
        e = data.item_intents.numpy()
        ok = keep[e[:, 0]]
        ii = np.stack([new_index[e[ok, 0]], e[ok, 1], data.item_intent_kind.numpy()[ok]], axis=1)
    ui = None
    if data.user_intents is not None:
        ui = np.concatenate([data.user_intents.numpy(), data.user_intent_kind.numpy()[:, None]], axis=1)
    return RecData.from_sequences(
        data.dataset, data.user_ids, [i for i, k in zip(data.item_ids, keep) if k], seqs,
        timestamps=ts, sessions=sess, kg_triples=triples,
        num_entities=(data.num_entities - n + n_w) if data.has_kg else None,
        relation_names=data.relation_names or None, entity_ids=data.entity_ids, intent_keys=data.intent_keys,
        item_intents=ii, user_intents=ui,
        item_text_emb=None if data.item_text_emb is None else data.item_text_emb[torch.as_tensor(keep)],
        user_text_emb=data.user_text_emb, intent_text_emb=data.intent_text_emb,
    )


def _hold_out(eligible: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` (at least 2) of ``eligible``, sorted."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=max(2, int(round(fraction * len(eligible)))), replace=False))


def _train_warm(warm: RecData, *, epochs: int, seed: int, device: str, cache_dir, model_config: dict | None,
                log: Callable[[str], None]):
    """IKGR trained on the warm data: the run's result, the model (eval mode) and its inductive state."""
    from ..train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=epochs, eval_every=max(1, epochs // 5), device=device, seed=seed, cache_dir=cache_dir)
    result = Trainer(cfg, log=log).fit("ikgr", warm, model_config)
    model = result.model.eval()
    state = model.inductive_state()
    if state is None:
        raise TrainingError("cold start needs a single-layer IKGR (num_layers=1)")
    return result, model, state


def _warm_run(result) -> dict[str, Any]:
    return {"run_id": result.run_id, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "seconds_per_epoch": result.seconds_per_epoch,
            "warm_test_full_ndcg10": result.metrics["test"]["full"]["NDCG@10"]}


def _report(per_user: dict[str, dict[str, np.ndarray]],
            leads: tuple[str, ...] = ("ikgr_inductive",)) -> tuple[dict, dict]:
    """Intervals per row and metric, and the paired differences of each row of ``leads`` against every other
    row (each pair once)."""
    rows = {name: {m: dataclasses.asdict(bootstrap_interval(v)) for m, v in ms.items()}
            for name, ms in per_user.items()}
    diffs: dict[str, dict] = {}
    for a in leads:
        for b in per_user:
            if b == a or f"{b} - {a}" in diffs:
                continue
            diffs[f"{a} - {b}"] = {m: dataclasses.asdict(paired_difference(
                per_user[a][m], per_user[b][m], names=(a, b))) for m in per_user[b]}
    return rows, diffs


#: mixing weights tried for the popularity prior of the blended new-user row (0 = IKGR alone, 1 = popularity alone)
BLEND_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def _zscore(x: np.ndarray) -> np.ndarray:
    """Per row over its finite entries (masked items stay ``-inf``)."""
    ok = np.isfinite(x)
    out = np.full_like(x, -np.inf)
    for r in range(x.shape[0]):
        v = x[r, ok[r]]
        out[r, ok[r]] = (v - v.mean()) / (v.std() + 1e-12)
    return out


def crossfit_blend(a: np.ndarray, b: np.ndarray, relevant: list[set[int]], k: int, *, seed: int,
                   grid: tuple[float, ...] = BLEND_GRID, folds: int = 2) -> tuple[np.ndarray, list[float]]:
    """``(1 − β)·z(a) + β·z(b)`` per user (z: standardised over the user's rankable items; items masked in ``a``
    stay ``-inf``), with β chosen by **cross-fitting**: the users are split into ``folds`` seeded folds, and each
    fold is scored with the β whose mean NDCG@k is best on the *other* folds (ties: the smaller β), so no user's
    own relevant items choose its weight. β = 0 is ``a`` alone, β = 1 is ``b`` alone. Returns the blended scores
    and the β of each fold."""
    za, zb = _zscore(a), _zscore(b)
    ok = np.isfinite(za) & np.isfinite(zb)

    def mix(w: float) -> np.ndarray:
        return np.where(ok, (1.0 - w) * np.where(ok, za, 0.0) + w * np.where(ok, zb, 0.0), -np.inf)

    fold = np.random.default_rng(seed).permutation(len(relevant)) % folds
    ndcg = {w: _ranking_metrics(mix(w), relevant, k)[f"NDCG@{k}"] for w in grid}
    out, chosen = np.full_like(za, -np.inf), []
    for f in range(folds):
        rest = fold != f
        w = max(grid, key=lambda g: (ndcg[g][rest].mean(), -g)) if rest.any() else grid[0]
        chosen.append(float(w))
        out[fold == f] = mix(w)[fold == f]
    return out, chosen


def _ranking_metrics(scores: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, np.ndarray]:
    """HR@k, NDCG@k and Recall@k per user (rows of ``scores``) with binary relevance."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    hr, ndcg, rec = (np.zeros(len(relevant)) for _ in range(3))
    for u, rel in enumerate(relevant):
        hits = np.array([i in rel for i in top[u]], dtype=float)
        hr[u] = float(hits.any())
        ndcg[u] = float((hits * disc).sum() / disc[: min(len(rel), k)].sum())
        rec[u] = float(hits.sum() / len(rel))
    return {f"HR@{k}": hr, f"NDCG@{k}": ndcg, f"Recall@{k}": rec}


def cold_start_experiment(data: RecData, *, fraction: float = 0.1, seed: int = 2024, epochs: int = 20,
                          k: int = 10, device: str = "cpu", cache_dir=None, model_config: dict | None = None,
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Hold out ``fraction`` of the items with interactions, train IKGR on the rest, rank the cold items for the
    users who took them (see the module docstring); every figure in a JSON-ready dict."""
    from ..models.ikgr import embed_new_node
    from ..data.intent_graph import SAT_EXACT, SAT_RELATED

    if not 0 < fraction < 1:
        raise ConfigError(f"--fraction must be between 0 and 1, got {fraction}")
    if data.item_text_emb is None:
        raise ConfigError(f"dataset {data.dataset!r} has no item text vectors: cold items would have no input",
                          hint=f"kgp embed -d {data.dataset}")
    counts = np.bincount(data.seq_items.numpy(), minlength=data.num_items)
    cold = _hold_out(np.flatnonzero(counts > 0), fraction, seed)
    warm = drop_items(data, cold)
    log(f"[cold-start] {len(cold)} of {data.num_items} items held out with their {int(counts[cold].sum())} "
        f"interactions; training IKGR on the rest ({warm.num_interactions} interactions)")
    result, model, state = _train_warm(warm, epochs=epochs, seed=seed, device=device, cache_dir=cache_dir,
                                       model_config=model_config, log=log)
    x0, R, R_kg = state["x0"], state["num_rel_total"], state["rel_base"]
    n_w = warm.num_items
    new_index = np.full(data.num_items, -1, dtype=np.int64)
    keep = np.ones(data.num_items, dtype=bool)
    keep[cold] = False
    new_index[keep] = np.arange(n_w)
    with torch.no_grad():
        model.prepare_eval()
        e = model._embeddings()
        U = e[model.user_off: model.user_off + model.num_users].double().numpy()
        T = model.intent_embeddings().double().numpy() if model.num_intents else np.zeros((0, U.shape[1]))
    lam = float(state["lam"])
    user_int = [T[[t for t in model.user_sets[u].tolist() if t >= 0]] if len(T) else np.zeros((0, U.shape[1]))
                for u in range(model.num_users)]
    # --- inductive vectors of the cold items
    heads, rels, tails = ((x.numpy() for x in (data.kg_heads, data.kg_rels, data.kg_tails)) if data.has_kg
                          else (np.zeros(0, int),) * 3)
    n = data.num_items

    def warm_ent(x: int) -> int:
        return int(new_index[x]) if x < n else x - n + n_w

    ii = data.item_intents.numpy() if data.item_intents is not None else np.zeros((0, 2), int)
    ii_kind = data.item_intent_kind.numpy() if data.item_intent_kind is not None else np.zeros(0, int)
    t0 = time.perf_counter()
    V, item_int = [], []
    for c in cold.tolist():
        nb = []
        for h, r, t in zip(heads[heads == c], rels[heads == c], tails[heads == c]):
            o = warm_ent(int(t))
            if o >= 0:
                nb.append((int(r) + R, x0[state["ent_off"] + o]))
        for h, r, t in zip(heads[tails == c], rels[tails == c], tails[tails == c]):
            o = warm_ent(int(h))
            if o >= 0:
                nb.append((int(r), x0[state["ent_off"] + o]))
        mine = []
        if state["use_intents"] and len(ii):
            for (it, tkey), kind in zip(ii[ii[:, 0] == c], ii_kind[ii[:, 0] == c]):
                if kind and not state["related_intents"]:
                    continue
                nb.append((R_kg + (SAT_RELATED if kind else SAT_EXACT) + R, x0[state["int_off"] + int(tkey)]))
                mine.append(int(tkey))
        v = embed_new_node(state, nb, text=data.item_text_emb[c], kind="item")
        V.append(v.double().numpy())
        item_int.append(T[mine[: state["max_item_intents"]]] if mine and len(T) else np.zeros((0, U.shape[1])))
    V = np.stack(V)
    ikgr = ikgr_scores(U, user_int, V, item_int, lam)
    latency_ms = (time.perf_counter() - t0) * 1000 / len(cold)
    # --- users who took a cold item, and the baselines
    cold_pos = {int(c): j for j, c in enumerate(cold.tolist())}
    ptr, items = data.seq_indptr.numpy(), data.seq_items.numpy()
    users, relevant = [], []
    for u in range(data.num_users):
        rel = {cold_pos[i] for i in items[ptr[u]:ptr[u + 1]].tolist() if i in cold_pos}
        if rel and warm.sequence(u).numel():
            users.append(u)
            relevant.append(rel)
    text = data.item_text_emb.double().numpy()
    wptr, witems = warm.seq_indptr.numpy(), warm.seq_items.numpy()
    wtext = warm.item_text_emb.double().numpy()
    profiles = np.stack([wtext[witems[wptr[u]:wptr[u + 1]]].mean(0) for u in users])
    rows = {
        "ikgr_inductive": ikgr[users],
        "text_only": _unit(profiles) @ _unit(text[cold]).T,
        "popularity": np.random.default_rng(seed + 1).random((len(users), len(cold))),
    }
    out_rows, diffs = _report({name: _ranking_metrics(s, relevant, k) for name, s in rows.items()})
    return {
        "dataset": data.dataset, "protocol": f"rank all {len(cold)} cold items; relevant: the cold items the user "
                                            "took; binary relevance", "k": k, "seed": seed, "fraction": fraction,
        "cold_items": len(cold), "cold_interactions": int(counts[cold].sum()), "users": len(users),
        "lambda": lam, "intents": bool(model.num_intents), "kg": bool(data.has_kg),
        "warm_run": _warm_run(result), "latency_ms_per_item": latency_ms, "rows": out_rows, "differences": diffs,
    }


def drop_users(data: RecData, cold: np.ndarray) -> RecData:
    """``data`` with the interactions of the users ``cold`` removed (the users stay in the index with empty
    histories; their profile text and profile intents stay: a new user may have a profile)."""
    gone = np.zeros(data.num_users, dtype=bool)
    gone[cold] = True
    ptr, items = data.seq_indptr.numpy(), data.seq_items.numpy()

    def cut(x: np.ndarray | None, u: int) -> list | None:
        return None if x is None else ([] if gone[u] else x[ptr[u]:ptr[u + 1]].tolist())

    ts = data.seq_ts.numpy() if data.seq_ts is not None else None
    ss = data.seq_session.numpy() if data.seq_session is not None else None
    triples = (np.stack([data.kg_heads.numpy(), data.kg_rels.numpy(), data.kg_tails.numpy()], axis=1)
               if data.has_kg else None)
    ii = (np.concatenate([data.item_intents.numpy(), data.item_intent_kind.numpy()[:, None]], axis=1)
          if data.item_intents is not None else None)
    ui = (np.concatenate([data.user_intents.numpy(), data.user_intent_kind.numpy()[:, None]], axis=1)
          if data.user_intents is not None else None)
    return RecData.from_sequences(
        data.dataset, data.user_ids, data.item_ids, [cut(items, u) for u in range(data.num_users)],
        timestamps=None if ts is None else [cut(ts, u) for u in range(data.num_users)],
        sessions=None if ss is None else [cut(ss, u) for u in range(data.num_users)],
        kg_triples=triples, num_entities=data.num_entities if data.has_kg else None,
        relation_names=data.relation_names or None, entity_ids=data.entity_ids, intent_keys=data.intent_keys,
        item_intents=ii, user_intents=ui, item_text_emb=data.item_text_emb, user_text_emb=data.user_text_emb,
        intent_text_emb=data.intent_text_emb,
    )


#: the blended new-user row: IKGR's inductive score plus a popularity prior (see :func:`crossfit_blend`)
BLEND = "ikgr+popularity"


def cold_user_experiment(data: RecData, *, fraction: float = 0.1, few: int = 5, seed: int = 2024,
                         epochs: int = 20, k: int = 10, device: str = "cpu", cache_dir=None,
                         model_config: dict | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """New users: hold out ``fraction`` of the users with more than ``few`` interactions (all their interactions
    leave the training data), train IKGR on the rest, then give each cold user their first ``few`` items (and
    their profile) through the inductive path (:func:`kgplatform.models.ikgr.new_user_inputs` +
    ``embed_new_node``, as ``kgp cold-start --users``) and rank every item they have not taken; relevant are
    their remaining items. Rows: ``ikgr_inductive``, ``popularity`` (training counts), ``text_only`` (cosine to
    the mean text of the ``few`` items, where items have text), and ``ikgr+popularity`` (IKGR's score and
    log(1 + training popularity), each standardised per user, mixed with a weight chosen by cross-fitting,
    :func:`crossfit_blend`)."""
    from ..models.ikgr import embed_new_node, new_user_inputs

    ptr, items = data.seq_indptr.numpy(), data.seq_items.numpy()
    lengths = np.diff(ptr)
    cold = _hold_out(np.flatnonzero(lengths > few), fraction, seed)
    warm = drop_users(data, cold)
    log(f"[cold-start users] {len(cold)} of {data.num_users} users held out with their "
        f"{int(lengths[cold].sum())} interactions; training IKGR on the rest ({warm.num_interactions})")
    result, model, state = _train_warm(warm, epochs=epochs, seed=seed, device=device, cache_dir=cache_dir,
                                       model_config=model_config, log=log)
    with torch.no_grad():
        model.prepare_eval()
        e = model._embeddings()
        V = e[model.ent_off: model.ent_off + model.num_items].double().numpy()
        T = model.intent_embeddings().double().numpy() if model.num_intents else np.zeros((0, V.shape[1]))
    lam = float(state["lam"])
    item_sets = [[t for t in model.item_sets[i].tolist() if t >= 0] for i in range(model.num_items)]
    item_int = [T[s] if (lam and s) else np.zeros((0, V.shape[1])) for s in item_sets] if lam else []
    prof: dict[int, list[tuple[int, bool]]] = {}
    if data.user_intents is not None:
        for (u, t), kind in zip(data.user_intents.tolist(), data.user_intent_kind.tolist()):
            prof.setdefault(u, []).append((t, bool(kind)))
    pop = np.bincount(warm.seq_items.numpy(), minlength=data.num_items).astype(float)
    text = data.item_text_emb.double().numpy() if data.item_text_emb is not None else None
    rows: dict[str, list[np.ndarray]] = {"ikgr_inductive": [], "popularity": []}
    if text is not None:
        rows["text_only"] = []
    relevant: list[set[int]] = []
    t0 = time.perf_counter()
    for u in cold.tolist():
        seq = items[ptr[u]:ptr[u + 1]]
        known, rest = seq[:few].tolist(), set(seq[few:].tolist()) - set(seq[:few].tolist())
        if not rest:
            continue
        nb, sets = new_user_inputs(state, known, prof.get(u, []), [item_sets[i] for i in known])
        utext = data.user_text_emb[u] if data.user_text_emb is not None else None
        e_u = embed_new_node(state, nb, text=utext, kind="user").double().numpy()
        s = ikgr_scores(e_u[None], [T[sets] if sets else np.zeros((0, V.shape[1]))] if lam else [], V,
                        item_int, lam)[0]
        mask = np.zeros(data.num_items, dtype=bool)
        mask[known] = True
        rows["ikgr_inductive"].append(np.where(mask, -np.inf, s))
        rows["popularity"].append(np.where(mask, -np.inf, pop + np.random.default_rng(seed + u).random(len(pop)) * 1e-3))
        if text is not None:
            rows["text_only"].append(np.where(mask, -np.inf, _unit(text) @ _unit(text[known].mean(0))))
        relevant.append(rest)
    latency_ms = (time.perf_counter() - t0) * 1000 / max(len(relevant), 1)
    scores = {name: np.stack(v) for name, v in rows.items()}
    pop_s = scores["popularity"]
    log_pop = np.where(np.isfinite(pop_s), np.log1p(np.maximum(pop_s, 0.0)), -np.inf)
    scores[BLEND], betas = crossfit_blend(scores["ikgr_inductive"], log_pop, relevant, k, seed=seed)
    out_rows, diffs = _report({name: _ranking_metrics(v, relevant, k) for name, v in scores.items()},
                              leads=("ikgr_inductive", BLEND))
    return {
        "blend": {"row": BLEND, "score": "(1 - beta) * z(ikgr) + beta * z(log(1 + training popularity)), z per user over rankable items",
                  "grid": list(BLEND_GRID), "beta_per_fold": betas,
                  "chosen_by": "2-fold cross-fitting: each half of the cold users uses the beta with the best "
                               f"mean NDCG@{k} on the other half"},
        "dataset": data.dataset, "protocol": f"each cold user gives their first {few} items; rank every item they "
                                            "have not taken; relevant: their remaining items; binary relevance",
        "k": k, "seed": seed, "fraction": fraction, "few": few, "cold_users": len(cold), "users": len(relevant),
        "lambda": lam, "intents": bool(model.num_intents), "kg": bool(data.has_kg),
        "warm_run": _warm_run(result), "latency_ms_per_user": latency_ms, "rows": out_rows, "differences": diffs,
    }
