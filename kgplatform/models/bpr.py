"""BPR-MF: matrix factorisation trained with the Bayesian Personalised Ranking loss (Rendle et al., 2009)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgplatform.models.base import Recommender
from kgplatform.models.options import check_bool, check_float, check_int, check_user_feature_options
from kgplatform.nn.user_features import UserFeatureFusion, knowledge_penalty


@dataclass
class BPRConfig:
    """Args:
        embedding_dim: size of user and item vectors.
        reg_weight: L2 weight on the embeddings of the batch (0 = rely on the optimiser's weight decay).
        user_features: ``none``, ``fallback`` (the control: only the fallback vector of the users without
            knowledge) or ``knowledge`` (the embedded fused user knowledge added to the user vector
            through :class:`~kgplatform.nn.user_features.UserFeatureFusion`).
        knowledge_reg: with ``user_features=knowledge``, the L2 weight :math:`\lambda_k` on the knowledge term of
            the step's users (0 = none); knowledge_dropout: its per-user dropout while training (0 = none);
            knowledge_fallback: learn the vector of the users without knowledge (``False``: zero, as the plain
            model). See :class:`~kgplatform.nn.user_features.UserFeatureFusion`.
        sparse_grad: sparse gradients for the user and item tables, stepped by ``SparseAdam`` (lazy Adam: only
            the rows a batch touched move), so a step costs O(batch) instead of O(users + items); off by
            default (dense Adam, as RecBole). Not combinable with weight decay.
    """

    embedding_dim: int = 64
    reg_weight: float = 0.0
    user_features: str = "none"
    knowledge_reg: float = 0.0
    knowledge_dropout: float = 0.0
    knowledge_fallback: bool = True
    sparse_grad: bool = False

    def validate(self) -> BPRConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        check_int(self, "embedding_dim", 1)
        check_float(self, "reg_weight", 0.0)
        check_user_feature_options(self)
        check_bool(self, "sparse_grad")
        return self


class BPRMF(Recommender):
    r"""Matrix factorisation with the BPR loss.

    .. math::
        s(u, i) = \mathbf{e}_u^\top \mathbf{e}_i, \qquad
        \mathcal{L}_{\text{bpr}} = -\frac{1}{|B|}\sum_{(u,i,j) \in B} \log \sigma\big(s(u,i) - s(u,j)\big)

    with :math:`j` a sampled item the user has not interacted with. With ``user_features`` the user vector is
    :math:`\mathbf{e}_u` plus the fused-knowledge term of :class:`~kgplatform.nn.user_features.UserFeatureFusion`.

    Args:
        num_users (int): number of users.
        num_items (int): number of items.
        config (BPRConfig): hyper-parameters.
        user_fusion (UserFeatureFusion, optional): the user feature term (``user_features != "none"``).

    Shapes:
        - **loss** batch: ``users``, ``pos``, ``neg`` ``[B]``
        - **score**: users ``[B]``, items ``[B, C]`` → ``[B, C]``
        - **full_scores**: users ``[B]`` → ``[B, num_items]``
    """

    sampler = "pairs"

    def __init__(self, num_users: int, num_items: int, config: BPRConfig | None = None,
                 user_fusion: UserFeatureFusion | None = None) -> None:
        super().__init__(num_users, num_items)
        self.config = config or BPRConfig()
        d = self.config.embedding_dim
        self.user_emb = nn.Embedding(num_users, d, sparse=self.config.sparse_grad)
        self.item_emb = nn.Embedding(num_items, d, sparse=self.config.sparse_grad)
        self.user_fusion = user_fusion
        self.reset_parameters()

    def _user(self, users: Tensor) -> Tensor:
        u = self.user_emb(users)
        return u if self.user_fusion is None else u + self.user_fusion(users)

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        u = self._user(batch["users"])
        p = self.item_emb(batch["pos"])
        n = self.item_emb(batch["neg"])
        out = {"bpr": -F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean()}
        if self.config.reg_weight:
            out["reg"] = self.config.reg_weight * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / u.shape[0]
        return out | knowledge_penalty(self.user_fusion, batch["users"])

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        return torch.einsum("bd,bcd->bc", self._user(users), self.item_emb(items))

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self._user(users) @ self.item_emb.weight.t()

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self._user(users)

    def item_embeddings(self) -> Tensor:
        return self.item_emb.weight

    def score_decomposition(self) -> dict:
        """The score is the dot product of the written-back user and item vectors."""
        return {"kind": "dot"}
