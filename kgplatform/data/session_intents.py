"""Session intents in the data contract: what ``kgp extract --round sessions`` stored (LLM4SBR's inference
representations), as index tensors a model can read.

A row is one (user, prefix_end, view): ``user`` and ``items`` are indices of the :class:`~kgplatform.data.RecData`
they belong to (its ``user_ids`` / ``item_ids``), ``prefix_end`` the position of the target in the user's full
sequence (the prefix is ``seq[:prefix_end]``), ``view`` an index into :data:`VIEWS`. ``items``/``weights`` are
right-padded with -1 / 0 to ``top_r`` columns; ``answer_emb`` (optional) holds the encoded raw answer of each row
(for the "no localisation" ablation). Prefixes without a row have no inference (a model uses a learned fallback
vector there).

Leakage: the row of any prefix — training, validation or test — was inferred from the items before its target only
(:mod:`kgplatform.session_intents` builds every prompt from ``seq[:prefix_end]``, and its tests check it), so the
rows are inputs of that prefix like the history itself. A training view keeps all rows (a model needs the
validation/test rows to score those prefixes); the training loss reads training prefixes only, because the
training samplers only yield training targets. :meth:`SessionIntents.training` selects those rows.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor

VIEWS = ("long", "short")
_SHIFT = 32  # key = user << 32 | prefix_end


@dataclass(frozen=True)
class SessionIntents:
    user: Tensor  # [N] long
    prefix_end: Tensor  # [N] long
    view: Tensor  # [N] long, index into VIEWS
    items: Tensor  # [N, R] long, -1 padded
    weights: Tensor  # [N, R] float, 0 padded
    texts: list[str] = field(default_factory=list)  # [N] the answers
    views: tuple[str, ...] = VIEWS
    answer_emb: Tensor | None = None  # [N, d] the encoded answers, when read with an encoder

    def __len__(self) -> int:
        return int(self.user.numel())

    def row_of(self) -> dict[tuple[int, int, str], int]:
        """``(user, prefix_end, view)`` → row."""
        return {(int(u), int(e), self.views[int(v)]): k
                for k, (u, e, v) in enumerate(zip(self.user, self.prefix_end, self.view))}

    def select(self, mask: Tensor) -> SessionIntents:
        idx = torch.nonzero(mask).view(-1)
        return SessionIntents(self.user[idx], self.prefix_end[idx], self.view[idx], self.items[idx],
                              self.weights[idx], [self.texts[i] for i in idx.tolist()], self.views,
                              None if self.answer_emb is None else self.answer_emb[idx])

    def training(self, train_len: Tensor) -> SessionIntents:
        """The rows of training prefixes only (targets that are training interactions)."""
        return self.select(self.prefix_end < train_len[self.user])

    def keys(self) -> Tensor:
        """``[N]`` the (user, prefix_end) key of every row (see :func:`prefix_keys`)."""
        return prefix_keys(self.user, self.prefix_end)

    def validate(self, num_users: int, num_items: int) -> None:
        """Shapes and index ranges; ``ValueError`` naming the first problem."""
        n = len(self)
        for name in ("prefix_end", "view"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"session_intents.{name} must be [{n}]")
        if self.items.dim() != 2 or self.items.shape[0] != n or self.weights.shape != self.items.shape:
            raise ValueError("session_intents.items and .weights must both be [N, R]")
        if n and (int(self.user.min()) < 0 or int(self.user.max()) >= num_users):
            raise ValueError("session_intents.user out of range")
        if n and int(self.prefix_end.min()) < 1:
            raise ValueError("session_intents.prefix_end must be >= 1 (a prefix holds at least one item)")
        if n and (int(self.view.min()) < 0 or int(self.view.max()) >= len(self.views)):
            raise ValueError("session_intents.view out of range")
        if self.items.numel() and (int(self.items.min()) < -1 or int(self.items.max()) >= num_items):
            raise ValueError("session_intents.items out of range")
        if self.answer_emb is not None and (self.answer_emb.dim() != 2 or self.answer_emb.shape[0] != n):
            raise ValueError(f"session_intents.answer_emb must be [{n}, d]")

    def digest(self) -> bytes:
        """SHA-256 of the rows (for :meth:`RecData.checksum`)."""
        h = hashlib.sha256()
        for t in (self.user, self.prefix_end, self.view, self.items, self.weights, self.answer_emb):
            if t is None:
                h.update(b"\x00none")
                continue
            a = t.detach().cpu().contiguous()
            h.update(str(a.dtype).encode() + str(tuple(a.shape)).encode() + a.numpy().tobytes())
        h.update("\x1f".join(self.views).encode())
        return h.digest()


def prefix_keys(users: Tensor, prefix_end: Tensor) -> Tensor:
    """One int64 key per (user, prefix_end) pair (``user << 32 | prefix_end``), sortable and searchable."""
    return (users.long() << _SHIFT) | prefix_end.long()


def split_prefix_keys(keys: Tensor) -> tuple[Tensor, Tensor]:
    """``(users, prefix_end)`` of keys made by :func:`prefix_keys`."""
    return keys >> _SHIFT, keys & ((1 << _SHIFT) - 1)


__all__ = ["SessionIntents", "VIEWS", "prefix_keys", "split_prefix_keys"]
