"""Training batch samplers: vectorised, seeded, CPU-side (the Trainer moves batches to the device).

* :class:`PairSampler` — ``{"users", "pos", "neg"}``: every training interaction once per epoch in random
  order, each with one uniform negative the user has not interacted with in training.
* :class:`SequenceSampler` — ``{"seq", "target"}``: each user's training sequence cut into windows of at
  most ``max_len`` (input, next item) steps, right-padded with ``-1``; windows of similar length are
  batched together so short sequences are not padded to ``max_len``.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from kgplatform.eval.split import PAD, Split


class PairSampler:
    def __init__(self, split: Split, batch_size: int, generator: torch.Generator) -> None:
        self.users, self.items = split.train_pairs()
        self.num_items = split.num_items
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
    def __init__(self, split: Split, max_len: int, batch_size: int, generator: torch.Generator) -> None:
        indptr, items = split.train_csr()
        self.items = items
        n_tgt = (indptr[1:] - indptr[:-1] - 1).clamp(min=0)  # (input, next) steps per user
        n_win = (n_tgt + max_len - 1) // max_len
        users = torch.repeat_interleave(torch.arange(split.num_users), n_win)
        j = torch.arange(users.numel()) - torch.repeat_interleave(torch.cumsum(n_win, 0) - n_win, n_win)
        end = n_tgt[users] - j * max_len  # exclusive end of the window's steps
        start = (end - max_len).clamp(min=0)
        self.win_start = indptr[users] + start  # flat index of the first input item
        self.win_len = end - start
        self.users = users
        self.batch_size = batch_size
        self.gen = generator

    def __len__(self) -> int:
        return (self.win_len.numel() + self.batch_size - 1) // self.batch_size

    @property
    def num_targets(self) -> int:
        return int(self.win_len.sum())

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = self.win_len.numel()
        perm = torch.randperm(n, generator=self.gen)
        mega = self.batch_size * 32
        batches = []
        for chunk in perm.split(mega):  # sort by length inside mega-batches (bucketing)
            chunk = chunk[torch.argsort(self.win_len[chunk], descending=True, stable=True)]
            batches.extend(chunk.split(self.batch_size))
        for bi in torch.randperm(len(batches), generator=self.gen).tolist():
            idx = batches[bi]
            lens = self.win_len[idx]
            L = int(lens.max())
            col = torch.arange(L)
            valid = col[None, :] < lens[:, None]
            pos = self.win_start[idx][:, None] + col[None, :]
            pos = torch.where(valid, pos, torch.zeros_like(pos))
            seq = torch.where(valid, self.items[pos], torch.full_like(pos, PAD))
            tgt = torch.where(valid, self.items[(pos + 1).clamp(max=self.items.numel() - 1)], torch.full_like(pos, PAD))
            yield {"users": self.users[idx], "seq": seq, "target": tgt}
