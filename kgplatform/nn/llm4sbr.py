"""LLM4SBR's representation-enhancement layers (*Multi-view Intent Learning and Alignment with LLMs for
Session-based Recommendation*, stage 2): the semantic view of a prefix built from its localised LLM inference,
the alignment and uniformity losses that tie it to the behavioural view of the same kind, and the gated fusion of
all views into one session representation.

* :func:`alignment_loss`, :func:`uniformity_loss`: Wang & Isola's two properties of L2-normalised
  representations, as LLM4SBR uses them between same-view pairs.
* :class:`SemanticView`: localised items → their text vectors, weighted → a projection into the session space,
  with a learned fallback vector for prefixes that got no inference.
* :class:`GatedFusion`: an element-wise gate between the behavioural and the semantic session vectors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def alignment_loss(x: Tensor, y: Tensor) -> Tensor:
    r"""Alignment of paired rows,

    .. math::
        \mathcal{L}_{\text{align}} = \frac{1}{N} \sum_{n=1}^{N}
            \left\lVert \frac{\mathbf{x}_n}{\lVert \mathbf{x}_n \rVert} - \frac{\mathbf{y}_n}{\lVert \mathbf{y}_n
            \rVert} \right\rVert_2^2

    (0 for identical directions, 4 for opposite ones); ``0`` for no rows.

    Shapes: ``x``, ``y`` ``[N, d]`` → 0-dim.
    """
    if x.shape[0] == 0:
        return x.sum() * 0.0
    return (F.normalize(x, dim=-1) - F.normalize(y, dim=-1)).pow(2).sum(-1).mean()


def uniformity_loss(x: Tensor, t: float = 2.0) -> Tensor:
    r"""Uniformity of a set of rows on the unit sphere,

    .. math::
        \mathcal{L}_{\text{uniform}} = \log \frac{2}{N(N-1)} \sum_{n < m}
            \exp\!\left(-t \left\lVert \hat{\mathbf{x}}_n - \hat{\mathbf{x}}_m \right\rVert_2^2\right),
        \qquad \hat{\mathbf{x}} = \mathbf{x} / \lVert \mathbf{x} \rVert, \quad t = 2

    (0 when every row points the same way, lower the more evenly they spread); ``0`` for fewer than 2 rows.

    Shapes: ``x`` ``[N, d]`` → 0-dim.
    """
    n = x.shape[0]
    if n < 2:
        return x.sum() * 0.0
    z = F.normalize(x, dim=-1)
    sq = torch.pdist(z, p=2).pow(2)
    return torch.logsumexp(-t * sq, 0) - torch.log(torch.tensor(float(sq.numel()), device=x.device))


class SemanticView(nn.Module):
    r"""The semantic representation of one view (long- or short-term) of a prefix.

    The LLM's answer for the prefix was localised to :math:`r` catalogue items :math:`i_1, \dots, i_r` with weights
    :math:`w_k` (similarities, normalised to sum 1). With :math:`\mathbf{t}_i` the item's text vector,

    .. math::
        \mathbf{z} = \sum_{k=1}^{r} w_k \mathbf{t}_{i_k}, \qquad
        \mathbf{p} = \begin{cases} \mathbf{W}_p \mathbf{z} + \mathbf{b}_p & \text{the prefix has an inference} \\
                     \mathbf{f} & \text{otherwise (learned fallback)} \end{cases}

    (:math:`\mathbf{z}` is computed once, outside this layer, and passed in; for the "no localisation" ablation it
    is the encoded raw answer instead).

    Args:
        in_dim: text vector size.
        dim: session representation size.

    Shapes:
        - **forward**: ``z`` ``[B, in_dim]``, ``has`` ``[B]`` bool → ``[B, dim]``
    """

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.fallback = nn.Parameter(torch.zeros(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.normal_(self.fallback, std=0.02)

    def forward(self, z: Tensor, has: Tensor) -> Tensor:
        p = self.proj(z)
        return torch.where(has[:, None], p, self.fallback.expand_as(p))


class GatedFusion(nn.Module):
    r"""Gated fusion of a behavioural session vector :math:`\mathbf{h}_b` and the semantic views
    :math:`\mathbf{p}_1, \dots, \mathbf{p}_V`:

    .. math::
        \mathbf{h}_s = \mathbf{W}_s [\mathbf{p}_1; \dots; \mathbf{p}_V] + \mathbf{b}_s, \qquad
        \mathbf{g} = \sigma(\mathbf{W}_g [\mathbf{h}_b; \mathbf{h}_s] + \mathbf{b}_g), \qquad
        \mathbf{h} = \mathbf{g} \odot \mathbf{h}_b + (1 - \mathbf{g}) \odot \mathbf{h}_s

    Args:
        dim: session representation size.
        num_views: :math:`V`.
        gate_bias: the initial :math:`\mathbf{b}_g` (every entry; 0 starts at :math:`g \approx 0.5`, a large
            positive value at :math:`g \approx 1`, the behavioural vector alone).

    Shapes:
        - **forward**: ``hb`` ``[B, dim]``, ``views`` list of ``V`` × ``[B, dim]`` → (``h`` ``[B, dim]``,
          ``g`` ``[B, dim]``)
    """

    def __init__(self, dim: int, num_views: int, gate_bias: float = 0.0) -> None:
        super().__init__()
        self.sem = nn.Linear(num_views * dim, dim)
        self.gate = nn.Linear(2 * dim, dim)
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, hb: Tensor, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        hs = self.sem(torch.cat(views, -1))
        g = torch.sigmoid(self.gate(torch.cat([hb, hs], -1)))
        return g * hb + (1 - g) * hs, g


__all__ = ["GatedFusion", "SemanticView", "alignment_loss", "uniformity_loss"]
