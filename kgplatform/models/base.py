"""The one small contract every recommender follows (after RecBole's ``AbstractRecommender``).

A model takes plain sizes, tensors and a typed config — never a dataset object — and implements:

* ``loss(batch) -> dict[str, Tensor]``: named losses for one training batch (the Trainer sums them and logs
  each); the batch layout is the one produced by the model's ``sampler`` (see
  :mod:`kgplatform.train.samplers`).
* ``score(users, items, seq=None) -> Tensor``: ``[B, C]`` scores of ``items [B, C]`` for ``users [B]``.
* ``full_scores(users, seq=None) -> Tensor``: ``[B, num_items]`` scores of every item.
* ``user_embeddings(users, seq=None)`` / ``item_embeddings()``: the learned vectors written back to the
  graph (``None`` where a model has none).

Sequential models (SASRec, GRU4Rec, SR-GNN) set ``needs_sequence = True`` and ``max_seq_len``; the caller
then passes ``seq``: the last ``max_seq_len`` history items, right-padded with ``-1``
(:data:`kgplatform.data.split.PAD`).
A model that also reads what is known about *the prefix itself* (LLM4SBR's session intents, inferred per
prefix) sets ``needs_prefix_end = True``; the caller then passes ``prefix_end`` ``[B]`` too: the position of the
target in the user's sequence (the number of history items; for serving after the test item, the sequence's
length), see :func:`prefix_kwargs`.
``prepare_eval()`` is called (under ``no_grad``, in eval mode) before scoring, to cache anything that does
not depend on the user batch (e.g. propagated graph embeddings); ``train()`` drops that cache.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from kgplatform.nn.user_features import knowledge_penalty


class Recommender(nn.Module):
    """Base class; see the module docstring for the contract."""

    #: which training sampler feeds ``loss``: ``"pairs"`` (user, pos, neg), ``"sequences"``
    #: (windows, a target per position), ``"prefixes"`` (a prefix and its target per row) or ``"none"``.
    sampler: ClassVar[str] = "pairs"
    needs_sequence: ClassVar[bool] = False
    needs_prefix_end: ClassVar[bool] = False
    max_seq_len: int = 0

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        self.num_users = num_users
        self.num_items = num_items

    # ---- training
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    # ---- scoring
    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def prepare_eval(self) -> None:
        """Cache batch-independent state before scoring (default: nothing)."""

    def train(self, mode: bool = True):
        if mode:
            self._drop_cache()
        return super().train(mode)

    def _drop_cache(self) -> None:
        """Forget what ``prepare_eval`` cached."""

    # ---- write-back
    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor | None:
        return None

    def item_embeddings(self) -> Tensor | None:
        return None

    def score_decomposition(self) -> dict | None:
        """What the graph needs to recompute this model's score from written-back vectors and split it into
        terms (``kgp explain``), or ``None`` where the score is not a function of those vectors (sequential
        models, POP). ``{"kind": "dot"}``: the score is the dot product of the stored user and item vectors;
        IKGR returns ``"ikgr"`` with its λ, intent vectors and intent sets (:meth:`IKGR.score_decomposition`)."""
        return None

    # ---- post-training tuning on validation (e.g. IKGR's lambda)
    def eval_grid(self) -> dict[str, list[float]]:
        """Inference-time parameters the Trainer grid-searches on validation after training."""
        return {}

    def set_eval_param(self, name: str, value: float) -> None:
        raise KeyError(name)

    def eval_params(self) -> dict[str, float]:
        return {}


def prefix_kwargs(model: nn.Module, prefix_end: Tensor) -> dict[str, Tensor]:
    """``{"prefix_end": prefix_end}`` for a model that reads it (``needs_prefix_end``), else ``{}``: the extra
    keyword of ``score`` / ``full_scores`` / ``user_embeddings``."""
    return {"prefix_end": prefix_end} if getattr(model, "needs_prefix_end", False) else {}


def device_of(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


def sequence_ce(logits: Tensor, target: Tensor, norm: Tensor | None) -> Tensor:
    """Cross-entropy summed over the batch's targets and divided by ``norm`` (the sampler's per-epoch
    constant: every target weighs the same); the mean over the batch's targets when ``norm`` is ``None``."""
    import torch.nn.functional as F

    if norm is None:
        return F.cross_entropy(logits, target)
    return F.cross_entropy(logits, target, reduction="sum") / norm


class NextItemRecommender(Recommender):
    r"""Shared part of the next-item models (SASRec, GRU4Rec): a subclass provides ``encode(seq) -> [B, L, d]``
    (causal: position :math:`t` sees :math:`i_{\le t}` only) and an ``item_emb`` table whose last row is
    padding. Scores are :math:`s(u, i) = \mathbf{h}_t^\top \mathbf{e}_i` with :math:`\mathbf{h}_t` the output at
    the last real position; the loss is :func:`sequence_ce` over every target position of the batch."""

    sampler: ClassVar[str] = "sequences"
    needs_sequence: ClassVar[bool] = True

    def encode(self, seq: Tensor) -> Tensor:
        raise NotImplementedError

    def last_hidden(self, seq: Tensor) -> Tensor:
        """Output at each sequence's last real position, ``[B, d]``."""
        h = self.encode(seq)
        last = (seq >= 0).sum(1).clamp(min=1) - 1
        return h[torch.arange(seq.shape[0], device=seq.device), last]

    def with_user_term(self, h: Tensor, users: Tensor | None) -> Tensor:
        """``h`` (``[B, d]`` or ``[B, L, d]``) plus the model's user feature term (a ``user_fusion`` module,
        see :class:`~kgplatform.nn.user_features.UserFeatureFusion`) when it has one and users are known."""
        fusion = getattr(self, "user_fusion", None)
        if fusion is None or users is None:
            return h
        t = fusion(users)
        return h + (t[:, None] if h.dim() == 3 else t)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        h = self.with_user_term(self.encode(batch["seq"]), batch.get("users"))
        tgt = batch["target"]
        m = tgt >= 0
        logits = h[m] @ self.item_emb.weight[: self.num_items].t()
        return {"ce": sequence_ce(logits, tgt[m], batch.get("norm"))} | knowledge_penalty(
            getattr(self, "user_fusion", None), batch.get("users"))

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        return torch.einsum("bd,bcd->bc", self.with_user_term(self.last_hidden(seq), users), self.item_emb(items))

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self.with_user_term(self.last_hidden(seq), users) @ self.item_emb.weight[: self.num_items].t()

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor | None:
        return None if seq is None else self.with_user_term(self.last_hidden(seq), users)

    def item_embeddings(self) -> Tensor:
        return self.item_emb.weight[: self.num_items]
