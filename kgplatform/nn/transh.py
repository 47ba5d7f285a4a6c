"""TransH knowledge-graph embedding (IKGR eq. 4–7)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding

from torch_geometric.nn.kge import KGEModel


class TransH(KGEModel):
    r"""TransH (Wang et al., 2014) as used by IKGR and KTUP: each relation :math:`r` owns a hyperplane with
    unit normal :math:`\mathbf{w}_r` and a translation :math:`\mathbf{d}_r` on it.

    .. math::
        \mathbf{h}_\perp = \mathbf{h} - (\mathbf{w}_r^\top \mathbf{h})\,\mathbf{w}_r, \qquad
        \mathbf{t}_\perp = \mathbf{t} - (\mathbf{w}_r^\top \mathbf{t})\,\mathbf{w}_r
        \qquad \text{(Eq. 5, 6)}

    .. math::
        f_r(h, t) = \big\lVert \mathbf{h}_\perp + \mathbf{d}_r - \mathbf{t}_\perp \big\rVert_2^2
        \qquad \text{(Eq. 4; lower = more plausible)}

    .. math::
        \mathcal{L} = \frac{1}{|\Delta|}\sum_{(h,r,t) \in \Delta,\ (h',r',t') \in \Delta'}
            \max\big(0,\ f_r(h, t) + \gamma - f_{r'}(h', t')\big)
        \qquad \text{(Eq. 7)}

    with :math:`\Delta'` one corrupted triple per true triple: a random tail and, with probability
    ``corrupt_relation``, a random relation (as in KTUP). Eq. 7 sums; we average over the batch so the loss
    scale does not depend on the batch size. The soft constraints of TransH,
    :math:`\lVert \mathbf{e} \rVert_2 \le 1` and :math:`|\mathbf{w}_r^\top \mathbf{d}_r| / \lVert
    \mathbf{d}_r \rVert_2 \le \epsilon`, are :meth:`constraint_loss`; :math:`\mathbf{w}_r` is normalised
    to unit length whenever it is used.

    :meth:`forward` follows PyG's :class:`~torch_geometric.nn.kge.KGEModel` convention and returns the
    *negated* energy (higher = more plausible). :meth:`energy` scores arbitrary embeddings (e.g. the output
    of a GNN) and accepts a per-triple translation, which IKGR's intent translation (Eq. 8) supplies.

    Args:
        num_nodes (int): number of entities.
        num_relations (int): number of relations.
        hidden_channels (int): embedding size.
        margin (float, optional): :math:`\gamma`. (default: ``1.0``)
        epsilon (float, optional): orthogonality tolerance :math:`\epsilon`. (default: ``0.01``)
        corrupt_relation (float, optional): probability of also corrupting the relation. (default: ``0.5``)
        sparse (bool, optional): sparse embedding gradients. (default: ``False``)

    Shapes:
        - **forward:** head, relation, tail indices :math:`(B)` → :math:`(B)`
        - **energy:** head, tail :math:`(B, d)`, relation :math:`(B)`, optional translation
          :math:`(B, d)` → :math:`(B)`
    """

    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        hidden_channels: int,
        margin: float = 1.0,
        epsilon: float = 0.01,
        corrupt_relation: float = 0.5,
        sparse: bool = False,
    ) -> None:
        super().__init__(num_nodes, num_relations, hidden_channels, sparse)
        self.margin = margin
        self.epsilon = epsilon
        self.corrupt_relation = corrupt_relation
        self.norm_emb = Embedding(num_relations, hidden_channels, sparse=sparse)  # w_r
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 6.0 / math.sqrt(self.hidden_channels)
        torch.nn.init.uniform_(self.node_emb.weight, -bound, bound)
        torch.nn.init.uniform_(self.rel_emb.weight, -bound, bound)
        torch.nn.init.uniform_(self.norm_emb.weight, -bound, bound)
        with torch.no_grad():
            F.normalize(self.node_emb.weight, dim=-1, out=self.node_emb.weight)
            F.normalize(self.norm_emb.weight, dim=-1, out=self.norm_emb.weight)
            self.rel_emb.weight.mul_(0.1)

    @staticmethod
    def project(x: Tensor, w: Tensor) -> Tensor:
        r"""Eq. 5/6: :math:`\mathbf{x} - (\mathbf{w}^\top \mathbf{x})\mathbf{w}` with :math:`\mathbf{w}`
        normalised to unit length first."""
        w = F.normalize(w, dim=-1)
        return x - (x * w).sum(-1, keepdim=True) * w

    def energy(self, head: Tensor, rel_type: Tensor, tail: Tensor, translation: Tensor | None = None) -> Tensor:
        """Eq. 4 on given embeddings; ``translation`` replaces :math:`d_r` per triple when given."""
        if self.norm_emb.sparse:
            w = F.normalize(self.norm_emb(rel_type), dim=-1)
        else:  # normalise the R hyperplane normals once, then gather (not one normalisation per triple)
            w = F.normalize(self.norm_emb.weight, dim=-1)[rel_type]
        d = self.rel_emb(rel_type) if translation is None else translation
        diff = head - tail  # the projection (Eq. 5/6) is linear: h_perp - t_perp = (h - t)_perp
        return (diff - (diff * w).sum(-1, keepdim=True) * w + d).pow(2).sum(-1)

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return -self.energy(self.node_emb(head_index), rel_type, self.node_emb(tail_index))

    def margin_loss(self, pos_energy: Tensor, neg_energy: Tensor) -> Tensor:
        """Eq. 7 for aligned true/corrupted energies (mean over the batch)."""
        return F.relu(pos_energy + self.margin - neg_energy).mean()

    @torch.no_grad()
    def random_sample(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Corrupt every tail, and the relation with probability ``corrupt_relation`` (Eq. 7's
        :math:`\\Delta'`)."""
        tail = torch.randint(self.num_nodes, tail_index.size(), device=tail_index.device)
        rel = rel_type.clone()
        if self.corrupt_relation > 0 and self.num_relations > 1:
            flip = torch.rand(rel.size(), device=rel.device) < self.corrupt_relation
            rel[flip] = torch.randint(self.num_relations, (int(flip.sum()),), device=rel.device)
        return head_index, rel, tail

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        """Margin loss (Eq. 7) on this model's own node embeddings, plus nothing else; add
        :meth:`constraint_loss` yourself with a weight."""
        pos = self.energy(self.node_emb(head_index), rel_type, self.node_emb(tail_index))
        h, r, t = self.random_sample(head_index, rel_type, tail_index)
        neg = self.energy(self.node_emb(h), r, self.node_emb(t))
        return self.margin_loss(pos, neg)

    def constraint_loss(self, entities: Tensor, rel_type: Tensor | None = None) -> Tensor:
        r"""Soft constraints: :math:`\sum_e \max(0, \lVert e \rVert^2 - 1)` averaged over ``entities``
        :math:`(n, d)`, plus :math:`\max(0, (\mathbf{w}_r^\top \mathbf{d}_r)^2 / \lVert \mathbf{d}_r
        \rVert^2 - \epsilon^2)` averaged over the relations ``rel_type`` (default: all)."""
        scale = F.relu(entities.pow(2).sum(-1) - 1.0).mean() if entities.numel() else entities.sum()
        if rel_type is None:
            w, d = self.norm_emb.weight, self.rel_emb.weight
        else:
            w, d = self.norm_emb(rel_type), self.rel_emb(rel_type)
        w = F.normalize(w, dim=-1)
        orth = F.relu((w * d).sum(-1).pow(2) / d.pow(2).sum(-1).clamp(min=1e-12) - self.epsilon**2).mean()
        return scale + orth

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_nodes}, num_relations={self.num_relations}, "
            f"hidden_channels={self.hidden_channels}, margin={self.margin})"
        )
