"""Prefix → next-item samples for sequential and session-based models, from a training view only.

* :func:`user_samples`: every position ``t >= 1`` of each user's training sequence gives the sample
  (last ``max_len`` items before ``t`` → item ``t``).
* :func:`session_samples`: the same inside graph ``Session`` boundaries: the prefix is cut at the start of
  the target's session, and a session's first item is not a target (it has no in-session prefix).

Both return :class:`Samples` with right-padded prefixes (:data:`~kgplatform.data.split.PAD`), so every
target appears exactly once with its full history window (no cold restart at window edges). Evaluation-time
prefixes come from :meth:`Split.history_sequences` / :meth:`Split.session_history` instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from kgplatform.data.contract import require_training
from kgplatform.data.recdata import RecData
from kgplatform.data.split import padded_window


@dataclass(frozen=True)
class Samples:
    """``prefix [N, L]`` (right-padded), ``length [N]``, ``target [N]``, ``user [N]``, ``end [N]`` (flat index of
    the target in the training view's ``seq_items``)."""

    prefix: Tensor
    length: Tensor
    target: Tensor
    user: Tensor
    end: Tensor

    def __len__(self) -> int:
        return int(self.target.numel())


def _gather(items: Tensor, end: Tensor, take: Tensor) -> Tensor:
    return padded_window(items, end - take, take)


def _targets(train: RecData) -> tuple[Tensor, Tensor, Tensor]:
    """Flat index, user and in-sequence position of every interaction with at least one predecessor."""
    users = train.interaction_users()
    pos = torch.arange(train.num_interactions) - train.seq_indptr[:-1][users]
    keep = pos >= 1
    return torch.nonzero(keep).view(-1), users[keep], pos[keep]


def user_prefixes(train: RecData, max_len: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(end, take, user)`` of every (prefix → next) sample over whole user sequences, without materialising
    the prefixes: the target is ``seq_items[end]``, its prefix ``seq_items[end - take : end]``."""
    require_training(train, "user_prefixes")
    end, user, pos = _targets(train)
    return end, pos.clamp(max=max_len), user


def user_samples(train: RecData, max_len: int) -> Samples:
    """(prefix → next) over whole user sequences (see the module docstring)."""
    require_training(train, "user_samples")
    end, take, user = user_prefixes(train, max_len)
    return Samples(_gather(train.seq_items, end, take), take, train.seq_items[end], user, end)


def session_samples(train: RecData, max_len: int) -> Samples:
    """(prefix → next) inside sessions; without session boundaries a user's sequence is one session."""
    require_training(train, "session_samples")
    if train.seq_session is None:
        return user_samples(train, max_len)
    end, user, pos = _targets(train)
    sess = train.seq_session
    same = sess[end] == sess[end - 1]
    end, user, pos = end[same], user[same], pos[same]
    # in-session position: distance to the first interaction of the session
    n = train.num_interactions
    all_users = train.interaction_users()
    key = all_users * (int(sess.max()) + 1) + sess
    starts = torch.ones(n, dtype=torch.bool)
    starts[1:] = key[1:] != key[:-1]
    start_idx = torch.cummax(torch.where(starts, torch.arange(n), torch.zeros(n, dtype=torch.long)), 0).values
    in_pos = end - start_idx[end]
    take = in_pos.clamp(max=max_len)
    return Samples(_gather(train.seq_items, end, take), take, train.seq_items[end], user, end)
