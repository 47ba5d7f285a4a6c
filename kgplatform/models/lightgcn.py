"""LightGCN: simplified graph convolution for recommendation (He et al., SIGIR 2020), as RecBole 1.2.1's
``LightGCN``."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.sampler import NodeSamplerInput

from kgplatform.data.neighbor import CSRNeighborSampler
from kgplatform.models.base import Recommender
from kgplatform.models.options import (
    check_bool, check_choice, check_fanouts, check_float, check_int, check_user_feature_options, refuse,
)
from kgplatform.nn.user_features import UserFeatureFusion, knowledge_penalty


@dataclass
class LightGCNConfig:
    """RecBole 1.2.1's defaults (``LightGCN.yaml``).

    Args:
        embedding_dim: size of the user and item vectors (RecBole ``embedding_size``).
        num_layers: propagation layers :math:`K` (RecBole ``n_layers``).
        reg_weight: weight of the L2 term on the batch's ego (layer-0) embeddings.
        require_pow: RecBole's ``EmbLoss`` flag: ``False`` uses the Frobenius norms
            :math:`\\|\\cdot\\|_2` of the three batch matrices, ``True`` their squares halved.
        user_features: ``none``, ``fallback`` (the control: only the fallback vector of the users without
            knowledge) or ``knowledge`` (not RecBole's): the embedded fused user knowledge added to
            the layer-0 user vectors through :class:`~kgplatform.nn.user_features.UserFeatureFusion`, so it
            propagates like the learned part.
        knowledge_reg: with ``user_features=knowledge``, the L2 weight :math:`\lambda_k` on the knowledge term of
            the step's users (0 = none); knowledge_dropout: its per-user dropout while training (0 = none);
            knowledge_fallback: learn the vector of the users without knowledge (``False``: zero, as the plain
            model). See :class:`~kgplatform.nn.user_features.UserFeatureFusion`.
        loader: how training computes the batch's embeddings. ``full``: propagate the whole graph at every
            step (memory grows with the graph). ``neighbor``: propagate only over the sampled
            ``num_layers``-hop neighbourhood of the batch's users and items
            (:class:`~kgplatform.data.neighbor.CSRNeighborSampler`, PyG's ``NeighborLoader`` sampling;
            memory grows with the batch); exact with every neighbour taken (``-1``), an unbiased estimate of
            each layer's aggregation otherwise. Scoring always propagates the full graph.
        num_neighbors: fan-out per layer with ``loader=neighbor`` (one per layer, ``-1`` = every neighbour).
        sparse_grad: with ``loader=neighbor``, sparse gradients for the user and item tables stepped by
            ``SparseAdam`` (lazy Adam: only the rows of the step's subgraph move), so that a step's cost follows
            the sampled subgraph instead of the whole table; off by default (dense Adam, as RecBole).
    """

    embedding_dim: int = 64
    num_layers: int = 2
    reg_weight: float = 1e-5
    require_pow: bool = False
    user_features: str = "none"
    knowledge_reg: float = 0.0
    knowledge_dropout: float = 0.0
    knowledge_fallback: bool = True
    loader: Literal["full", "neighbor"] = "full"
    num_neighbors: tuple[int, ...] = (10, 10)
    sparse_grad: bool = False

    def validate(self) -> LightGCNConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        check_int(self, "embedding_dim", 1)
        check_int(self, "num_layers", 0)  # 0 layers: plain matrix factorisation
        check_float(self, "reg_weight", 0.0)
        check_bool(self, "require_pow")
        check_user_feature_options(self)
        check_choice(self, "loader", ("full", "neighbor"))
        check_fanouts(self, "num_neighbors")
        check_bool(self, "sparse_grad")
        if self.sparse_grad and self.loader != "neighbor":
            raise refuse(self, "sparse_grad", "needs loader=neighbor (full propagation reads whole tables, so "
                                              "their gradients are dense)")
        if self.loader == "neighbor" and self.num_layers == 0:
            raise refuse(self, "loader", "neighbor sampling needs num_layers >= 1 (0 layers: nothing to propagate)")
        if self.loader == "neighbor" and len(self.num_neighbors) != self.num_layers:
            raise refuse(self, "num_neighbors", f"needs one fan-out per layer (num_layers={self.num_layers}), "
                                                f"got {len(self.num_neighbors)}: {','.join(map(str, self.num_neighbors))}")
        return self


def bipartite_norm_adj(users: Tensor, items: Tensor, num_users: int, num_items: int) -> tuple[Tensor, Tensor]:
    r"""The symmetric-normalised adjacency :math:`\tilde{\mathbf{A}} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}`
    of the user–item graph with :math:`\mathbf{A} = \begin{pmatrix} 0 & \mathbf{R} \\ \mathbf{R}^\top & 0
    \end{pmatrix}` over ``num_users + num_items`` nodes (users first, items after), :math:`\mathbf{R}` the
    binary interaction matrix (a repeated interaction counts once, as in RecBole) and :math:`\mathbf{D}` the
    node degrees. Returns ``(edge_index [2, 2|R|], edge_weight [2|R|])``, both directions of every edge,
    sorted by (row, column)."""
    n = num_users + num_items
    keys = torch.unique(users.long() * num_items + items.long())
    u, i = keys // num_items, keys % num_items + num_users
    row, col = torch.cat([u, i]), torch.cat([i, u])
    deg = torch.bincount(row, minlength=n).float()
    dinv = deg.clamp(min=1).rsqrt()
    order = torch.argsort(row * n + col)
    row, col = row[order], col[order]
    return torch.stack([row, col]), dinv[row] * dinv[col]


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a fixed symmetric sparse ``A``: the gradient is ``A @ grad`` (the same product), which
    is about twice as fast on CPU as autograd's generic sparse backward."""

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, ctx.adj @ grad


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` with ``adj`` a symmetric sparse matrix that needs no gradient."""
    return _SymmetricSpMM.apply(adj, x)


class _SpMM(torch.autograd.Function):
    """``A @ x`` for a fixed sparse ``A`` given with its transpose: the gradient is ``A^T @ grad``."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, ctx.adj_t @ grad


def sparse_spmm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` with ``adj`` a sparse matrix that needs no gradient and ``adj_t`` its transpose."""
    return _SpMM.apply(adj, adj_t, x)


def _csr(row: Tensor, col: Tensor, value: Tensor, n: int) -> Tensor:
    """The ``[n, n]`` sparse CSR matrix with ``value`` at ``(row, col)`` (pairs distinct)."""
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value.detach(), (n, n)).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


class LightGCN(Recommender):
    r"""LightGCN on the training user–item graph, trained with BPR.

    With ego embeddings :math:`\mathbf{E}^{(0)} = [\mathbf{E}_U; \mathbf{E}_I]` and the normalised
    adjacency of :func:`bipartite_norm_adj`,

    .. math::
        \mathbf{E}^{(k+1)} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}\,\mathbf{E}^{(k)}, \quad
        \text{i.e.}\quad \mathbf{e}^{(k+1)}_u = \sum_{i \in \mathcal{N}_u}
            \frac{1}{\sqrt{|\mathcal{N}_u|}\sqrt{|\mathcal{N}_i|}}\,\mathbf{e}^{(k)}_i, \qquad
        \mathbf{E} = \frac{1}{K+1}\sum_{k=0}^{K} \mathbf{E}^{(k)}

    (what PyG's :class:`~torch_geometric.nn.conv.LGConv` computes; here one sparse CSR product per layer
    with the normalised adjacency built once, and a backward pass that reuses its symmetry), and

    .. math::
        s(u, i) = \mathbf{e}_u^\top \mathbf{e}_i, \qquad
        \mathcal{L} = -\frac{1}{|B|}\sum_{(u,i,j) \in B} \log \sigma\big(s(u,i) - s(u,j)\big)
            + \lambda\,\frac{\|\mathbf{E}^{(0)}_{u}\|_2 + \|\mathbf{E}^{(0)}_{i}\|_2 + \|\mathbf{E}^{(0)}_{j}\|_2}{|B|}

    with :math:`j` a sampled item the user has not interacted with in training and the norms over the
    batch's rows of the ego embeddings (RecBole's ``EmbLoss``; squared and halved with ``require_pow``).
    The graph holds the training interactions only (the builder gets the training view). The propagated
    :math:`\mathbf{E}` is cached by :meth:`prepare_eval` and dropped by ``train()``.

    Args:
        num_users (int): number of users.
        num_items (int): number of items.
        users (Tensor): ``[E]`` user of every training interaction.
        items (Tensor): ``[E]`` item of every training interaction.
        config (LightGCNConfig): hyper-parameters.
        user_fusion (UserFeatureFusion, optional): the user feature term (``user_features != "none"``).

    Shapes:
        - **loss** batch: ``users``, ``pos``, ``neg`` ``[B]``
        - **score**: users ``[B]``, items ``[B, C]`` → ``[B, C]``
        - **full_scores**: users ``[B]`` → ``[B, num_items]``
    """

    sampler = "pairs"

    def __init__(
        self, num_users: int, num_items: int, users: Tensor, items: Tensor, config: LightGCNConfig | None = None,
        user_fusion: UserFeatureFusion | None = None,
    ) -> None:
        super().__init__(num_users, num_items)
        self.config = c = config or LightGCNConfig()
        edge_index, edge_weight = bipartite_norm_adj(users, items, num_users, num_items)
        # plain buffers (moved by .to(), kept out of the state dict); the sparse matrix is built from them
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("edge_weight", edge_weight, persistent=False)
        self.user_emb = nn.Embedding(num_users, c.embedding_dim, sparse=c.sparse_grad)
        self.item_emb = nn.Embedding(num_items, c.embedding_dim, sparse=c.sparse_grad)
        self.user_fusion = user_fusion
        self._adj: Tensor | None = None
        self._cache: tuple[Tensor, Tensor] | None = None
        self._sampler: CSRNeighborSampler | None = None
        #: ``(nodes, edges)`` of the last sampled training subgraph (``loader=neighbor``), for measurements
        self.last_subgraph: tuple[int, int] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)
        self._drop_cache()

    def adjacency(self) -> Tensor:
        """The normalised adjacency as a sparse CSR matrix on the model's device (built once per device)."""
        if self._adj is None or self._adj.device != self.edge_weight.device:
            n = self.num_users + self.num_items
            coo = torch.sparse_coo_tensor(self.edge_index, self.edge_weight, (n, n), is_coalesced=True)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                self._adj = coo.to_sparse_csr()
        return self._adj

    def propagate(self) -> tuple[Tensor, Tensor]:
        """Layer-mean embeddings ``(users [U, d], items [I, d])``."""
        ego_u = self.user_emb.weight if self.user_fusion is None else self.user_emb.weight + self.user_fusion()
        x = torch.cat([ego_u, self.item_emb.weight])
        adj = self.adjacency()
        acc = x
        for _ in range(self.config.num_layers):
            x = symmetric_spmm(adj, x)
            acc = acc + x
        acc = acc / (self.config.num_layers + 1)
        return acc[: self.num_users], acc[self.num_users:]

    def neighbor_sampler(self) -> CSRNeighborSampler:
        """The training graph's neighbour sampler (CPU index tensors, built once); every edge of
        :func:`bipartite_norm_adj` is sampled by the node it sends messages to (the graph is symmetric)."""
        if self._sampler is None:
            self._sampler = CSRNeighborSampler(self.edge_index.flip(0), self.num_users + self.num_items,
                                               self.config.num_neighbors)
        return self._sampler

    def _ego(self, node: Tensor) -> Tensor:
        """Layer-0 vectors of global node ids (users first, items after): only those rows are gathered."""
        is_user = node < self.num_users
        order = torch.cat([is_user.nonzero().view(-1), (~is_user).nonzero().view(-1)])
        u = node[is_user]
        u_rows = self.user_emb(u) if self.user_fusion is None else self.user_emb(u) + self.user_fusion(u)
        rows = torch.cat([u_rows, self.item_emb(node[~is_user] - self.num_users)])
        return rows.new_empty(rows.shape).index_copy(0, order, rows)

    def propagate_batch(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        r"""Layer-mean embeddings of the distinct ``users`` and ``items`` only, propagated over their sampled
        ``num_layers``-hop neighbourhood (``num_neighbors`` per hop) instead of the whole graph.

        Each sampled edge :math:`u \to v` keeps its full-graph weight
        :math:`1/\sqrt{|\mathcal{N}_u||\mathcal{N}_v|}`, scaled by :math:`|\mathcal{N}_v| / k_v` when
        :math:`v` drew :math:`k_v` of its :math:`|\mathcal{N}_v|` neighbours, so that every layer's sum is an
        unbiased estimate of the full one; with every neighbour taken the result equals :meth:`propagate`'s
        rows (a seed's layer-:math:`k` vector needs exactly its :math:`k`-hop neighbourhood).

        Returns ``(users [B_u, d], items [B_i, d])`` in the given order."""
        sampler = self.neighbor_sampler()
        dev = self.user_emb.weight.device
        seeds = torch.cat([users.cpu(), items.cpu() + self.num_users])
        out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
        self.last_subgraph = (out.node.numel(), out.row.numel())
        drawn = torch.bincount(out.col, minlength=out.node.numel()).clamp(min=1)
        scale = sampler.in_degree[out.node].float() / drawn
        node, row, col = out.node.to(dev), out.row.to(dev), out.col.to(dev)
        w = self.edge_weight[out.edge.to(dev)] * scale.to(dev)[col]
        x = self._ego(node)
        acc = x
        # edges come hop by hop: layer k (of L) only has to be right on nodes within L - k hops of the seeds,
        # so it needs only the edges of the first L - k + 1 hops (PyG's trim_to_layer); the seeds stay exact
        upto = torch.cumsum(torch.tensor(out.num_sampled_edges), 0).tolist()
        L, n = self.config.num_layers, node.numel()
        for k in range(L):
            m = upto[L - 1 - k]
            if k == 0 or m != upto[L - k]:  # one sparse matrix per distinct edge prefix (and its transpose)
                adj, adj_t = _csr(col[:m], row[:m], w[:m], n), _csr(row[:m], col[:m], w[:m], n)
            x = sparse_spmm(adj, adj_t, x)  # per-node sums: no [edges, d] message tensor
            acc = acc + x
        acc = acc / (self.config.num_layers + 1)
        return acc[: users.numel()], acc[users.numel(): seeds.numel()]

    def _embeddings(self) -> tuple[Tensor, Tensor]:
        return self._cache if self._cache is not None else self.propagate()

    def prepare_eval(self) -> None:
        with torch.no_grad():
            self._cache = tuple(t.detach() for t in self.propagate())

    def _drop_cache(self) -> None:
        self._cache = None

    def _apply(self, fn, *args, **kwargs):
        self._adj = None  # moved or cast: rebuild the sparse matrix from the buffers
        self._cache = None
        return super()._apply(fn, *args, **kwargs)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        if self.config.loader == "neighbor":
            uu, u_at = torch.unique(users, return_inverse=True)
            ii, i_at = torch.unique(torch.cat([pos, neg]), return_inverse=True)
            eu, ei = self.propagate_batch(uu, ii)
            u, p, n = eu[u_at], ei[i_at[: pos.numel()]], ei[i_at[pos.numel():]]
        else:
            u_all, i_all = self.propagate()
            u, p, n = u_all[users], i_all[pos], i_all[neg]
        out = {"bpr": -F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean()}
        if self.config.reg_weight:
            ego = (self.user_emb(users), self.item_emb(pos), self.item_emb(neg))
            if self.config.require_pow:
                reg = sum(e.pow(2).sum() for e in ego) / 2
            else:
                reg = sum(torch.linalg.norm(e) for e in ego)
            out["reg"] = self.config.reg_weight * reg / users.shape[0]
        return out | knowledge_penalty(self.user_fusion, users)

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        u_all, i_all = self._embeddings()
        return torch.einsum("bd,bcd->bc", u_all[users], i_all[items])

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        u_all, i_all = self._embeddings()
        return u_all[users] @ i_all.t()

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self._embeddings()[0][users]

    def item_embeddings(self) -> Tensor:
        return self._embeddings()[1]

    def score_decomposition(self) -> dict:
        """The score is the dot product of the written-back user and item vectors."""
        return {"kind": "dot"}
