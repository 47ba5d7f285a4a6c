"""Leave-one-out split by sequence order.

Per user, in the order of their ``INTERACTED.pos``: the last interaction is the test target, the second-last
the validation target, the rest is training. This is RecBole's ``LS: valid_and_test`` with ``order: TO``
(``Dataset._split_index_by_leave_one_out``), including its treatment of short sequences:

=============  =========================  ==========
interactions   train                      held out
=============  =========================  ==========
``n >= 3``     first ``n - 2``            valid = ``n-2``-th, test = last
``n == 2``     the first                  test = last (no validation target)
``n == 1``     the only one               nothing (the user is never evaluated)
``n == 0``     nothing                    nothing
=============  =========================  ==========

The *history* of a target is every interaction before it in the sequence (for test: training items plus
the validation item). Full-ranking evaluation masks the history items except the target itself (RecBole
masks ``used_ids - positive_items``, so an item consumed again as the target is still ranked); sequential
models read the history as their input sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from kgplatform.errors import TrainingError

Phase = Literal["valid", "test"]
PAD = -1  #: padding value of :meth:`Split.history_sequences`


@dataclass(frozen=True)
class Split:
    """A leave-one-out split over a :class:`~kgplatform.data.recdata.RecData`'s sequences (indices only)."""

    num_users: int
    num_items: int
    seq_indptr: Tensor  # [U + 1] full sequences (train + held-out)
    seq_items: Tensor
    train_len: Tensor  # [U] number of leading items that are training interactions
    valid_users: Tensor  # users with a validation target
    test_users: Tensor  # users with a test target
    seq_session: Tensor | None = None  # [len(seq_items)] session ordinal within the user (optional)

    # ----------------------------------------------------------- train side
    @property
    def seq_len(self) -> Tensor:
        return self.seq_indptr[1:] - self.seq_indptr[:-1]

    def train_mask(self) -> Tensor:
        """Boolean over ``seq_items``: True for training interactions."""
        users = torch.repeat_interleave(torch.arange(self.num_users), self.seq_len)
        pos = torch.arange(self.seq_items.numel()) - self.seq_indptr[:-1][users]
        return pos < self.train_len[users]

    def train_pairs(self) -> tuple[Tensor, Tensor]:
        """``(users, items)`` of all training interactions, in per-user chronological order."""
        users = torch.repeat_interleave(torch.arange(self.num_users), self.seq_len)
        m = self.train_mask()
        return users[m], self.seq_items[m]

    def train_csr(self) -> tuple[Tensor, Tensor]:
        """Training sequences as CSR ``(indptr, items)``."""
        indptr = torch.zeros(self.num_users + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(self.train_len, 0)
        return indptr, self.seq_items[self.train_mask()]

    @property
    def num_train(self) -> int:
        return int(self.train_len.sum())

    def item_counts(self) -> Tensor:
        """Number of training interactions per item."""
        return torch.bincount(self.train_pairs()[1], minlength=self.num_items)

    # ------------------------------------------------------------ eval side
    def users(self, phase: Phase) -> Tensor:
        if phase == "valid":
            return self.valid_users
        if phase == "test":
            return self.test_users
        raise TrainingError(f"unknown phase {phase!r} (valid|test)")

    def history_len(self, phase: Phase, users: Tensor) -> Tensor:
        """Length of the history before the ``phase`` target of each user."""
        users = users.cpu()
        if phase == "valid":
            return self.train_len[users]
        return self.seq_len[users] - 1

    def targets(self, phase: Phase, users: Tensor | None = None) -> Tensor:
        """Target item of each user (default: all users of the phase)."""
        users = self.users(phase) if users is None else users.cpu()
        return self.seq_items[self.seq_indptr[users] + self.history_len(phase, users)]

    def history_coo(self, phase: Phase, users: Tensor) -> tuple[Tensor, Tensor]:
        """``(row, item)`` pairs of the history of ``users`` (row = position in ``users``), excluding
        occurrences of the target item itself. Used to mask full-ranking scores."""
        users = users.cpu()
        lens = self.history_len(phase, users)
        rows = torch.repeat_interleave(torch.arange(users.numel()), lens)
        starts = self.seq_indptr[users]
        offs = torch.arange(int(lens.sum())) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
        items = self.seq_items[starts[rows] + offs]
        tgt = self.targets(phase, users)
        keep = items != tgt[rows]
        return rows[keep], items[keep]

    def history_sequences(self, phase: Phase | None, users: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
        """The last ``max_len`` history items of each user, right-padded with :data:`PAD`.

        ``phase=None`` means the full sequence (for recommending after the test item). Returns
        ``(seq [B, L], length [B])`` with ``L = min(max_len, max length)`` (at least 1).
        """
        users = users.cpu()
        lens = self.seq_len[users] if phase is None else self.history_len(phase, users)
        take = lens.clamp(max=max_len)
        return padded_window(self.seq_items, self.seq_indptr[users] + lens - take, take), take


    def session_history(self, phase: Phase, users: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
        """The history items *of the target's session* (those before the target in the same graph
        ``Session``), last ``max_len`` of them, right-padded with :data:`PAD`; ``(seq [B, L], length [B])``.

        Without session boundaries (``seq_session is None``) the whole history is one session, as for
        Amazon data, and this equals :meth:`history_sequences`.
        """
        users = users.cpu()
        if self.seq_session is None:
            return self.history_sequences(phase, users, max_len)
        lens = self.history_len(phase, users)
        tpos = self.seq_indptr[users] + lens  # flat index of the target
        tsess = self.seq_session[tpos]
        # count of history items in the target's session: walk back while the session ordinal matches
        # (sessions are contiguous), vectorised over at most max_len steps
        take = torch.zeros_like(lens)
        alive = lens > 0
        for k in range(1, max_len + 1):
            idx = (tpos - k).clamp(min=0)
            ok = alive & (lens >= k) & (self.seq_session[idx] == tsess)
            take = take + ok.long()
            alive = ok
            if not bool(alive.any()):
                break
        return padded_window(self.seq_items, tpos - take, take), take


def padded_window(items: Tensor, start: Tensor, take: Tensor) -> Tensor:
    """``items[start[b] : start[b] + take[b]]`` for every row ``b``, right-padded with :data:`PAD` to the
    longest (at least 1 column): ``[B, max(take)]``."""
    L = max(int(take.max()) if take.numel() else 1, 1)
    col = torch.arange(L)
    idx = start[:, None] + col[None, :]
    valid = col[None, :] < take[:, None]
    idx = torch.where(valid, idx, torch.zeros_like(idx))
    return torch.where(valid, items[idx], torch.full_like(idx, PAD))


def leave_one_out(data) -> Split:
    """Split a :class:`~kgplatform.data.recdata.RecData` leave-one-out by sequence order (see module doc)."""
    if getattr(data, "role", "full") != "full":
        raise TrainingError("leave_one_out needs the full data, not a training view (it would split it again)")
    lens = data.seq_lengths
    n_hold = lens.clamp(max=3) - 1  # 0, 1 or 2 held-out targets
    n_hold = n_hold.clamp(min=0)
    train_len = lens - n_hold
    return Split(
        num_users=data.num_users,
        num_items=data.num_items,
        seq_indptr=data.seq_indptr.clone(),
        seq_items=data.seq_items.clone(),
        train_len=train_len,
        valid_users=torch.nonzero(n_hold >= 2).view(-1),
        test_users=torch.nonzero(n_hold >= 1).view(-1),
        seq_session=data.seq_session.clone() if getattr(data, "seq_session", None) is not None else None,
    )
