"""Heterogeneous Deep Graph Infomax over metapaths (HDGI, Ren et al. 2019), sparse and inductive.

The persona paper (``../shared/papers/000_*``) learns user personas without personal data with HDGI: a
metapath-based heterogeneous encoder with semantic attention trained by Deep Graph Infomax. This module holds
the pieces, PyG style:

* :class:`MetaPath` — a user–…–user metapath as a chain of mean-normalised sparse bipartite operators; the
  metapath aggregation of user features is computed hop by hop (``A_ui (A_ie (A_ei (A_iu X)))``), so no
  ``N × N`` metapath adjacency is ever materialised (Games' 50k users would not fit one);
* :class:`HDGIEncoder` — one graph convolution per metapath and HAN's semantic attention across metapaths
  (HDGI-C: the paper's convolutional variant);
* :class:`HDGI` — the Deep Graph Infomax objective (feature-shuffle corruption, sigmoid-mean readout,
  bilinear discriminator: :class:`torch_geometric.nn.models.DeepGraphInfomax`), and inductive encoding of a
  node that was not in the graph (an anonymous session) from its items alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mean_operator(rows: Tensor, cols: Tensor, num_rows: int, num_cols: int) -> Tensor:
    """Row-normalised sparse ``[num_rows, num_cols]`` operator: ``(A X)[r] = mean_{(r, c)} X[c]``.

    Duplicate ``(row, col)`` pairs count once (an item bought twice is one neighbour); rows without entries
    are all-zero.
    """
    if rows.numel():
        key = torch.unique(rows.to(torch.long) * num_cols + cols.to(torch.long))
        rows, cols = key // num_cols, key % num_cols
    deg = torch.bincount(rows, minlength=num_rows).to(torch.float32)
    vals = 1.0 / deg.clamp(min=1.0)[rows]
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (num_rows, num_cols)).coalesce()


@dataclass
class MetaPath:
    r"""A metapath from users back to users, ``U – I – (X – I)* – U``, as sparse mean operators.

    ``first`` is the user→item operator :math:`A_{ui}` (``[U, I]``); ``tail`` the operators after it, applied
    right to left, ending with the item→user operator :math:`A_{iu}` (``[I, U]``). The aggregation of user
    features :math:`X` is

    .. math::
        \operatorname{agg}_P(X) = A_{ui}\,\big(T_1 T_2 \cdots T_m X\big) = A_{ui}\, M_P(X),

    where :math:`M_P(X)` is an ``[I, d]`` matrix: what each *item* contributes along the metapath. A node
    that was not in the graph (an anonymous session with items :math:`S`) aggregates
    :math:`\frac{1}{|S|}\sum_{i \in S} M_P(X)_i` — the same formula with its own first hop.
    """

    name: str
    first: Tensor  # [U, I]
    tail: tuple[Tensor, ...]  # applied right to left; the last maps users to items

    def item_messages(self, x: Tensor) -> Tensor:
        """:math:`M_P(X)`: ``[I, d]``."""
        h = x
        for op in reversed(self.tail):
            h = torch.sparse.mm(op, h)
        return h

    def aggregate(self, x: Tensor) -> Tensor:
        """:math:`\\operatorname{agg}_P(X)`: ``[U, d]``."""
        return torch.sparse.mm(self.first, self.item_messages(x))

    def to(self, device) -> MetaPath:
        return MetaPath(self.name, self.first.to(device), tuple(t.to(device) for t in self.tail))


def build_metapaths(
    num_users: int,
    num_items: int,
    user_item: tuple[Tensor, Tensor],
    *,
    item_entity: tuple[Tensor, Tensor, int] | None = None,
    item_intent: tuple[Tensor, Tensor, int] | None = None,
    names: Sequence[str] = ("UIU", "UIEIU", "UITIU"),
) -> list[MetaPath]:
    """The metapaths ``names`` that the graph supports.

    Args:
        user_item: ``(users, items)`` of the (training) interactions.
        item_entity: ``(items, entities, num_entities)`` item–entity incidences (``UIEIU``), or ``None``.
        item_intent: ``(items, intents, num_intents)`` item–intent incidences (``UITIU``), or ``None``.
        names: which to build, of ``UIU``, ``UIEIU`` (items sharing a KG entity), ``UITIU`` (items sharing an
            LLM intent); a name whose side graph is missing or empty is skipped.
    """
    u, i = user_item
    a_ui = mean_operator(u, i, num_users, num_items)
    a_iu = mean_operator(i, u, num_items, num_users)
    out = []
    for name in names:
        if name == "UIU":
            out.append(MetaPath(name, a_ui, (a_iu,)))
            continue
        side = {"UIEIU": item_entity, "UITIU": item_intent}.get(name, "unknown")
        if side == "unknown":
            raise ValueError(f"unknown metapath {name!r} (UIU, UIEIU, UITIU)")
        if side is None or side[0].numel() == 0:
            continue
        items, other, n_other = side
        a_ix = mean_operator(items, other, num_items, n_other)
        a_xi = mean_operator(other, items, n_other, num_items)
        out.append(MetaPath(name, a_ui, (a_ix, a_xi, a_iu)))
    return out


class SemanticAttention(nn.Module):
    r"""HAN's semantic-level attention (Wang et al. 2019) over :math:`P` metapath-specific embeddings:

    .. math::
        w_p = \frac{1}{|\mathcal{V}|}\sum_{v} \mathbf{q}^\top \tanh(\mathbf{W}\mathbf{z}^{p}_v + \mathbf{b}),
        \qquad \beta_p = \operatorname{softmax}_p(w_p), \qquad \mathbf{z}_v = \sum_p \beta_p \mathbf{z}^p_v

    Shapes:
        - **input:** ``[P, N, d]``
        - **output:** ``[N, d]`` and the weights :math:`\beta` ``[P]``
    """

    def __init__(self, channels: int, att_channels: int = 128) -> None:
        super().__init__()
        self.lin = nn.Linear(channels, att_channels)
        self.q = nn.Parameter(torch.empty(att_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        nn.init.normal_(self.q, std=0.1)

    def forward(self, z: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if weights is None:
            w = (torch.tanh(self.lin(z)) @ self.q).mean(dim=1)  # [P]
            weights = torch.softmax(w, dim=0)
        return (weights[:, None, None] * z).sum(0), weights


class HDGIEncoder(nn.Module):
    r"""Metapath convolutions with semantic attention (HDGI-C):

    .. math::
        \mathbf{z}^{p}_u = \operatorname{PReLU}\big(\operatorname{agg}_p(\mathbf{X}\mathbf{W}_p^\top + \mathbf{b}_p)_u\big),
        \qquad \mathbf{z}_u = \textstyle\sum_p \beta_p\,\mathbf{z}^{p}_u

    with :math:`\operatorname{agg}_p` the mean aggregation along metapath :math:`p` (:class:`MetaPath`) and
    :math:`\beta` from :class:`SemanticAttention`. The aggregation is linear, so the features are projected
    *before* they travel along the metapath (the same as projecting the aggregate, for every node with at
    least one metapath neighbour) — each hop then moves ``hidden`` columns instead of the text vectors' 384.

    Args:
        in_channels (int): size of the user features.
        hidden_channels (int): size of the user embeddings.
        metapaths (list[MetaPath]): the metapaths (fixed graph).
        att_channels (int, optional): semantic attention size. (default: ``128``)

    Shapes:
        - **input:** user features ``[U, F_in]``
        - **output:** user embeddings ``[U, F_hidden]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, metapaths: Sequence[MetaPath],
                 att_channels: int = 128) -> None:
        super().__init__()
        if not metapaths:
            raise ValueError("HDGIEncoder needs at least one metapath")
        self.metapaths = list(metapaths)
        self.lins = nn.ModuleList(nn.Linear(in_channels, hidden_channels) for _ in self.metapaths)
        self.acts = nn.ModuleList(nn.PReLU(hidden_channels) for _ in self.metapaths)
        self.att = SemanticAttention(hidden_channels, att_channels)
        self.last_weights: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()
        self.att.reset_parameters()

    @property
    def metapath_names(self) -> list[str]:
        return [p.name for p in self.metapaths]

    def combine(self, aggs: Sequence[Tensor], weights: Tensor | None = None) -> Tensor:
        """Embeddings from per-metapath aggregations of the projected features (``P`` tensors ``[N, hidden]``)."""
        z = torch.stack([act(a) for a, act in zip(aggs, self.acts)])
        out, w = self.att(z, weights)
        self.last_weights = w.detach()
        return out

    def item_messages(self, x: Tensor) -> Tensor:
        r""":math:`M_p(\mathbf{X}\mathbf{W}_p^\top + \mathbf{b}_p)` of every metapath: ``[P, I, hidden]``."""
        return torch.stack([p.item_messages(lin(x)) for p, lin in zip(self.metapaths, self.lins)])

    def forward(self, x: Tensor) -> Tensor:
        return self.combine([p.aggregate(lin(x)) for p, lin in zip(self.metapaths, self.lins)])


def _shuffle(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return x[perm]


class HDGI(nn.Module):
    r"""Deep Graph Infomax (Veličković et al. 2019) around :class:`HDGIEncoder`, as in HDGI:

    .. math::
        \mathcal{L} = -\frac{1}{2U}\Big(\sum_u \log \mathcal{D}(\mathbf{z}_u, \mathbf{s})
            + \sum_u \log\big(1 - \mathcal{D}(\tilde{\mathbf{z}}_u, \mathbf{s})\big)\Big),\quad
        \mathbf{s} = \sigma\Big(\frac{1}{U}\sum_u \mathbf{z}_u\Big),\quad
        \mathcal{D}(\mathbf{z}, \mathbf{s}) = \sigma(\mathbf{z}^\top \mathbf{W}\mathbf{s})

    where :math:`\tilde{\mathbf{z}}` encodes the corrupted graph (user features shuffled across users, the
    metapaths unchanged). Implemented with :class:`torch_geometric.nn.models.DeepGraphInfomax`.

    After training, :meth:`freeze_messages` stores every metapath's item messages :math:`M_P` (of the projected
    features) so that :meth:`encode_items` embeds a node from its items alone (inductive: an anonymous session,
    a new user).

    Args:
        in_channels / hidden_channels / metapaths / att_channels: as :class:`HDGIEncoder`.
        generator: for the corruption's permutations (reproducible runs).
    """

    def __init__(self, in_channels: int, hidden_channels: int, metapaths: Sequence[MetaPath],
                 att_channels: int = 128, generator: torch.Generator | None = None) -> None:
        super().__init__()
        from torch_geometric.nn.models import DeepGraphInfomax

        self.encoder = HDGIEncoder(in_channels, hidden_channels, metapaths, att_channels)
        self.generator = generator
        self.dgi = DeepGraphInfomax(
            hidden_channels, encoder=self.encoder,
            summary=lambda z, *args, **kwargs: torch.sigmoid(z.mean(dim=0)),
            corruption=lambda x: (_shuffle(x, self.generator),),
        )
        self.register_buffer("messages", torch.zeros(0), persistent=True)  # [P, I, hidden] after freeze
        self.register_buffer("weights", torch.zeros(0), persistent=True)  # [P] semantic weights after freeze

    def loss(self, x: Tensor) -> Tensor:
        pos, neg, s = self.dgi(x)
        return self.dgi.loss(pos, neg, s)

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """User embeddings ``[U, hidden]`` of the graph's users."""
        return self.encoder(x)

    @torch.no_grad()
    def freeze_messages(self, x: Tensor) -> None:
        """Store every metapath's item messages (projected features) and the semantic weights for
        :meth:`encode_items`."""
        self.messages = self.encoder.item_messages(x)
        self.encoder(x)
        self.weights = self.encoder.last_weights.clone()

    @torch.no_grad()
    def encode_items(self, items: Tensor, offsets: Tensor) -> Tensor:
        """Embed nodes that are not in the graph from their items (inductive).

        Args:
            items: item indices of all nodes, concatenated ``[nnz]``.
            offsets: CSR offsets ``[B + 1]``; node ``b`` has ``items[offsets[b]:offsets[b+1]]``.

        Returns ``[B, hidden]``; a node without items gets the embedding of zero aggregations.
        """
        if self.messages.numel() == 0:
            raise RuntimeError("HDGI.encode_items needs freeze_messages(x) first")
        B = offsets.numel() - 1
        lens = offsets[1:] - offsets[:-1]
        rows = torch.repeat_interleave(torch.arange(B, device=items.device), lens)
        aggs = []
        for m in self.messages:
            s = torch.zeros(B, m.shape[1], device=m.device, dtype=m.dtype).index_add_(0, rows, m[items])
            aggs.append(s / lens.clamp(min=1)[:, None].to(m.dtype))
        return self.encoder.combine(aggs, self.weights)


def fit_hdgi(model: HDGI, x: Tensor, *, epochs: int = 300, lr: float = 1e-3, weight_decay: float = 0.0,
             patience: int = 20, log=None) -> list[float]:
    """Full-batch training of ``model`` on user features ``x``; stops after ``patience`` epochs without a new
    lowest loss and restores the best weights. Returns the loss per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, bad, losses = float("inf"), None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x)
        loss.backward()
        opt.step()
        v = float(loss.detach())
        losses.append(v)
        if v < best - 1e-4:
            best, bad = v, 0
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        else:
            bad += 1
        if log and (epoch == 1 or epoch % 25 == 0):
            log(f"[hdgi] epoch {epoch} loss={v:.4f}")
        if bad >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return losses


def normalize_rows(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


__all__ = ["HDGI", "HDGIEncoder", "MetaPath", "SemanticAttention", "build_metapaths", "fit_hdgi", "mean_operator",
           "normalize_rows"]
