"""Training batch samplers: vectorised, seeded, CPU-side (the Trainer moves batches to the device).

* :class:`PairSampler` — ``{"users", "pos", "neg"}``: every training interaction once per epoch in random
  order, each with one uniform negative the user has not interacted with in training.
* :class:`SequenceSampler` — ``{"users", "seq", "target", "norm"}``: every (history → next item) target of
  every training sequence exactly once per epoch, each seeing its last ``min(t, max_len)`` items (as
  RecBole's prefix augmentation), packed into windows of at most ``max_len`` inputs right-padded with
  ``-1``; ``norm`` is a per-epoch constant to divide summed per-target losses by, so every target weighs
  the same.
* :class:`PrefixSampler` — ``{"users", "seq", "target", "prefix_end", "norm"}`` with one row per target: every (history →
  next item) target of every training sequence exactly once per epoch, ``seq`` its last ``min(t, max_len)``
  items right-padded with ``-1``, ``target`` ``[B]`` (RecBole's prefix augmentation, one sample per row), for
  models whose session representation is not causal per position (SR-GNN builds a graph per prefix).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from kgplatform.data.contract import require_training, train_pairs
from kgplatform.data.recdata import RecData
from kgplatform.data.sequences import user_prefixes
from kgplatform.data.split import PAD, padded_window


class PairSampler:
    """Pairs of a training view (:func:`kgplatform.data.training_view`); see the module docstring."""

    def __init__(self, train: RecData, batch_size: int, generator: torch.Generator) -> None:
        self.users, self.items = train_pairs(train)
        self.num_items = train.num_items
        self.keys = torch.unique(self.users * self.num_items + self.items)  # sorted
        self.batch_size = batch_size
        self.gen = generator

    def __len__(self) -> int:
        return (self.users.numel() + self.batch_size - 1) // self.batch_size

    def _seen(self, users: Tensor, items: Tensor) -> Tensor:
        q = users * self.num_items + items
        pos = torch.searchsorted(self.keys, q).clamp(max=max(self.keys.numel() - 1, 0))
        return self.keys[pos] == q if self.keys.numel() else torch.zeros_like(q, dtype=torch.bool)

    def sample_negatives(self, users: Tensor) -> Tensor:
        neg = torch.randint(self.num_items, users.shape, generator=self.gen)
        for _ in range(50):
            bad = self._seen(users, neg)
            if not bool(bad.any()):
                break
            neg[bad] = torch.randint(self.num_items, (int(bad.sum()),), generator=self.gen)
        return neg

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        perm = torch.randperm(self.users.numel(), generator=self.gen)
        for idx in perm.split(self.batch_size):
            u, p = self.users[idx], self.items[idx]
            yield {"users": u, "pos": p, "neg": self.sample_negatives(u)}


class SequenceSampler:
    r"""Training windows of a training view's sequences (see the module docstring).

    A user with training sequence :math:`(i_0, \dots, i_{n-1})` has the :math:`n - 1` targets
    :math:`i_t` (:math:`t = 1 \dots n-1`), each with the history :math:`(i_{\max(0, t-L)}, \dots, i_{t-1})`,
    :math:`L` = ``max_len``. The windows are

    * a *head* window: inputs :math:`i_0 \dots i_{m-1}`, :math:`m = \min(n - 1, L)`, every position a target
      (position :math:`j` predicts :math:`i_{j+1}` from :math:`i_{\le j}`: exactly its history);
    * for a longer sequence, *tail* windows of exactly :math:`L` inputs ending at the newest target they
      hold; only their newest ``stride`` positions are targets, the older ones are context (``target = -1``).
      With ``stride = 1`` (the default) every tail target sees exactly its last :math:`L` items, as in
      RecBole's prefix augmentation; ``stride = s`` needs about :math:`s` times fewer tail windows and lets a
      tail target see between :math:`L - s + 1` and :math:`L` of its last items.

    So every target appears exactly once per epoch. Windows of similar length are batched together (inside
    shuffled groups of ``32 * batch_size``) so short sequences are not padded to :math:`L`. Each batch carries
    ``norm``, the epoch's mean number of targets per batch (a constant): a model that sums its per-target
    losses and divides by ``norm`` gives every target the same weight, and the epoch's mean batch loss is
    the mean per-target loss.

    Args:
        train: a training view (:func:`kgplatform.data.training_view`).
        max_len: :math:`L`, the model's ``max_seq_len``.
        batch_size: windows per batch.
        generator: the seeded generator for the shuffles.
        stride: targets per tail window (``1``: exact histories).

    Batches: ``users`` ``[B]``; ``seq`` ``[B, W]`` input items right-padded with ``-1``; ``target`` ``[B, W]``
    the next item at target positions, ``-1`` elsewhere; ``norm`` a 0-dim float tensor.
    """

    def __init__(
        self, train: RecData, max_len: int, batch_size: int, generator: torch.Generator, stride: int = 1
    ) -> None:
        require_training(train, "SequenceSampler")
        if max_len < 1 or batch_size < 1 or stride < 1:
            raise ValueError(f"max_len ({max_len}), batch_size ({batch_size}) and stride ({stride}) must be >= 1")
        stride = min(stride, max_len)
        indptr, items = train.seq_indptr, train.seq_items
        self.items = items
        self.max_len = max_len
        n_tgt = (indptr[1:] - indptr[:-1] - 1).clamp(min=0)  # targets (= input positions 0..T-1) per user
        # head windows: input positions [0, min(T, L)), every position a target
        head_users = torch.nonzero(n_tgt > 0).view(-1)
        head_len = n_tgt[head_users].clamp(max=max_len)
        # tail windows: input positions L..T-1 in chunks of `stride`; a chunk [c0, c1) sits at the end of the
        # window [c1 - L, c1), whose columns >= c0 - (c1 - L) are targets
        n_chunks = ((n_tgt - max_len).clamp(min=0) + stride - 1) // stride
        tail_users = torch.repeat_interleave(torch.arange(train.num_users), n_chunks)
        c = torch.arange(tail_users.numel()) - torch.repeat_interleave(torch.cumsum(n_chunks, 0) - n_chunks, n_chunks)
        c0 = max_len + c * stride
        c1 = torch.minimum(c0 + stride, n_tgt[tail_users])
        self.users = torch.cat([head_users, tail_users])
        self.win_start = indptr[self.users] + torch.cat([torch.zeros_like(head_users), c1 - max_len])
        self.win_len = torch.cat([head_len, torch.full_like(tail_users, max_len)])
        self.first_target = torch.cat([torch.zeros_like(head_users), c0 - (c1 - max_len)])  # first target column
        self.num_targets = int((self.win_len - self.first_target).sum())
        self.batch_size = batch_size
        self.gen = generator

    def __len__(self) -> int:
        return (self.win_len.numel() + self.batch_size - 1) // self.batch_size

    @property
    def norm(self) -> float:
        """Mean targets per batch over an epoch (the loss normaliser every batch carries)."""
        return self.num_targets / max(len(self), 1)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = self.win_len.numel()
        perm = torch.randperm(n, generator=self.gen)
        batches = []
        for chunk in perm.split(self.batch_size * 32):  # sort by length inside mega-batches (bucketing)
            chunk = chunk[torch.argsort(self.win_len[chunk], descending=True, stable=True)]
            batches.extend(chunk.split(self.batch_size))
        norm = torch.tensor(self.norm, dtype=torch.float32)
        for bi in torch.randperm(len(batches), generator=self.gen).tolist():
            idx = batches[bi]
            lens = self.win_len[idx]
            col = torch.arange(int(lens.max()))
            valid = col[None, :] < lens[:, None]
            is_tgt = valid & (col[None, :] >= self.first_target[idx][:, None])
            pos = torch.where(valid, self.win_start[idx][:, None] + col[None, :], 0)
            seq = torch.where(valid, self.items[pos], PAD)
            tgt = torch.where(is_tgt, self.items[torch.where(is_tgt, pos + 1, 0)], PAD)
            yield {"users": self.users[idx], "seq": seq, "target": tgt, "norm": norm}


class PrefixSampler:
    r"""One row per training target (see the module docstring).

    A user with training sequence :math:`(i_0, \dots, i_{n-1})` gives the :math:`n - 1` rows
    :math:`(i_{\max(0, t-L)}, \dots, i_{t-1}) \to i_t`, :math:`L` = ``max_len``; prefixes are cut per batch
    (nothing of size targets × L is kept). Rows of similar prefix length are batched together (inside
    shuffled groups of ``32 * batch_size``); every batch carries ``norm``, the epoch's mean rows per batch, so
    a loss summed over rows and divided by it weighs every target the same.

    Args:
        train: a training view (:func:`kgplatform.data.training_view`).
        max_len: :math:`L`, the model's ``max_seq_len``.
        batch_size: rows (targets) per batch.
        generator: the seeded generator for the shuffles.

    Batches: ``users`` ``[B]``; ``seq`` ``[B, W]`` prefixes right-padded with ``-1``; ``target`` ``[B]``;
    ``prefix_end`` ``[B]`` the target's position in its user's sequence (the prefix is the items before it, of
    which ``seq`` holds the last ``L``; the same position as in the full data, whose training items come first);
    ``norm`` a 0-dim float tensor.
    """

    def __init__(self, train: RecData, max_len: int, batch_size: int, generator: torch.Generator) -> None:
        require_training(train, "PrefixSampler")
        if max_len < 1 or batch_size < 1:
            raise ValueError(f"max_len ({max_len}) and batch_size ({batch_size}) must be >= 1")
        self.end, self.take, self.users = user_prefixes(train, max_len)
        self.prefix_end = self.end - train.seq_indptr[self.users]
        self.items = train.seq_items
        self.max_len = max_len
        self.batch_size = batch_size
        self.gen = generator

    def __len__(self) -> int:
        return (self.end.numel() + self.batch_size - 1) // self.batch_size

    @property
    def num_targets(self) -> int:
        return int(self.end.numel())

    @property
    def norm(self) -> float:
        """Mean rows per batch over an epoch (the loss normaliser every batch carries)."""
        return self.num_targets / max(len(self), 1)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        perm = torch.randperm(self.end.numel(), generator=self.gen)
        batches = []
        for chunk in perm.split(self.batch_size * 32):
            chunk = chunk[torch.argsort(self.take[chunk], descending=True, stable=True)]
            batches.extend(chunk.split(self.batch_size))
        norm = torch.tensor(self.norm, dtype=torch.float32)
        for bi in torch.randperm(len(batches), generator=self.gen).tolist():
            idx = batches[bi]
            end, take = self.end[idx], self.take[idx]
            yield {"users": self.users[idx], "seq": padded_window(self.items, end - take, take),
                   "target": self.items[end], "prefix_end": self.prefix_end[idx], "norm": norm}
