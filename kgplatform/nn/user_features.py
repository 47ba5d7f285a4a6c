"""Fusing a fixed per-user feature vector (e.g. the embedded LLM-fused knowledge) into a learned user vector."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class UserFeatureFusion(nn.Module):
    r"""The knowledge term added to a model's user representation (heterogeneous knowledge fusion, §3 "as
    features").

    .. math::
        \tilde{\mathbf{e}}_u = \mathbf{e}_u + m_u\,\mathbf{W}\mathbf{k}_u + (1 - m_u)\,\mathbf{f}

    where :math:`\mathbf{k}_u` is the user's fixed feature vector (the text embedding of the knowledge the LLM
    fused from the user's *training* behaviours), :math:`m_u \in \{0, 1\}` says whether the user has one,
    :math:`\mathbf{W}` is a learned projection to the model's size and :math:`\mathbf{f}` a learned fallback
    vector for users without features. :math:`\mathbf{W}` and :math:`\mathbf{f}` start at zero, so training
    starts from the plain model and moves away from it only as far as the features help the loss.

    This module returns the added term :math:`m_u \mathbf{W}\mathbf{k}_u + (1 - m_u)\mathbf{f}`; the model adds
    it where its user representation is formed (BPR-MF and LightGCN: the layer-0 user vector; SASRec: the
    session representation :math:`\mathbf{h}_t`).

    Args:
        features (Tensor): ``[num_users, f]`` feature vectors (rows of users without features are ignored).
        mask (Tensor): ``[num_users]`` bool, ``True`` where the user has a feature vector.
        out_dim (int): the model's user vector size.

    Shapes:
        - **forward**: users ``[B]`` (or ``None`` for all users) → ``[B, out_dim]``
    """

    def __init__(self, features: Tensor, mask: Tensor, out_dim: int) -> None:
        super().__init__()
        if features.dim() != 2 or mask.shape != (features.shape[0],):
            raise ValueError(f"features [U, f] and mask [U] expected, got {tuple(features.shape)} and "
                             f"{tuple(mask.shape)}")
        feats = torch.where(mask[:, None], features.float(), torch.zeros((), dtype=torch.float32))
        self.register_buffer("features", feats.contiguous(), persistent=False)
        self.register_buffer("mask", mask.bool().contiguous(), persistent=False)
        self.proj = nn.Linear(features.shape[1], out_dim, bias=False)
        self.fallback = nn.Parameter(torch.zeros(out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.fallback)

    @property
    def coverage(self) -> float:
        """Share of users with a feature vector."""
        return float(self.mask.float().mean()) if self.mask.numel() else 0.0

    def forward(self, users: Tensor | None = None) -> Tensor:
        feats = self.features if users is None else self.features[users]
        has = (self.mask if users is None else self.mask[users])[:, None]
        return torch.where(has, self.proj(feats), self.fallback)


USER_FEATURES = ("none", "knowledge")


def user_feature_fusion(train, kind: str, out_dim: int, model: str) -> UserFeatureFusion | None:
    """The fusion module for ``kind`` (``"none"`` → ``None``) from a training view's feature matrices;
    :class:`~kgplatform.errors.TrainingError` when the data carries none."""
    from kgplatform.errors import TrainingError

    if kind == "none":
        return None
    if kind == "knowledge":
        if train.user_knowledge_emb is None or train.user_knowledge_mask is None \
                or not bool(train.user_knowledge_mask.any()):
            raise TrainingError(f"{model}: user_features=knowledge, but {train.dataset} has no embedded fused "
                                f"knowledge", hint=f"run kgp extract --round knowledge -d {train.dataset} first")
        return UserFeatureFusion(train.user_knowledge_emb, train.user_knowledge_mask, out_dim)
    raise TrainingError(f"{model}: unknown user_features {kind!r}", hint="one of: " + ", ".join(USER_FEATURES))
