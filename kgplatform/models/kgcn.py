"""KGCN: knowledge graph convolutional networks for recommendation (Wang et al., WWW 2019)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgplatform.models.base import Recommender
from kgplatform.models.options import check_choice, check_float, check_int


@dataclass
class KGCNConfig:
    """RecBole 1.2.1 defaults (``KGCN.yaml``).

    Args:
        embedding_dim: size of user, entity and relation vectors.
        n_iter: receptive-field depth (hops).
        neighbor_sample_size: neighbours sampled (once, with replacement when fewer) per entity.
        aggregator: ``sum`` (:math:`W(v + n)`), ``concat`` (:math:`W[v; n]`) or ``neighbor`` (:math:`Wn`).
        reg_weight: L2 weight on the batch's user and item/entity embeddings.
        score_chunk: (user, item) pairs scored at once in ``full_scores`` (memory bound).
    """

    embedding_dim: int = 64
    n_iter: int = 1
    neighbor_sample_size: int = 4
    aggregator: Literal["sum", "concat", "neighbor"] = "sum"
    reg_weight: float = 1e-7
    score_chunk: int = 131072

    def validate(self) -> KGCNConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        for name in ("embedding_dim", "n_iter", "neighbor_sample_size", "score_chunk"):
            check_int(self, name, 1)
        check_choice(self, "aggregator", ("sum", "concat", "neighbor"))
        check_float(self, "reg_weight", 0.0)
        return self


class KGCN(Recommender):
    r"""KGCN: an item's representation is aggregated from its KG neighbourhood with user-specific weights.

    For user :math:`u` and item :math:`v` with sampled neighbours :math:`\mathcal{S}(v)`:

    .. math::
        \pi^u_{r} = \operatorname{softmax}_{(r, e) \in \mathcal{S}(v)}\big(\operatorname{mean}(\mathbf{u}
            \odot \mathbf{r})\big), \qquad
        \mathbf{v}^u_{\mathcal{S}} = \sum_{(r, e) \in \mathcal{S}(v)} \pi^u_r\, \mathbf{e}, \qquad
        \mathbf{v}^u = \sigma\big(\mathbf{W}(\mathbf{v} + \mathbf{v}^u_{\mathcal{S}}) + \mathbf{b}\big)

    applied ``n_iter`` times outward-in (ReLU inside, tanh at the last step), and
    :math:`s(u, v) = \mathbf{u}^\top \mathbf{v}^u`, trained with binary cross-entropy against one sampled
    negative per positive. The KG is used undirected; an entity without neighbours points at itself
    through an extra "self" relation.

    Args:
        num_users (int): number of users.
        num_items (int): number of items (entities ``0..num_items-1``).
        num_entities (int): size of the entity space (items first).
        num_relations (int): number of KG relations.
        heads, rels, tails (torch.Tensor): KG triples ``[T]`` in the entity space.
        config (KGCNConfig): hyper-parameters.
        generator (torch.Generator, optional): for the one-off neighbour sampling.

    Shapes:
        - **loss** batch: ``users``, ``pos``, ``neg`` ``[B]``
        - **score**: users ``[B]``, items ``[B, C]`` → ``[B, C]``
        - **full_scores**: users ``[B]`` → ``[B, num_items]``
    """

    sampler = "pairs"

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_entities: int,
        num_relations: int,
        heads: Tensor,
        rels: Tensor,
        tails: Tensor,
        config: KGCNConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(num_users, num_items)
        self.config = c = config or KGCNConfig()
        self.num_entities = max(num_entities, num_items)
        self.num_relations = num_relations
        adj_e, adj_r = self._sample_adjacency(heads, rels, tails, c.neighbor_sample_size, generator)
        self.register_buffer("adj_entity", adj_e)
        self.register_buffer("adj_relation", adj_r)
        d = c.embedding_dim
        self.user_emb = nn.Embedding(num_users, d)
        self.entity_emb = nn.Embedding(self.num_entities, d)
        self.relation_emb = nn.Embedding(num_relations + 1, d)  # + "self"
        in_dim = 2 * d if c.aggregator == "concat" else d
        self.linears = nn.ModuleList(nn.Linear(in_dim, d) for _ in range(c.n_iter))
        self.reset_parameters()

    def _sample_adjacency(self, heads, rels, tails, k, generator) -> tuple[Tensor, Tensor]:
        n = self.num_entities
        src = torch.cat([heads, tails])
        dst = torch.cat([tails, heads])
        rel = torch.cat([rels, rels])
        order = torch.argsort(src, stable=True)
        src, dst, rel = src[order], dst[order], rel[order]
        deg = torch.bincount(src, minlength=n)
        start = torch.cumsum(deg, 0) - deg
        pick = (torch.rand(n, k, generator=generator) * deg.clamp(min=1)[:, None]).long()
        idx = (start[:, None] + pick).clamp(max=max(src.numel() - 1, 0))
        self_e = torch.arange(n)[:, None].expand(n, k)
        self_r = torch.full((n, k), self.num_relations, dtype=torch.long)
        has = (deg > 0)[:, None]
        if src.numel() == 0:
            return self_e.clone(), self_r
        return torch.where(has, dst[idx], self_e), torch.where(has, rel[idx], self_r)

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.entity_emb, self.relation_emb):
            nn.init.xavier_normal_(emb.weight)
        for lin in self.linears:
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)

    def item_repr(self, user_e: Tensor, items: Tensor) -> Tensor:
        """User-specific item vectors for aligned pairs: ``user_e [P, d]``, ``items [P]`` → ``[P, d]``."""
        c = self.config
        P, K = items.numel(), c.neighbor_sample_size
        entities = [items.view(P, 1)]
        relations = []
        for _ in range(c.n_iter):
            entities.append(self.adj_entity[entities[-1]].view(P, -1))
            relations.append(self.adj_relation[entities[-2]].view(P, -1))
        vectors = [self.entity_emb(e) for e in entities]
        for i in range(c.n_iter):
            act = torch.tanh if i == c.n_iter - 1 else torch.relu
            nxt = []
            for hop in range(c.n_iter - i):
                self_v = vectors[hop]  # [P, K^hop, d]
                nb = vectors[hop + 1].view(P, -1, K, self_v.shape[-1])
                rv = self.relation_emb(relations[hop]).view(P, -1, K, self_v.shape[-1])
                pi = torch.softmax((user_e[:, None, None, :] * rv).mean(-1), dim=-1)
                agg = (pi.unsqueeze(-1) * nb).sum(2)
                if c.aggregator == "sum":
                    out = self.linears[i](self_v + agg)
                elif c.aggregator == "concat":
                    out = self.linears[i](torch.cat([self_v, agg], -1))
                else:
                    out = self.linears[i](agg)
                nxt.append(act(out))
            vectors = nxt
        return vectors[0][:, 0]

    def _pair_scores(self, users: Tensor, items: Tensor) -> Tensor:
        u = self.user_emb(users)
        return (u * self.item_repr(u, items)).sum(-1)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        u = self.user_emb(users)
        sp = (u * self.item_repr(u, pos)).sum(-1)
        sn = (u * self.item_repr(u, neg)).sum(-1)
        logits = torch.cat([sp, sn])
        labels = torch.cat([torch.ones_like(sp), torch.zeros_like(sn)])
        out = {"bce": F.binary_cross_entropy_with_logits(logits, labels)}
        if self.config.reg_weight:
            e = self.entity_emb(torch.cat([pos, neg]))
            out["reg"] = self.config.reg_weight * (u.pow(2).sum() + e.pow(2).sum()) / 2
        return out

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        B, C = items.shape
        uu = users.view(-1, 1).expand(B, C).reshape(-1)
        flat = items.reshape(-1)
        out = [self._pair_scores(uu[s : s + self.config.score_chunk], flat[s : s + self.config.score_chunk])
               for s in range(0, flat.numel(), self.config.score_chunk)]
        return torch.cat(out).view(B, C)

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        if self.config.n_iter != 1:
            items = torch.arange(self.num_items, device=users.device)
            return self.score(users, items.view(1, -1).expand(users.numel(), -1))
        # One hop: the linear map commutes with the attention-weighted sum, so transform every entity once
        # (W e) and only mix the transformed vectors per (user, item): B*n*K*d instead of B*n*d*d.
        c = self.config
        lin = self.linears[0]
        d = c.embedding_dim
        E = self.entity_emb.weight
        if c.aggregator == "concat":
            w_self, w_nb = lin.weight[:, :d], lin.weight[:, d:]
        else:
            w_self = w_nb = lin.weight
        self_part = (E[: self.num_items] @ w_self.t() if c.aggregator != "neighbor"
                     else torch.zeros(self.num_items, d, device=E.device)) + lin.bias
        nb_t = E @ w_nb.t()  # [num_entities, d]
        adj_e = self.adj_entity[: self.num_items]  # [n, K]
        adj_r = self.adj_relation[: self.num_items]
        nb_vec = nb_t[adj_e]  # [n, K, d]
        # An item whose sampled neighbours all share one relation gets uniform attention for every user,
        # so its vector is user-independent and is scored with one matrix product (on a graph without a
        # KG, e.g. Amazon Beauty, that is every item). Only the other items need the per-user mix.
        uniform = (adj_r == adj_r[:, :1]).all(1)
        fixed = torch.tanh(self_part[uniform] + nb_vec[uniform].mean(1))  # [n_u, d]
        mixed = (~uniform).nonzero().view(-1)
        m_self, m_nb, m_rel = self_part[mixed], nb_vec[mixed], adj_r[mixed]
        out = []
        step = max(1, c.score_chunk // max(mixed.numel(), 1))
        for ub in users.split(step):
            u = self.user_emb(ub)  # [b, d]
            s = u.new_empty(ub.numel(), self.num_items)
            s[:, uniform] = u @ fixed.t()
            if mixed.numel():
                rel_scores = (u @ self.relation_emb.weight.t()) / d  # mean(u * r) for every relation
                pi = torch.softmax(rel_scores[:, m_rel], dim=-1)  # [b, n_m, K]
                pre = m_self.unsqueeze(0) + torch.einsum("bnk,nkd->bnd", pi, m_nb)
                s[:, mixed] = (torch.tanh(pre) * u[:, None, :]).sum(-1)
            out.append(s)
        return torch.cat(out)

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self.user_emb(users)

    def item_embeddings(self) -> Tensor:
        """The base (user-independent) entity vectors of the items."""
        return self.entity_emb.weight[: self.num_items]
