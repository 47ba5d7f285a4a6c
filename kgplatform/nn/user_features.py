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
    vector for users without features (held at zero with ``fallback=False``). :math:`\mathbf{W}` and
    :math:`\mathbf{f}` start at zero, without drawing random numbers, so training starts from the plain model's
    exact weights and moves away from it only as far as the features help the loss.

    This module returns the added term :math:`m_u \mathbf{W}\mathbf{k}_u + (1 - m_u)\mathbf{f}`; the model adds
    it where its user representation is formed (BPR-MF and LightGCN: the layer-0 user vector; SASRec: the
    session representation :math:`\mathbf{h}_t`).

    Each :math:`\mathbf{k}_u` is unique, so :math:`\mathbf{W}\mathbf{k}_u` can act as a second free vector
    for the users who have knowledge. Two optional regularisers limit that (both off by default):

    .. math::
        \mathcal{L}_{\text{knowledge}} = \frac{\lambda_k}{|B|} \sum_{u \in B} m_u \lVert \mathbf{W}\mathbf{k}_u
        \rVert^2

    over the step's users (:meth:`penalty`, added to the model's loss by :func:`knowledge_penalty`), and
    *knowledge dropout*: while training, each user's knowledge term is dropped (zeroed) with probability
    :math:`p` and the kept ones scaled by :math:`1/(1-p)`, so the model cannot lean on it for any one user.

    Args:
        features (Tensor): ``[num_users, f]`` feature vectors (rows of users without features are ignored).
        mask (Tensor): ``[num_users]`` bool, ``True`` where the user has a feature vector.
        out_dim (int): the model's user vector size.
        reg (float): :math:`\lambda_k`, the L2 weight of the knowledge term (0 = none).
        dropout (float): :math:`p`, the per-user knowledge dropout while training (0 = none).
        fallback (bool): learn :math:`\mathbf{f}`; ``False`` keeps it at zero, so users without features get
            exactly the plain model's vector (a learned :math:`\mathbf{f}` is one more vector shared by all of
            them, which changes their training too).
        knowledge (bool): use the features; ``False`` holds :math:`\mathbf{W}` at zero, so the module is only
            the fallback :math:`(1 - m_u)\,\mathbf{f}` for the same users: the control that separates what the
            features add from what the shared fallback vector does (``user_features=fallback``).

    Shapes:
        - **forward**: users ``[B]`` (or ``None`` for all users) → ``[B, out_dim]``
    """

    def __init__(self, features: Tensor, mask: Tensor, out_dim: int, reg: float = 0.0,
                 dropout: float = 0.0, fallback: bool = True, knowledge: bool = True) -> None:
        super().__init__()
        if features.dim() != 2 or mask.shape != (features.shape[0],):
            raise ValueError(f"features [U, f] and mask [U] expected, got {tuple(features.shape)} and "
                             f"{tuple(mask.shape)}")
        if reg < 0 or not 0 <= dropout < 1:
            raise ValueError(f"reg >= 0 and 0 <= dropout < 1 expected, got {reg} and {dropout}")
        self.reg = float(reg) if knowledge else 0.0
        self.dropout = float(dropout) if knowledge else 0.0
        self.use_knowledge = bool(knowledge)
        feats = torch.where(mask[:, None], features.float(), torch.zeros((), dtype=torch.float32))
        self.register_buffer("features", feats.contiguous(), persistent=False)
        self.register_buffer("mask", mask.bool().contiguous(), persistent=False)
        with torch.random.fork_rng(devices=[]):  # zeroed below: leave the global random stream as the plain
            self.proj = nn.Linear(features.shape[1], out_dim, bias=False)  # model would find it (same init)
        self.proj.weight.requires_grad_(self.use_knowledge)
        self.fallback = nn.Parameter(torch.zeros(out_dim), requires_grad=bool(fallback))
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
        if not self.use_knowledge:
            return torch.where(has, torch.zeros((), dtype=self.fallback.dtype, device=has.device), self.fallback)
        term = self.proj(feats)
        if self.training and self.dropout:
            keep = torch.rand(term.shape[0], 1, device=term.device) >= self.dropout
            term = term * keep / (1.0 - self.dropout)
        return torch.where(has, term, self.fallback)

    def penalty(self, users: Tensor) -> Tensor:
        r""":math:`\frac{1}{|B|}\sum_{u \in B} m_u \lVert \mathbf{W}\mathbf{k}_u \rVert^2` over ``users``
        (unweighted; :func:`knowledge_penalty` applies :math:`\lambda_k`)."""
        term = self.proj(self.features[users]) * self.mask[users, None]
        return term.pow(2).sum() / max(int(users.numel()), 1)


def knowledge_penalty(fusion: UserFeatureFusion | None, users: Tensor | None) -> dict[str, Tensor]:
    """``{"knowledge_reg": λ_k · penalty}`` for a model's loss dict, or ``{}`` without a fusion module, a
    weight, or the step's users."""
    if fusion is None or not fusion.reg or users is None:
        return {}
    return {"knowledge_reg": fusion.reg * fusion.penalty(users)}


#: ``user_features`` values: none; the fused knowledge (W·k_u, f for users without); ``fallback``: the control with
#: the same users and the same learned f, but W held at zero
USER_FEATURES = ("none", "knowledge", "fallback")

def user_feature_fusion(train, kind: str, out_dim: int, model: str, reg: float = 0.0,
                        dropout: float = 0.0, fallback: bool = True) -> UserFeatureFusion | None:
    """The fusion module for ``kind`` (``"none"`` → ``None``; ``"fallback"``: the knowledge users' mask with the
    knowledge term held at zero) from a training view's feature matrices, with the knowledge term's L2 weight
    ``reg``, per-user dropout ``dropout`` and a learned or zero ``fallback``;
    :class:`~kgplatform.errors.TrainingError` when the data carries none."""
    from kgplatform.errors import TrainingError

    if kind == "none":
        return None
    if kind in ("knowledge", "fallback"):
        if train.user_knowledge_emb is None or train.user_knowledge_mask is None \
                or not bool(train.user_knowledge_mask.any()):
            raise TrainingError(f"{model}: user_features={kind}, but {train.dataset} has no embedded fused "
                                f"knowledge", hint=f"run kgp extract --round knowledge -d {train.dataset} first")
        return UserFeatureFusion(train.user_knowledge_emb, train.user_knowledge_mask, out_dim, reg, dropout,
                                 fallback, knowledge=kind == "knowledge")
    raise TrainingError(f"{model}: unknown user_features {kind!r}", hint="one of: " + ", ".join(USER_FEATURES))
