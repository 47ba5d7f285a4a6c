r"""Layer-wise neighbour sampling (GraphSAGE-style, Hamilton et al., NeurIPS 2017) in pure PyTorch, as a
PyG :class:`~torch_geometric.sampler.BaseSampler`.

PyG's own :class:`~torch_geometric.sampler.NeighborSampler` (behind ``NeighborLoader`` and
``LinkNeighborLoader``) needs the compiled ``pyg-lib`` or ``torch-sparse`` extension; neither has a wheel on
PyPI for torch 2.9.1 (``pyg-lib`` is not on PyPI at all, ``torch-sparse`` 0.6.18 is a source distribution that
must be compiled against torch), and PyG 2.8.1 has no pure-PyTorch fallback (it raises ``ImportError``). This
sampler fills that gap with CSC index arithmetic only and returns PyG's
:class:`~torch_geometric.sampler.SamplerOutput`, so it plugs into PyG's loaders unchanged:
``NodeLoader(data, node_sampler=CSRNeighborSampler(...), input_nodes=...)`` behaves as ``NeighborLoader`` and
``LinkLoader(data, link_sampler=CSRNeighborSampler(...), edge_label_index=...)`` as ``LinkNeighborLoader``
(negative sampling included, through PyG's own ``edge_sample``).

For seeds :math:`S_0` and fan-outs :math:`(f_1, \dots, f_L)`, hop :math:`\ell` draws, for every node first
reached at hop :math:`\ell - 1`, :math:`\min(f_\ell, d_v)` of its :math:`d_v` in-neighbours uniformly without
replacement (all of them for :math:`f_\ell = -1`); nodes reached again are not expanded again. So the
subgraph holds at most :math:`|S_0|\,(1 + f_1 + f_1 f_2 + \dots + f_1 \cdots f_L)` nodes, whatever the size of
the graph. The output follows PyG's conventions: ``node`` are global ids, seeds first and in the given
order; ``row``/``col`` are local indices of each sampled edge's source (the neighbour) and destination (the
node that drew it); ``edge`` are the edges' ids in the ``edge_index`` the sampler was built from;
``num_sampled_nodes``/``num_sampled_edges`` per hop.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample


class CSRNeighborSampler(BaseSampler):
    r"""Uniform fan-out neighbour sampling over a homogeneous graph (see the module docstring).

    Args:
        edge_index (Tensor): ``[2, E]`` edges ``src -> dst`` (PyG's message direction); a node samples among
            the sources of its incoming edges.
        num_nodes (int): number of nodes.
        num_neighbors (Sequence[int]): fan-out per hop, ``-1`` for every neighbour.
        generator (torch.Generator, optional): random source (CPU), for reproducible draws.

    Shapes:
        - **sample_from_nodes**: seeds ``[S]`` (distinct) → ``node [N_sub]``, ``row``/``col``/``edge``
          ``[E_sub]``
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, num_neighbors: Sequence[int],
                 generator: torch.Generator | None = None) -> None:
        fanouts = [int(f) for f in num_neighbors]
        if not fanouts or any(f == 0 or f < -1 for f in fanouts):
            raise ValueError(f"num_neighbors must be a non-empty list of -1 or positive integers, got {fanouts}")
        self.num_neighbors = fanouts
        self.num_nodes = int(num_nodes)
        edge_index = edge_index.detach().long().cpu()
        dst = edge_index[1]
        perm = torch.argsort(dst, stable=True)
        #: CSC: the incoming edges of node v are positions colptr[v]:colptr[v+1] of ``row``/``eid``
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        self.colptr[1:] = torch.cumsum(torch.bincount(dst, minlength=self.num_nodes), 0)
        self.row = edge_index[0, perm].contiguous()
        self.eid = perm  # original edge id of each CSC position
        self.generator = generator
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)  # global -> local, reset per call

    @property
    def in_degree(self) -> Tensor:
        """``[num_nodes]`` in-degree of every node in the full graph."""
        return self.colptr[1:] - self.colptr[:-1]

    def _draw(self, frontier: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """The in-edges drawn for ``frontier`` nodes: all of a node's in-edges when it has at most ``fanout``
        (or ``fanout == -1``), else ``fanout`` of them uniformly without replacement. Returns their CSC
        positions and the index in ``frontier`` of the node that drew each. The work and memory are
        O(``len(frontier) * fanout``), whatever the nodes' degrees."""
        start, deg = self.colptr[frontier], self.in_degree[frontier]
        idx = torch.arange(frontier.numel())
        if fanout < 0:
            return self._all(start, deg, idx)
        parts = [self._all(start[deg <= fanout], deg[deg <= fanout], idx[deg <= fanout])]
        mid = (deg > fanout) & (deg <= 2 * fanout)
        if bool(mid.any()):  # a random order of each node's in-edges, the first `fanout` kept (cost <= 2 fanout)
            pos, who = self._all(start[mid], deg[mid], idx[mid])
            key = who.double() + torch.rand(who.numel(), generator=self.generator, dtype=torch.float64)
            order = torch.argsort(key)  # who is sorted: the nodes' blocks stay in place, shuffled inside
            pos, who = pos[order], who[order]
            first = torch.searchsorted(who, who, side="left")
            keep = torch.arange(who.numel()) - first < fanout
            parts.append((pos[keep], who[keep]))
        big = deg > 2 * fanout
        if bool(big.any()):  # rejection: redraw repeated offsets until each row holds `fanout` distinct ones
            d = deg[big].unsqueeze(1)
            off = (torch.rand(d.numel(), fanout, generator=self.generator) * d).long().clamp(max=d - 1)
            while True:
                srt, order = off.sort(dim=1)
                dup = torch.zeros_like(off, dtype=torch.bool)
                dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
                if not bool(dup.any()):
                    break
                again = torch.zeros_like(dup).scatter_(1, order, dup)  # back to the draw order
                redraw = (torch.rand(off.shape, generator=self.generator) * d).long().clamp(max=d - 1)
                off = torch.where(again, redraw, off)
            parts.append(((start[big].unsqueeze(1) + off).view(-1), idx[big].repeat_interleave(fanout)))
        return torch.cat([p for p, _ in parts]), torch.cat([w for _, w in parts])

    @staticmethod
    def _all(start: Tensor, deg: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Every in-edge of the given nodes: CSC positions and the owner index ``idx`` of each."""
        who = torch.repeat_interleave(idx, deg)
        first = torch.cumsum(deg, 0) - deg
        rank = torch.arange(who.numel()) - torch.repeat_interleave(first, deg)
        return torch.repeat_interleave(start, deg) + rank, who

    def _sample(self, seed: Tensor, seed_time: Tensor | None = None) -> SamplerOutput:
        if seed_time is not None:
            raise ValueError("CSRNeighborSampler does not do temporal sampling")
        seed = seed.long().cpu()
        local = self._local
        nodes = [seed]
        if torch.unique(seed).numel() != seed.numel():
            raise ValueError("CSRNeighborSampler expects distinct seed nodes")
        local[seed] = torch.arange(seed.numel())
        n, frontier = seed.numel(), seed
        rows, cols, edges, n_nodes, n_edges = [], [], [], [seed.numel()], []
        try:
            for fanout in self.num_neighbors:
                pos, who = self._draw(frontier, fanout)
                nbr, dst_global = self.row[pos], frontier[who]
                new = torch.unique(nbr[local[nbr] < 0])
                local[new] = torch.arange(n, n + new.numel())
                n += new.numel()
                nodes.append(new)
                rows.append(local[nbr])
                cols.append(local[dst_global])
                edges.append(self.eid[pos])
                n_nodes.append(new.numel())
                n_edges.append(pos.numel())
                frontier = new
            node = torch.cat(nodes)
        finally:
            local[torch.cat(nodes)] = -1
        z = torch.zeros(0, dtype=torch.long)
        return SamplerOutput(node=node, row=torch.cat(rows) if rows else z, col=torch.cat(cols) if cols else z,
                             edge=torch.cat(edges) if edges else z, batch=None, num_sampled_nodes=n_nodes,
                             num_sampled_edges=n_edges)

    # ---- PyG's BaseSampler interface
    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        return node_sample(index, self._sample)

    def sample_from_edges(self, index: EdgeSamplerInput,
                          neg_sampling: NegativeSampling | None = None) -> SamplerOutput:
        return edge_sample(index, self._sample, self.num_nodes, False, None, neg_sampling)

    @property
    def edge_permutation(self) -> Tensor | None:
        return None  # ``edge`` already holds the ids of the given edge_index


def fanout_bound(num_seeds: int, num_neighbors: Sequence[int]) -> int:
    r"""The most nodes a sampled subgraph of ``num_seeds`` seeds can hold:
    :math:`S\,(1 + f_1 + f_1 f_2 + \dots)` (``-1`` fan-outs are unbounded: returns ``-1``)."""
    if any(int(f) < 0 for f in num_neighbors):
        return -1
    total, width = num_seeds, num_seeds
    for f in num_neighbors:
        width *= int(f)
        total += width
    return total
