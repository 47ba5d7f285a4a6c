"""Personas: HDGI user embeddings over the training graph, grouped into K personas (stage 1 of the persona paper).

:func:`learn_personas` takes a *training view* (:func:`kgplatform.data.training_view`) and nothing else, so
validation and test interactions can reach neither the metapaths, nor the user features, nor the persona
statistics. Steps:

1. user features: the mean text vector (``kgp embed``) of each user's training items — no personal data;
2. metapaths over the training graph: ``UIU`` always, ``UIEIU`` where the external KG links items to
   entities (entities linked to more than ``entity_max_share`` of the items are dropped: a hub such as
   "American films" joins everyone and says nothing about anyone), ``UITIU`` where LLM intents exist;
3. HDGI (:class:`kgplatform.nn.hdgi.HDGI`) trained with Deep Graph Infomax, full batch;
4. spherical k-means (k-means++ seeding, cosine) on the L2-normalised user embeddings; K is the flag's value
   or, by default, the K in ``k_range`` with the highest mean silhouette (cosine distance, on a seeded sample
   of at most 4,000 users) — the usual criterion for "how many groups does the data hold";
5. per persona: its size, centroid, the users' soft weight (softmax of cosine similarity to every centroid,
   temperature 0.1, the assigned persona's share), and its most *distinctive* training items, KG entities and
   intents: ranked by :math:`p_k(x)\\log(p_k(x)/p(x))` — frequent among the members and over-represented
   compared with all users (a term of the KL divergence between the persona's and everyone's distribution).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from kgplatform.data.contract import require_training, train_pairs
from kgplatform.data.recdata import RecData
from kgplatform.errors import TrainingError
from kgplatform.nn.hdgi import HDGI, build_metapaths, fit_hdgi

METAPATHS = ("UIU", "UIEIU", "UITIU")


@dataclass
class HDGIConfig:
    """Settings of :func:`learn_personas`.

    Args:
        hidden: size of the HDGI user embeddings.
        att: semantic attention size.
        epochs / lr / patience: DGI training (full batch; stop after ``patience`` epochs without a lower loss).
        metapaths: which of ``UIU``, ``UIEIU``, ``UITIU`` to use (missing side graphs are skipped).
        entity_max_share: KG entities linked to more than this share of items are left out of ``UIEIU``.
        user_vectors: ``hdgi`` (the paper) or ``mean`` (ablation: the users' mean item text vectors, no HDGI).
        k: number of personas; ``0`` chooses K in ``k_range`` by silhouette.
        k_range: candidates for K.
        silhouette_sample: users sampled for the silhouette.
        kmeans_iters / kmeans_restarts: spherical k-means settings.
        top: how many distinctive items/entities/intents to keep per persona.
    """

    hidden: int = 64
    att: int = 128
    epochs: int = 300
    lr: float = 1e-3
    patience: int = 20
    metapaths: tuple[str, ...] = METAPATHS
    entity_max_share: float = 0.1
    user_vectors: str = "hdgi"
    k: int = 0
    k_range: tuple[int, ...] = tuple(range(4, 17))
    silhouette_sample: int = 4000
    kmeans_iters: int = 50
    kmeans_restarts: int = 3
    top: int = 10

    def validate(self) -> HDGIConfig:
        if self.user_vectors not in ("hdgi", "mean"):
            raise TrainingError(f"personas: user_vectors must be hdgi or mean, got {self.user_vectors!r}")
        for name in ("hidden", "att", "epochs", "patience", "kmeans_iters", "kmeans_restarts", "top",
                     "silhouette_sample"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TrainingError(f"personas: {name} must be a positive integer, got {v!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0 or self.k == 1:
            raise TrainingError(f"personas: k must be 0 (choose by silhouette) or at least 2, got {self.k!r}")
        ks = tuple(self.k_range)
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in ks):
            raise TrainingError(f"personas: k_range must hold integers >= 2, got {self.k_range!r}")
        if not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and 0 < self.lr < 1):
            raise TrainingError(f"personas: lr must be in (0, 1), got {self.lr!r}")
        if not (0 < float(self.entity_max_share) <= 1):
            raise TrainingError(f"personas: entity_max_share must be in (0, 1], got {self.entity_max_share!r}")
        unknown = [m for m in self.metapaths if m not in METAPATHS]
        if unknown or not self.metapaths:
            raise TrainingError(f"personas: unknown metapath(s) {', '.join(unknown) or '(none given)'}",
                                hint="choose from " + ", ".join(METAPATHS))
        return self


@dataclass
class Personas:
    """What :func:`learn_personas` produced (indices are the training view's)."""

    user_emb: Tensor  # [U, h] HDGI (or mean-text) user vectors
    assignment: Tensor  # [U] persona of each user (-1: user without training items)
    weight: Tensor  # [U] soft weight of the assigned persona
    centroids: Tensor  # [K, h] unit-norm centroids
    sizes: Tensor  # [K]
    k: int
    silhouette: dict[int, float]  # K -> mean silhouette (only the K that were tried)
    top_items: list[list[tuple[int, float]]]  # per persona: (item index, distinctiveness)
    top_entities: list[list[tuple[int, float]]]  # entity indices (KG space: >= num_items are non-item entities)
    top_intents: list[list[tuple[int, float]]]
    metapaths: list[str]
    metapath_weights: list[float]
    losses: list[float]
    hdgi: HDGI | None = field(default=None, repr=False)  # frozen, with item messages (inductive encoding)
    user_vectors: str = "hdgi"
    item_features: Tensor | None = field(default=None, repr=False)  # item text vectors (``mean`` personas)
    fit_seconds: float = 0.0  # HDGI training wall time

    def infer(self, items: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Personas of nodes known only by their items (anonymous sessions): ``(vector [B, h], persona [B],
        weight [B])``. A node without items gets persona ``-1``."""
        lens = offsets[1:] - offsets[:-1]
        if self.user_vectors == "hdgi":
            if self.hdgi is None:
                raise TrainingError("these personas have no HDGI model attached")
            z = self.hdgi.encode_items(items, offsets)
        else:
            if self.item_features is None:
                raise TrainingError("these personas have no item vectors attached")
            rows = torch.repeat_interleave(torch.arange(lens.numel()), lens)
            z = torch.zeros(lens.numel(), self.item_features.shape[1]).index_add_(0, rows, self.item_features[items])
            z = z / lens.clamp(min=1)[:, None].float()
        return (z, *assign(z, self.centroids, empty=lens == 0))

    def summary(self) -> dict:
        return {"k": self.k, "sizes": self.sizes.tolist(), "silhouette": {str(k): round(v, 4) for k, v in
                                                                         self.silhouette.items()},
                "metapaths": dict(zip(self.metapaths, [round(w, 4) for w in self.metapath_weights])),
                "user_vectors": self.user_vectors, "hdgi_epochs": len(self.losses),
                "hdgi_loss_first": self.losses[0] if self.losses else None,
                "hdgi_loss_last": self.losses[-1] if self.losses else None,
                "hdgi_seconds_per_epoch": self.fit_seconds / len(self.losses) if self.losses else None}


# --------------------------------------------------------------------------------------------- features
def user_text_features(train: RecData) -> Tensor:
    """Mean text vector of each user's *training* items ``[U, d]`` (zeros for a user without items)."""
    require_training(train, "user_text_features")
    if train.item_text_emb is None:
        raise TrainingError(f"{train.dataset}: personas need item text vectors",
                            hint=f"run `kgp embed -d {train.dataset}` first")
    users, items = train_pairs(train)
    x = torch.zeros(train.num_users, train.item_text_emb.shape[1])
    x.index_add_(0, users, train.item_text_emb[items].float())
    return x / torch.bincount(users, minlength=train.num_users).clamp(min=1)[:, None].float()


def item_entity_pairs(train: RecData, max_share: float) -> tuple[Tensor, Tensor, int] | None:
    """``(items, entities, num_entities)`` from the KG triples touching an item (either end), hubs dropped."""
    if not train.has_kg:
        return None
    I = train.num_items
    h, t = train.kg_heads, train.kg_tails
    items = torch.cat([h[h < I], t[t < I]])
    ents = torch.cat([t[h < I], h[t < I]])
    keep = items != ents
    items, ents = items[keep], ents[keep]
    key = torch.unique(items * train.num_entities + ents)
    items, ents = key // train.num_entities, key % train.num_entities
    deg = torch.bincount(ents, minlength=train.num_entities)
    ok = (deg[ents] <= max(2, int(max_share * I))) & (deg[ents] >= 2)  # a degree-1 entity links nothing
    return items[ok], ents[ok], train.num_entities


def item_intent_pairs(train: RecData) -> tuple[Tensor, Tensor, int] | None:
    if not train.has_intents:
        return None
    e = train.item_intents
    return e[:, 0], e[:, 1], train.num_intents


# ------------------------------------------------------------------------------------------- clustering
def spherical_kmeans(x: Tensor, k: int, generator: torch.Generator, iters: int = 50,
                     restarts: int = 3) -> tuple[Tensor, Tensor]:
    """Cosine k-means with k-means++ seeding; the best of ``restarts`` by total similarity.
    Returns ``(centroids [k, d] unit-norm, assignment [N])``."""
    x = F.normalize(x, dim=1)
    n = x.shape[0]
    if n < k:
        raise TrainingError(f"personas: {n} users cannot form {k} personas")
    best = (-math.inf, None, None)
    for _ in range(restarts):
        idx = [int(torch.randint(n, (1,), generator=generator))]
        d2 = (1 - x @ x[idx[0]]).clamp(min=0)
        for _ in range(1, k):
            p = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full((n,), 1.0 / n)
            nxt = int(torch.multinomial(p, 1, generator=generator))
            idx.append(nxt)
            d2 = torch.minimum(d2, (1 - x @ x[nxt]).clamp(min=0))
        c = x[idx].clone()
        for _ in range(iters):
            sim = x @ c.t()
            a = sim.argmax(1)
            new = torch.zeros_like(c).index_add_(0, a, x)
            empty = torch.bincount(a, minlength=k) == 0
            if bool(empty.any()):  # re-seed an empty cluster with the point worst served
                far = torch.argsort(sim.max(1).values)[: int(empty.sum())]
                new[empty] = x[far]
            new = F.normalize(new, dim=1)
            if torch.allclose(new, c, atol=1e-6):
                c = new
                break
            c = new
        a = (x @ c.t()).argmax(1)
        score = float((x * c[a]).sum())
        if score > best[0]:
            best = (score, c, a)
    return best[1], best[2]


def silhouette(x: Tensor, labels: Tensor, k: int) -> float:
    """Mean silhouette with cosine distance (``O(N^2)``: pass a sample)."""
    x = F.normalize(x, dim=1)
    d = (1 - x @ x.t()).clamp(min=0)
    n = x.shape[0]
    onehot = F.one_hot(labels, k).float()  # [N, k]
    counts = onehot.sum(0)  # [k]
    sums = d @ onehot  # [N, k] total distance to each cluster
    own = counts[labels]
    a = sums[torch.arange(n), labels] / (own - 1).clamp(min=1)
    other = sums / counts.clamp(min=1)
    other[torch.arange(n), labels] = math.inf
    other[:, counts == 0] = math.inf
    b = other.min(1).values
    s = (b - a) / torch.maximum(a, b).clamp(min=1e-12)
    s[own <= 1] = 0.0  # sklearn's convention for singletons
    return float(s.mean())


def assign(z: Tensor, centroids: Tensor, *, empty: Tensor | None = None,
           temperature: float = 0.1) -> tuple[Tensor, Tensor]:
    """Nearest centroid (cosine) and its softmax weight; ``empty`` rows get persona ``-1``, weight 0."""
    sim = F.normalize(z, dim=1) @ centroids.t()
    p = torch.softmax(sim / temperature, dim=1)
    w, a = p.max(1)
    if empty is not None:
        a = torch.where(empty, torch.full_like(a, -1), a)
        w = torch.where(empty, torch.zeros_like(w), w)
    return a, w


def choose_k(z: Tensor, cfg: HDGIConfig, gen: torch.Generator) -> tuple[int, dict[int, float]]:
    if cfg.k:
        return cfg.k, {}
    n = z.shape[0]
    sample = torch.randperm(n, generator=gen)[: cfg.silhouette_sample]
    zs = z[sample]
    scores = {}
    for k in cfg.k_range:
        if k >= zs.shape[0]:
            continue
        _, lab = spherical_kmeans(zs, k, gen, cfg.kmeans_iters, 1)
        scores[k] = silhouette(zs, lab, k)
    if not scores:
        raise TrainingError(f"personas: too few users ({n}) for any K in {tuple(cfg.k_range)}")
    return max(scores, key=lambda k: (scores[k], -k)), scores


# -------------------------------------------------------------------------------------- distinctiveness
def distinctive(member_rows: Tensor, member_cols: Tensor, assignment: Tensor, k: int, n_cols: int, top: int
                ) -> list[list[tuple[int, float]]]:
    """Per persona, the columns (items, entities, intents) with the largest :math:`p_k \\log(p_k / p)`, where
    :math:`p_k` is the share of persona k's users who touched the column and :math:`p` the share of all users."""
    if member_rows.numel() == 0:
        return [[] for _ in range(k)]
    key = torch.unique(member_rows * n_cols + member_cols)  # a user counts once per column
    rows, cols = key // n_cols, key % n_cols
    a = assignment[rows]
    ok = a >= 0
    rows, cols, a = rows[ok], cols[ok], a[ok]
    n_users = torch.bincount(assignment[assignment >= 0], minlength=k).float()
    total = float(n_users.sum())
    counts = torch.zeros(k, n_cols).index_put_((a, cols), torch.ones_like(cols, dtype=torch.float32),
                                               accumulate=True)
    p_all = counts.sum(0) / max(total, 1.0)
    p_k = counts / n_users.clamp(min=1)[:, None]
    score = torch.where(p_k > 0, p_k * torch.log(p_k / p_all.clamp(min=1e-12)), torch.zeros_like(p_k))
    score[counts < 2] = 0.0  # one member is an anecdote, not a trait
    out = []
    for j in range(k):
        v, i = torch.topk(score[j], min(top, n_cols))
        out.append([(int(c), float(s)) for c, s in zip(i.tolist(), v.tolist()) if s > 0])
    return out


# ---------------------------------------------------------------------------------------------- learning
def learn_personas(train: RecData, cfg: HDGIConfig | None = None, generator: torch.Generator | None = None,
                   log=None) -> Personas:
    """HDGI user vectors and K personas from a training view (see the module docstring)."""
    require_training(train, "learn_personas")
    cfg = (cfg or HDGIConfig()).validate()
    gen = generator or torch.Generator().manual_seed(0)
    x = user_text_features(train)
    users, items = train_pairs(train)
    empty = torch.bincount(users, minlength=train.num_users) == 0
    hdgi = None
    fit_seconds = 0.0
    losses: list[float] = []
    names: list[str] = []
    weights: list[float] = []
    ie = item_entity_pairs(train, cfg.entity_max_share) if "UIEIU" in cfg.metapaths else None
    it = item_intent_pairs(train) if "UITIU" in cfg.metapaths else None
    if cfg.user_vectors == "hdgi":
        paths = build_metapaths(train.num_users, train.num_items, (users, items), item_entity=ie,
                                item_intent=it, names=cfg.metapaths)
        if not paths:
            raise TrainingError("personas: none of the metapaths " + ", ".join(cfg.metapaths) + " exists here",
                                hint="UIU always exists: include it")
        hdgi = HDGI(x.shape[1], cfg.hidden, paths, cfg.att, generator=gen)
        t0 = time.perf_counter()
        losses = fit_hdgi(hdgi, x, epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, log=log)
        fit_seconds = time.perf_counter() - t0
        hdgi.freeze_messages(x)
        for p in hdgi.parameters():
            p.requires_grad_(False)
        z = hdgi.embed(x)
        names = hdgi.encoder.metapath_names
        weights = [float(w) for w in hdgi.weights]
    else:
        z = x.clone()
    live = torch.nonzero(~empty).view(-1)
    k, sil = choose_k(z[live], cfg, gen)
    centroids, _ = spherical_kmeans(z[live], k, gen, cfg.kmeans_iters, cfg.kmeans_restarts)
    assignment, weight = assign(z, centroids, empty=empty)
    sizes = torch.bincount(assignment[assignment >= 0], minlength=k)
    if log:
        log(f"[personas] K={k} ({'chosen by silhouette' if not cfg.k else 'given'}), sizes {sizes.tolist()}")
    top_items = distinctive(users, items, assignment, k, train.num_items, cfg.top)
    top_entities: list[list[tuple[int, float]]] = [[] for _ in range(k)]
    if train.has_kg:
        i2e = item_entity_pairs(train, 1.0)
        if i2e is not None and i2e[0].numel():
            # user -> entity through the user's items (CSR join on items)
            order = torch.argsort(i2e[0])
            e_items, e_ents = i2e[0][order], i2e[1][order]
            starts = torch.searchsorted(e_items, items)
            ends = torch.searchsorted(e_items, items, right=True)
            cnt = ends - starts
            rows = torch.repeat_interleave(users, cnt)
            offs = torch.arange(int(cnt.sum())) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
            cols = e_ents[torch.repeat_interleave(starts, cnt) + offs]
            # three times as many: a display drops the entities without a readable name
            top_entities = distinctive(rows, cols, assignment, k, train.num_entities, cfg.top * 3)
    top_intents: list[list[tuple[int, float]]] = [[] for _ in range(k)]
    if train.has_intents:
        ii = train.item_intents
        order = torch.argsort(ii[:, 0])
        t_items, t_int = ii[order, 0], ii[order, 1]
        starts = torch.searchsorted(t_items, items)
        cnt = torch.searchsorted(t_items, items, right=True) - starts
        rows = torch.repeat_interleave(users, cnt)
        offs = torch.arange(int(cnt.sum())) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
        cols = t_int[torch.repeat_interleave(starts, cnt) + offs]
        top_intents = distinctive(rows, cols, assignment, k, train.num_intents, cfg.top)
    return Personas(user_emb=z, assignment=assignment, weight=weight, centroids=centroids, sizes=sizes, k=k,
                    silhouette=sil, top_items=top_items, top_entities=top_entities, top_intents=top_intents,
                    metapaths=names, metapath_weights=weights, losses=losses, hdgi=hdgi,
                    user_vectors=cfg.user_vectors,
                    item_features=train.item_text_emb.float() if cfg.user_vectors == "mean" else None,
                    fit_seconds=fit_seconds)


def persona_vectors(personas: Personas, kind: str = "centroid") -> Tensor:
    """Per-user persona vectors ``[U, h]``: the assigned persona's centroid (``centroid``) or the user's own
    vector (``user``); zeros for users without a persona."""
    if kind == "user":
        return F.normalize(personas.user_emb, dim=1)
    out = torch.zeros(personas.assignment.numel(), personas.centroids.shape[1])
    m = personas.assignment >= 0
    out[m] = personas.centroids[personas.assignment[m]]
    return out


__all__ = ["HDGIConfig", "METAPATHS", "Personas", "assign", "choose_k", "distinctive", "item_entity_pairs",
           "learn_personas", "persona_vectors", "silhouette", "spherical_kmeans", "user_text_features"]
