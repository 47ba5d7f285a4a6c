"""SR-GNN: session-based recommendation with graph neural networks (Wu et al., AAAI 2019), as RecBole 1.2.1's
``SRGNN`` (gated GNN over each prefix's session graph, soft-attention readout, cross-entropy over all items).

The session representation is exposed in its two parts, the *local* (last click, short-term) and the *global*
(attention-pooled, long-term) vectors, through :meth:`SRGNN.encode`, and fused by :meth:`SRGNN.fuse`, so a
model built on this backbone (LLM4SBR) can read or recombine them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from kgplatform.models.base import Recommender, sequence_ce
from kgplatform.models.options import check_int
from kgplatform.nn.srgnn import GatedSessionGraphConv, SessionGraph, session_graph


@dataclass
class SRGNNConfig:
    """RecBole 1.2.1's defaults (``SRGNN.yaml``, ``MAX_ITEM_LIST_LENGTH``) unless noted.

    Args:
        embedding_dim: item embedding and node state size (RecBole ``embedding_size``).
        steps: gated GNN propagation steps (RecBole ``step``).
        max_seq_len: longest prefix read (RecBole ``MAX_ITEM_LIST_LENGTH``).
    """

    embedding_dim: int = 64
    steps: int = 1
    max_seq_len: int = 50

    def validate(self) -> SRGNNConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        for name in ("embedding_dim", "steps", "max_seq_len"):
            check_int(self, name, 1)
        return self


class SRGNN(Recommender):
    r"""SR-GNN with a full softmax over items.

    A history :math:`s = (v_{s,1}, \dots, v_{s,n})` (its last :math:`L` = ``max_seq_len`` items) becomes a
    session graph over its distinct items (:func:`~kgplatform.nn.srgnn.session_graph`); node states start at
    the item embeddings and go through :class:`~kgplatform.nn.srgnn.GatedSessionGraphConv` (``steps``
    times). With :math:`\mathbf{v}_i` the state of the node of click :math:`i`,

    .. math::
        \mathbf{s}_l = \mathbf{v}_n, \qquad
        \alpha_i = \mathbf{q}^\top \sigma(\mathbf{W}_1 \mathbf{v}_n + \mathbf{W}_2 \mathbf{v}_i + \mathbf{c}),
        \qquad \mathbf{s}_g = \sum_{i=1}^{n} \alpha_i \mathbf{v}_i, \qquad
        \mathbf{s}_h = \mathbf{W}_3 [\mathbf{s}_l ; \mathbf{s}_g] + \mathbf{b}_3, \qquad
        s(u, j) = \mathbf{s}_h^\top \mathbf{e}_j

    (the sum runs over clicks, so a repeated item counts once per click, as in the reference code;
    :math:`\mathbf{W}_1`, :math:`\mathbf{W}_2` carry biases, which :math:`\mathbf{c}` stands for). Trained on
    :class:`~kgplatform.train.samplers.PrefixSampler` batches (every training target once per epoch, each with
    its own prefix and so its own graph — the graph of a prefix is not a sub-result of a longer one's) with

    .. math::
        \mathcal{L}_{\text{ce}}(B) = -\frac{1}{\bar{N}} \sum_{(s, j) \in B}
            \log \frac{\exp(\mathbf{s}_h^\top \mathbf{e}_j)}{\sum_{k} \exp(\mathbf{s}_h^\top \mathbf{e}_k)},

    :math:`\bar{N}` the epoch's mean rows per batch (``batch["norm"]``; without it the batch mean). Item
    embeddings are tied between input and output; every weight starts uniform in :math:`\pm 1/\sqrt{d}`
    (RecBole's init). An empty history has :math:`\mathbf{s}_l = \mathbf{s}_g = \mathbf{0}`.

    Args:
        num_users (int): number of users (unused by the model itself).
        num_items (int): number of items.
        config (SRGNNConfig): hyper-parameters.

    Shapes:
        - **loss** batch: ``seq`` ``[B, L]`` prefixes right-padded with ``-1``, ``target`` ``[B]``; optional
          ``norm`` (0-dim)
        - **encode**: seq ``[B, L]`` → (local ``[B, d]``, global ``[B, d]``)
        - **score**: users ``[B]``, items ``[B, C]``, seq ``[B, L]`` → ``[B, C]``
        - **full_scores**: users ``[B]``, seq ``[B, L]`` → ``[B, num_items]``
    """

    sampler: ClassVar[str] = "prefixes"
    needs_sequence: ClassVar[bool] = True

    def __init__(self, num_users: int, num_items: int, config: SRGNNConfig | None = None) -> None:
        super().__init__(num_users, num_items)
        self.config = c = config or SRGNNConfig()
        d = c.embedding_dim
        self.max_seq_len = c.max_seq_len
        self.item_emb = nn.Embedding(num_items, d)
        self.gnn = GatedSessionGraphConv(d, c.steps)
        self.w1 = nn.Linear(d, d)  # last click
        self.w2 = nn.Linear(d, d)  # every click
        self.q = nn.Linear(d, 1, bias=False)
        self.w3 = nn.Linear(2 * d, d)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.config.embedding_dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    # ---- the session representation
    def graph(self, seq: Tensor) -> SessionGraph:
        """The batched session graph of ``seq`` (``[B, L]``, right-padded with ``-1``)."""
        if seq.shape[1] > self.max_seq_len:
            seq = _last_columns(seq, self.max_seq_len)
        return session_graph(seq, self.num_items)

    def click_states(self, seq: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(v [B, L, d], mask [B, L], last [B, d])``: the GNN state of every click (zero at padding) and of
        the last click."""
        g = self.graph(seq)
        B, L = g.alias.shape
        d = self.config.embedding_dim
        mask = g.alias >= 0
        if g.num_nodes == 0:
            z = self.item_emb.weight.new_zeros(B, L, d)
            return z, mask, z[:, 0]
        h = self.gnn(self.item_emb(g.items), g.edge_index, g.w_in, g.w_out)
        v = h[g.alias.clamp(min=0)] * mask[..., None]
        last = v[torch.arange(B, device=v.device), (g.length - 1).clamp(min=0)]
        return v, mask, last

    def encode(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(local, global)``: :math:`\mathbf{s}_l` (the last click's state) and :math:`\mathbf{s}_g` (the
        attention-weighted sum of the clicks' states), ``[B, d]`` each."""
        v, mask, last = self.click_states(seq)
        alpha = self.q(torch.sigmoid(self.w1(last)[:, None] + self.w2(v)))  # [B, L, 1]
        glob = (alpha * v * mask[..., None]).sum(1)
        return last, glob

    def fuse(self, local: Tensor, glob: Tensor) -> Tensor:
        r""":math:`\mathbf{s}_h = \mathbf{W}_3 [\mathbf{s}_l ; \mathbf{s}_g] + \mathbf{b}_3`, ``[B, d]``."""
        return self.w3(torch.cat([local, glob], -1))

    def session_embedding(self, seq: Tensor) -> Tensor:
        r"""The hybrid session embedding :math:`\mathbf{s}_h`, ``[B, d]``."""
        return self.fuse(*self.encode(seq))

    last_hidden = session_embedding  # the name the next-item models use for the scoring vector

    # ---- the two session views a model built on this backbone reads (LLM4SBR)
    session_views = encode
    session_fuse = fuse

    def output_items(self) -> Tensor:
        """``[num_items, d]`` the (tied) output item embeddings."""
        return self.item_emb.weight

    # ---- the contract
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = self.session_embedding(batch["seq"]) @ self.item_emb.weight.t()
        return {"ce": sequence_ce(logits, batch["target"], batch.get("norm"))}

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        return torch.einsum("bd,bcd->bc", self.session_embedding(_need(seq)), self.item_emb(items))

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self.session_embedding(_need(seq)) @ self.item_emb.weight.t()

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor | None:
        return None if seq is None else self.session_embedding(seq)

    def item_embeddings(self) -> Tensor:
        return self.item_emb.weight


def _need(seq: Tensor | None) -> Tensor:
    if seq is None:
        raise ValueError("SRGNN scores a session: pass seq (the user's history, right-padded with -1)")
    return seq


def _last_columns(seq: Tensor, n: int) -> Tensor:
    """The last ``n`` real items of every right-padded row, right-padded again."""
    length = (seq >= 0).sum(1)
    start = (length - n).clamp(min=0)
    col = torch.arange(n, device=seq.device)
    idx = (start[:, None] + col[None, :]).clamp(max=seq.shape[1] - 1)
    out = seq.gather(1, idx)
    return torch.where(col[None, :] < (length - start)[:, None], out, torch.full_like(out, -1))


__all__ = ["SRGNN", "SRGNNConfig"]
