"""SR-GNN's session graph and gated graph layer (Wu et al., "Session-based Recommendation with Graph Neural
Networks", AAAI 2019).

* :func:`session_graph` turns a batch of right-padded item sequences into one batched directed graph: a node
  per distinct item of each session, an edge for every pair of consecutive clicks, with SR-GNN's in/out
  normalisation, and the *alias* index that maps every sequence position to its node.
* :class:`GatedSessionGraphConv` is the gated graph layer (a GRU update over messages from in- and
  out-neighbours, repeated ``steps`` times).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import MessagePassing


@dataclass(frozen=True)
class SessionGraph:
    r"""A batch of session graphs (one connected block per session, PyG style ``batch`` vector).

    Attributes:
        items: ``[N]`` the item of every node; the nodes of a session are its distinct items, in increasing
            item order, and the sessions' blocks follow each other in row order.
        batch: ``[N]`` the session (row of the input) of every node.
        edge_index: ``[2, E]`` the distinct directed edges ``source → target`` between the nodes of two
            consecutive clicks :math:`(v_{s,t}, v_{s,t+1})`; a repeated transition gives one edge, a click
            repeated in a row a self-loop.
        w_in: ``[E]`` :math:`1 / |\mathcal{N}_{in}(\text{target})|`, the weight of an edge in the target's
            incoming-neighbour mean.
        w_out: ``[E]`` :math:`1 / |\mathcal{N}_{out}(\text{source})|`, its weight in the source's
            outgoing-neighbour mean.
        alias: ``[B, L]`` the node of every sequence position, ``-1`` at padding.
        length: ``[B]`` the number of clicks of every session.
    """

    items: Tensor
    batch: Tensor
    edge_index: Tensor
    w_in: Tensor
    w_out: Tensor
    alias: Tensor
    length: Tensor

    @property
    def num_nodes(self) -> int:
        return int(self.items.numel())

    @property
    def num_sessions(self) -> int:
        return int(self.alias.shape[0])

    @property
    def last(self) -> Tensor:
        """``[B]`` the node of every session's last click (``-1`` for an empty session)."""
        idx = (self.length - 1).clamp(min=0)
        last = self.alias.gather(1, idx[:, None]).squeeze(1)
        return torch.where(self.length > 0, last, torch.full_like(last, -1))

    def in_adjacency(self) -> Tensor:
        r"""Dense ``[N, N]`` :math:`\mathbf{A}^{in}`: row :math:`v` holds :math:`1/|\mathcal{N}_{in}(v)|` at
        each incoming neighbour (for inspection and tests; the layer works on the edge list)."""
        a = torch.zeros(self.num_nodes, self.num_nodes, device=self.items.device)
        a[self.edge_index[1], self.edge_index[0]] = self.w_in
        return a

    def out_adjacency(self) -> Tensor:
        r"""Dense ``[N, N]`` :math:`\mathbf{A}^{out}`: row :math:`v` holds :math:`1/|\mathcal{N}_{out}(v)|` at
        each outgoing neighbour."""
        a = torch.zeros(self.num_nodes, self.num_nodes, device=self.items.device)
        a[self.edge_index[0], self.edge_index[1]] = self.w_out
        return a


def session_graph(seq: Tensor, num_items: int | None = None) -> SessionGraph:
    r"""The batched session graph of ``seq`` (see :class:`SessionGraph`).

    As in SR-GNN's reference code (and RecBole 1.2.1's ``SRGNN``), an edge counts once however often its
    transition occurs, and each direction is normalised by the node's degree in that direction:
    :math:`\mathbf{A}^{in}_{vu} = 1/|\mathcal{N}_{in}(v)|` for :math:`u \to v`,
    :math:`\mathbf{A}^{out}_{vu} = 1/|\mathcal{N}_{out}(v)|` for :math:`v \to u`.

    Args:
        seq: ``[B, L]`` item indices, right-padded with ``-1`` (a row may be all padding: an empty session).
        num_items: an upper bound of the item indices (default: ``seq.max() + 1``).
    """
    if seq.dim() != 2:
        raise ValueError(f"seq must be [B, L], got shape {tuple(seq.shape)}")
    device = seq.device
    B, L = seq.shape
    valid = seq >= 0
    m = int(num_items) if num_items is not None else (int(seq.max()) + 1 if bool(valid.any()) else 1)
    rows = torch.arange(B, device=device)[:, None].expand(B, L)
    key = rows * m + seq.clamp(min=0)
    nodes, inv = torch.unique(key[valid], return_inverse=True)  # sorted: by session, then item
    alias = torch.full((B, L), -1, dtype=torch.long, device=device)
    alias[valid] = inv
    n = int(nodes.numel())
    step = valid[:, 1:] & valid[:, :-1]
    src, dst = alias[:, :-1][step], alias[:, 1:][step]
    edges = torch.unique(src * max(n, 1) + dst)
    src, dst = edges // max(n, 1), edges % max(n, 1)
    ones = torch.ones(edges.numel(), device=device)
    indeg = torch.zeros(n, device=device).index_add_(0, dst, ones)
    outdeg = torch.zeros(n, device=device).index_add_(0, src, ones)
    return SessionGraph(
        items=nodes % m, batch=nodes // m, edge_index=torch.stack([src, dst]),
        w_in=1.0 / indeg[dst], w_out=1.0 / outdeg[src], alias=alias, length=valid.sum(1),
    )


class GatedSessionGraphConv(MessagePassing):
    r"""SR-GNN's gated graph layer (Wu et al., 2019, Eq. 1–5, as its reference code): for every node
    :math:`v` of a session graph, with :math:`\mathbf{h}_v` its state,

    .. math::
        \mathbf{a}^{in}_v &= \frac{1}{|\mathcal{N}_{in}(v)|} \sum_{u \in \mathcal{N}_{in}(v)}
            (\mathbf{W}_{in}\mathbf{h}_u + \mathbf{b}_{in}) + \mathbf{c}_{in}, \qquad
        \mathbf{a}^{out}_v = \frac{1}{|\mathcal{N}_{out}(v)|} \sum_{u \in \mathcal{N}_{out}(v)}
            (\mathbf{W}_{out}\mathbf{h}_u + \mathbf{b}_{out}) + \mathbf{c}_{out}, \\
        \mathbf{a}_v &= [\mathbf{a}^{in}_v ; \mathbf{a}^{out}_v], \\
        \mathbf{z}_v &= \sigma(\mathbf{W}_z \mathbf{a}_v + \mathbf{U}_z \mathbf{h}_v + \mathbf{b}_z), \qquad
        \mathbf{r}_v = \sigma(\mathbf{W}_r \mathbf{a}_v + \mathbf{U}_r \mathbf{h}_v + \mathbf{b}_r), \\
        \tilde{\mathbf{h}}_v &= \tanh\big(\mathbf{W}_h \mathbf{a}_v + \mathbf{b}_h
            + \mathbf{r}_v \odot (\mathbf{U}_h \mathbf{h}_v + \mathbf{d}_h)\big), \qquad
        \mathbf{h}'_v = (1 - \mathbf{z}_v) \odot \mathbf{h}_v + \mathbf{z}_v \odot \tilde{\mathbf{h}}_v,

    applied ``steps`` times with the same weights (:math:`\mathcal{N}_{in}(v)`: the nodes with an edge into
    :math:`v`; a node without neighbours in a direction gets :math:`\mathbf{c}` alone for it). The
    :math:`1/|\mathcal{N}|` weights are :class:`SessionGraph`'s ``w_in``/``w_out``. The stacked
    :math:`[\mathbf{W}_r; \mathbf{W}_z; \mathbf{W}_h]` is ``w_ih`` (``[3d, 2d]``),
    :math:`[\mathbf{U}_r; \mathbf{U}_z; \mathbf{U}_h]` is ``w_hh`` (``[3d, d]``), with biases ``b_ih`` and
    ``b_hh``; :math:`\mathbf{c}_{in}`, :math:`\mathbf{c}_{out}` are ``c_in``, ``c_out``.

    Args:
        channels (int): node state size :math:`d`.
        steps (int, optional): propagation steps. (default: ``1``)

    Shapes:
        - **input:** node states :math:`(N, d)`, ``edge_index`` :math:`(2, E)` (source → target),
          ``w_in`` and ``w_out`` :math:`(E)`
        - **output:** node states :math:`(N, d)`
    """

    def __init__(self, channels: int, steps: int = 1) -> None:
        super().__init__(aggr="add")
        if channels < 1 or steps < 1:
            raise ValueError(f"channels ({channels}) and steps ({steps}) must be >= 1")
        self.channels = channels
        self.steps = steps
        d = channels
        self.lin_in = nn.Linear(d, d)
        self.lin_out = nn.Linear(d, d)
        self.c_in = nn.Parameter(torch.empty(d))
        self.c_out = nn.Parameter(torch.empty(d))
        self.w_ih = nn.Parameter(torch.empty(3 * d, 2 * d))
        self.w_hh = nn.Parameter(torch.empty(3 * d, d))
        self.b_ih = nn.Parameter(torch.empty(3 * d))
        self.b_hh = nn.Parameter(torch.empty(3 * d))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight uniform in :math:`\\pm 1/\\sqrt{d}` (the reference code's and RecBole's init)."""
        super().reset_parameters()
        bound = 1.0 / math.sqrt(self.channels)
        for p in (self.lin_in.weight, self.lin_in.bias, self.lin_out.weight, self.lin_out.bias, self.c_in,
                  self.c_out, self.w_ih, self.w_hh, self.b_ih, self.b_hh):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: Tensor, edge_index: Tensor, w_in: Tensor, w_out: Tensor) -> Tensor:
        n = x.size(0)
        back = edge_index.flip(0)  # target → source: a node hears its outgoing neighbours
        for _ in range(self.steps):
            a_in = self.propagate(edge_index, x=self.lin_in(x), w=w_in, size=(n, n)) + self.c_in
            a_out = self.propagate(back, x=self.lin_out(x), w=w_out, size=(n, n)) + self.c_out
            gi = F.linear(torch.cat([a_in, a_out], -1), self.w_ih, self.b_ih)
            gh = F.linear(x, self.w_hh, self.b_hh)
            i_r, i_z, i_h = gi.chunk(3, -1)
            h_r, h_z, h_h = gh.chunk(3, -1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            cand = torch.tanh(i_h + r * h_h)
            x = (1 - z) * x + z * cand
        return x

    def message(self, x_j: Tensor, w: Tensor) -> Tensor:
        return w.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, steps={self.steps})"


__all__ = ["GatedSessionGraphConv", "SessionGraph", "session_graph"]
