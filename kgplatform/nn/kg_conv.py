"""Knowledge-graph convolution (IKGR eq. 3)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from torch_geometric.nn import MessagePassing


class KGConv(MessagePassing):
    r"""The knowledge-graph convolution of IKGR (Eq. 3, after KGCN, Wang et al. 2019):

    .. math::
        \mathbf{h}'_v = \sigma\Big(\mathbf{W}\big(\mathbf{h}_v
            + \operatorname*{AGG}_{(r, u) \in \mathcal{N}(v)} (\mathbf{e}_u + \mathbf{e}_r)\big)
            + \mathbf{b}\Big)

    where :math:`\mathcal{N}(v)` are the (relation, neighbour) pairs of the edges pointing at :math:`v`,
    :math:`\mathbf{e}_u = \mathbf{h}_u` the neighbour's input embedding and :math:`\mathbf{e}_r` a learned
    embedding of the edge's relation.

    The paper names a summation; over a recommendation graph a popular item has hundreds of neighbours and
    the sum's scale then grows with degree, so ``aggr="mean"`` (our default) averages instead. ``"sum"`` is
    the literal reading. Both are documented reconstructions (the paper's formula was lost in extraction).

    Args:
        in_channels (int): size of the input node embeddings.
        out_channels (int): size of the output embeddings.
        num_relations (int): number of relation (edge) types.
        aggr (str, optional): ``"mean"`` or ``"sum"``. (default: ``"mean"``)
        act (str, optional): activation :math:`\sigma`: ``"tanh"`` (KGCN's last layer), ``"relu"``,
            ``"leaky_relu"`` or ``"none"``. (default: ``"tanh"``)
        bias (bool, optional): learn :math:`\mathbf{b}`. (default: ``True``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices :math:`(2, |\mathcal{E}|)`
          (``edge_index[0]`` = source/neighbour, ``edge_index[1]`` = target), edge types
          :math:`(|\mathcal{E}|)`; or ``prepared=KGConv.prepare(...)`` for a fixed graph
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        aggr: Literal["mean", "sum"] = "mean",
        act: Literal["tanh", "relu", "leaky_relu", "none"] = "tanh",
        bias: bool = True,
    ) -> None:
        super().__init__(aggr=aggr)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.act_name = act
        self.rel_emb = nn.Embedding(num_relations, in_channels)
        self.lin = nn.Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.xavier_uniform_(self.rel_emb.weight)
        nn.init.xavier_uniform_(self.lin.weight)
        if self.lin.bias is not None:
            nn.init.zeros_(self.lin.bias)

    def _act(self, x: Tensor) -> Tensor:
        if self.act_name == "tanh":
            return torch.tanh(x)
        if self.act_name == "relu":
            return torch.relu(x)
        if self.act_name == "leaky_relu":
            return torch.nn.functional.leaky_relu(x)
        return x

    @staticmethod
    def prepare(
        edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int, aggr: str = "mean"
    ) -> tuple[Tensor, Tensor]:
        """Precompute sparse operators for a fixed graph: ``(A, C)`` with ``A`` :math:`(N, N)` and ``C``
        :math:`(N, R)` (CSR) such that the aggregation is ``A @ x + C @ rel_emb``. With ``mean`` the rows are
        divided by the in-degree. Pass the pair as ``prepared=`` to :meth:`forward` to skip the per-edge
        gather/scatter (about 3x faster on CPU; the result is the same)."""
        import warnings

        src, dst = edge_index
        ones = torch.ones(src.numel(), device=src.device)
        if aggr == "mean":
            deg = torch.zeros(num_nodes, device=src.device).index_add_(0, dst, ones).clamp(min=1)
            w = 1.0 / deg[dst]
        else:
            w = ones
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            A = torch.sparse_coo_tensor(torch.stack([dst, src]), w, (num_nodes, num_nodes)).coalesce()
            C = torch.sparse_coo_tensor(torch.stack([dst, edge_type]), w, (num_nodes, num_relations)).coalesce()
            return A.to_sparse_csr(), C.to_sparse_csr()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_type: Tensor | None = None,
        *,
        prepared: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        if prepared is not None:
            A, C = prepared
            agg = A @ x + C @ self.rel_emb.weight
        else:
            agg = self.propagate(edge_index, x=x, edge_type=edge_type, size=(x.size(0), x.size(0)))
        return self._act(self.lin(x + agg))

    def message(self, x_j: Tensor, edge_type: Tensor) -> Tensor:
        return x_j + self.rel_emb(edge_type)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations}, aggr={self.aggr})"
        )
