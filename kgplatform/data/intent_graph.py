"""The intent-augmented knowledge graph of IKGR (paper 001, Sections 3.3–4.2), as a reusable builder.

One node space holds users ``[0, U)``, entities ``[U, U + E)`` (items first, then other KG entities) and
intents ``[U + E, U + E + T)``. From a training view it builds:

* **intent sets** (Eq. 8 / 10): per item its intents (exact before related), per user the profile intents
  and — with ``inherit_user_intents`` — the intents of the items the user consumed *in training*, most
  frequent first; both capped and ``-1``-padded;
* **unified triples** ``(h, r, t)``: the KG's relations ``[0, R_kg)`` followed by the extra relations
  :data:`EXTRA_RELATIONS` (*consumes*, *satisfies* exact/related, *has_intent* exact/related/inherited);
* the **tail range** of every relation (for type-consistent corruption in TransH's margin loss);
* the **convolution graph**: every triple plus the training *consumes* edges, both directions (reverse
  relation ``r + R``).

Built from a ``role="train"`` RecData only (:func:`~kgplatform.data.contract.require_training`): the
consumes edges and inherited intents can never include a validation or test interaction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kgplatform.data.contract import require_training
from kgplatform.data.recdata import RecData

CONSUMES, SAT_EXACT, SAT_RELATED, HAS_EXACT, HAS_RELATED, HAS_INHERITED = range(6)
EXTRA_RELATIONS = ("consumes", "satisfies_exact", "satisfies_related", "has_intent_exact",
                   "has_intent_related", "has_intent_inherited")


@dataclass
class IntentGraph:
    """Index tensors of the intent-augmented graph (see the module docstring)."""

    num_users: int
    num_items: int
    num_entities: int
    num_intents: int
    num_kg_relations: int
    item_sets: Tensor  # [I, m_i] intent indices, -1 padded
    user_sets: Tensor  # [U, m_u]
    tri_h: Tensor  # unified node space
    tri_r: Tensor
    tri_t: Tensor
    tail_lo: Tensor  # [R]
    tail_size: Tensor  # [R]
    present_rels: Tensor
    edge_index: Tensor  # [2, 2M] convolution graph, both directions
    edge_type: Tensor  # [2M] relation, reverse = r + R
    edge_weight: Tensor | None = None  # [2M] relative aggregation weight of each edge (None: all 1)
    #: [T] the intent node each intent counts as after ``merge_intents`` (its group's representative), ``-1``
    #: where ``min_intent_items`` dropped it; ``None`` when neither applies (every intent is itself). Not a
    #: buffer of the model: cold start reads it from the run's inductive state.
    intent_map: Tensor | None = None

    @property
    def user_off(self) -> int:
        return 0

    @property
    def ent_off(self) -> int:
        return self.num_users

    @property
    def int_off(self) -> int:
        return self.num_users + self.num_entities

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_entities + self.num_intents

    @property
    def num_relations(self) -> int:
        """KG relations plus the extra ones (forward direction)."""
        return self.num_kg_relations + len(EXTRA_RELATIONS)

    @property
    def relation_names(self) -> list[str]:
        return [f"kg{r}" for r in range(self.num_kg_relations)] + list(EXTRA_RELATIONS)

    def tensors(self) -> dict[str, Tensor]:
        return {k: v for k, v in vars(self).items() if isinstance(v, Tensor) and k != "intent_map"}


def padded_sets(owner: Tensor, member: Tensor, weight: Tensor, n_owner: int, cap: int) -> Tensor:
    """``[n_owner, cap]`` member indices (``-1`` padded), highest ``weight`` first, duplicates merged."""
    if owner.numel() == 0 or cap == 0:
        return torch.full((n_owner, max(cap, 1)), -1, dtype=torch.long)
    key = owner * (int(member.max()) + 1) + member
    uniq, inv = torch.unique(key, return_inverse=True)
    w = torch.zeros(uniq.numel(), dtype=torch.float64).scatter_add_(0, inv, weight.to(torch.float64))
    m_n = int(member.max()) + 1
    o, m = uniq // m_n, uniq % m_n
    # unique() sorted by (owner, member); re-sort stably by weight desc, then by owner
    order = torch.argsort(-w, stable=True)
    order = order[torch.argsort(o[order], stable=True)]
    o, m = o[order], m[order]
    counts = torch.bincount(o, minlength=n_owner)
    rank = torch.arange(o.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    keep = rank < cap
    out = torch.full((n_owner, cap), -1, dtype=torch.long)
    out[o[keep], rank[keep]] = m[keep]
    return out


def _edges3(edges: Tensor | None, kind: Tensor | None) -> Tensor:
    if edges is None or edges.numel() == 0:
        return torch.zeros(0, 3, dtype=torch.long)
    return torch.cat([edges, kind.view(-1, 1)], 1)


def merge_similar(vectors: Tensor, threshold: float, block: int = 2048) -> Tensor:
    """Each row's representative: rows whose cosine similarity is at least ``threshold`` are joined (single
    linkage, so near-duplicates such as "thriller film" / "thriller movie" become one), and every row maps to
    the smallest index of its group. ``[T, d]`` → ``[T]``; blockwise, never a ``T × T`` matrix at once."""
    T = vectors.shape[0]
    parent = list(range(T))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    v = torch.nn.functional.normalize(vectors.float(), dim=1)
    for start in range(0, T, block):
        sim = v[start:start + block] @ v.T
        rows, cols = torch.nonzero(sim >= threshold, as_tuple=True)
        for a, b in zip((rows + start).tolist(), cols.tolist()):
            if a < b:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return torch.tensor([find(x) for x in range(T)], dtype=torch.long)


def _remap(edges: Tensor, rep: Tensor) -> Tensor:
    """``(node, intent, kind)`` rows with intents replaced by their representative; a node keeps one row per
    representative, the exact one (kind 0) where both kinds meet."""
    if edges.numel() == 0:
        return edges
    e = edges.clone()
    e[:, 1] = rep[e[:, 1]]
    e = e[torch.argsort(e[:, 2], stable=True)]  # exact (0) before related (1): unique keeps the first
    key = e[:, 0] * (int(rep.max()) + 1) + e[:, 1]
    _, inv = torch.unique(key, return_inverse=True)
    first = torch.full((int(inv.max()) + 1,), e.shape[0], dtype=torch.long)
    first = first.scatter_reduce(0, inv, torch.arange(e.shape[0]), reduce="amin")
    return e[torch.sort(first).values]


def build_intent_graph(
    train: RecData,
    *,
    use_intents: bool = True,
    related_intents: bool = True,
    inherit_user_intents: bool = True,
    max_user_intents: int = 16,
    max_item_intents: int = 16,
    min_intent_items: int = 1,
    conv_interactions: bool = True,
    user_recency: float = 0.0,
    use_kg: bool = True,
    merge_intents: float = 0.0,
) -> IntentGraph:
    """Build the intent-augmented graph from a training view (arguments as in ``IKGRConfig``)."""
    require_training(train, "build_intent_graph")
    U, I = train.num_users, train.num_items
    E = max(train.num_entities, I)
    R_kg = train.num_relations
    ii = _edges3(train.item_intents, train.item_intent_kind) if use_intents else _edges3(None, None)
    ui = _edges3(train.user_intents, train.user_intent_kind) if use_intents else _edges3(None, None)
    if not related_intents:
        ii, ui = ii[ii[:, 2] == 0], ui[ui[:, 2] == 0]
    intent_map = None
    if merge_intents > 0 and (ii.numel() or ui.numel()):
        if train.intent_text_emb is None:
            raise ValueError("merge_intents needs the intents' text vectors (run `kgp embed`)")
        intent_map = merge_similar(train.intent_text_emb, merge_intents)
        ii, ui = _remap(ii, intent_map), _remap(ui, intent_map)
    if min_intent_items > 1 and ii.numel():
        pairs = torch.unique(ii[:, :2], dim=0)  # an item counts once per intent, exact or related
        n_items = torch.bincount(pairs[:, 1], minlength=max(train.num_intents, 1))
        ii = ii[n_items[ii[:, 1]] >= min_intent_items]
        ui = ui[n_items[ui[:, 1]] >= min_intent_items]
        if intent_map is None:
            intent_map = torch.arange(train.num_intents)
        intent_map = torch.where(n_items[intent_map] >= min_intent_items, intent_map, -1)
    T = train.num_intents if use_intents else 0
    user_off, ent_off, int_off = 0, U, U + E
    R = R_kg + len(EXTRA_RELATIONS)
    train_users, train_items = train.interaction_users(), train.seq_items

    item_sets = padded_sets(ii[:, 0], ii[:, 1], 2.0 - ii[:, 2].float(), I, max_item_intents if T else 0)
    inh = torch.zeros(0, 3, dtype=torch.long)
    if T and inherit_user_intents and ii.numel():
        # (user, intent) for every training interaction × item intent
        item_ptr = torch.argsort(ii[:, 0], stable=True)
        ii_sorted = ii[item_ptr]
        cnt = torch.bincount(ii_sorted[:, 0], minlength=I)
        start = torch.cumsum(cnt, 0) - cnt
        per = cnt[train_items]
        rows = torch.repeat_interleave(torch.arange(train_items.numel()), per)
        offs = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(per, 0) - per, per)
        picked = ii_sorted[start[train_items[rows]] + offs]
        inh_u, inh_t = train_users[rows], picked[:, 1]
        # profile intents first (weight 1e6), then inherited by frequency
        sets_u = torch.cat([ui[:, 0], inh_u])
        sets_t = torch.cat([ui[:, 1], inh_t])
        sets_w = torch.cat([torch.full((ui.shape[0],), 1e6), torch.ones(inh_u.numel())])
        user_sets = padded_sets(sets_u, sets_t, sets_w, U, max_user_intents)
        # the inherited edges actually kept (those not already a profile intent)
        rr, cc = torch.nonzero(user_sets >= 0, as_tuple=True)
        tt = user_sets[rr, cc]
        is_prof = torch.isin(rr * max(T, 1) + tt, ui[:, 0] * max(T, 1) + ui[:, 1])
        rr, tt = rr[~is_prof], tt[~is_prof]
        inh = torch.stack([rr, tt, torch.full_like(rr, 2)], 1)
    else:
        user_sets = padded_sets(ui[:, 0], ui[:, 1], torch.ones(ui.shape[0]), U, max_user_intents if T else 0)

    heads, rels, tails = [], [], []
    if train.has_kg and use_kg:
        heads.append(train.kg_heads + ent_off)
        rels.append(train.kg_rels)
        tails.append(train.kg_tails + ent_off)
    for edges, base_rel, off in ((ii, SAT_EXACT, ent_off), (ui, HAS_EXACT, user_off)):
        if edges.numel():
            heads.append(edges[:, 0] + off)
            rels.append(R_kg + base_rel + edges[:, 2].clamp(max=1))
            tails.append(edges[:, 1] + int_off)
    if inh.numel():
        heads.append(inh[:, 0] + user_off)
        rels.append(torch.full((inh.shape[0],), R_kg + HAS_INHERITED))
        tails.append(inh[:, 1] + int_off)

    def cat(xs: list[Tensor]) -> Tensor:
        return torch.cat(xs) if xs else torch.zeros(0, dtype=torch.long)

    tri_h, tri_r, tri_t = cat(heads), cat(rels), cat(tails)
    lo = torch.zeros(R, dtype=torch.long)
    size = torch.ones(R, dtype=torch.long)
    lo[:R_kg], size[:R_kg] = ent_off, E
    lo[R_kg + CONSUMES], size[R_kg + CONSUMES] = ent_off, I
    for k in (SAT_EXACT, SAT_RELATED, HAS_EXACT, HAS_RELATED, HAS_INHERITED):
        lo[R_kg + k], size[R_kg + k] = int_off, max(T, 1)
    present = torch.unique(tri_r) if tri_r.numel() else torch.zeros(0, dtype=torch.long)

    src, dst, typ = [tri_h], [tri_t], [tri_r]
    if conv_interactions and train_users.numel():
        src.append(train_users + user_off)
        dst.append(train_items + ent_off)
        typ.append(torch.full((train_users.numel(),), R_kg + CONSUMES))
    s, d_, t = torch.cat(src), torch.cat(dst), torch.cat(typ)
    edge_index = torch.stack([torch.cat([s, d_]), torch.cat([d_, s])])
    edge_type = torch.cat([t, t + R])
    edge_weight = None
    if user_recency > 0 and conv_interactions and train_users.numel():
        edge_weight = torch.ones(edge_type.numel())
        n = train.seq_lengths[train_users].float()
        age = n - 1 - (torch.arange(train_users.numel()) - train.seq_indptr[:-1][train_users]).float()
        decay = torch.pow(0.5, age / user_recency)
        total = torch.zeros(U).index_add_(0, train_users, decay)
        # the item -> user direction of the consumes edges: the user's own in-edges
        at = s.numel() + (s.numel() - train_users.numel()) + torch.arange(train_users.numel())
        edge_weight[at] = decay * n / total[train_users]
    return IntentGraph(U, I, E, T, R_kg, item_sets, user_sets, tri_h, tri_r, tri_t, lo, size, present,
                       edge_index, edge_type, edge_weight, intent_map if T else None)
