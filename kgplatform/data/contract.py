"""The leakage boundary: the training view of a dataset, and the check every training-side builder makes.

A model, a sampler, a popularity count, a graph for message passing, or a text an LLM reads about a user
must see only *training* interactions. :func:`training_view` is the one place where a full
:class:`~kgplatform.data.recdata.RecData` (what the graph holds) becomes a ``role="train"`` RecData: every
user's sequence is cut to its training prefix (per :func:`~kgplatform.data.split.leave_one_out`), with the
timestamps and session ordinals cut the same way. Item-side knowledge (KG triples, item intents, text
vectors) does not depend on who consumed what and is kept; user-profile intents are kept too (they come from
profile text, never from interactions — see the warning in :mod:`kgplatform.data.recdata`).

Builders that produce training input call :func:`require_training`, so handing them the full data is an
error rather than a silent leak.
"""
from __future__ import annotations

import dataclasses

import torch

from kgplatform.data.recdata import TRAIN_ROLE, RecData
from kgplatform.data.split import Split, leave_one_out
from kgplatform.errors import TrainingError


class LeakageError(TrainingError):
    """Validation/test interactions would reach something a model trains on."""


def training_view(data: RecData, split: Split | None = None) -> RecData:
    """``data`` with every user's sequence cut to its training prefix (``role="train"``).

    Args:
        data: the full dataset (``role="full"``).
        split: its leave-one-out split (computed when omitted); must come from ``data``.
    """
    if data.is_training_view:
        return data
    split = split or leave_one_out(data)
    if split.num_users != data.num_users or split.seq_items.numel() != data.seq_items.numel():
        raise TrainingError("training_view: the split does not belong to this data")
    keep = split.train_mask()
    indptr = torch.zeros(data.num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(split.train_len, 0)
    return dataclasses.replace(
        data,
        seq_indptr=indptr,
        seq_items=data.seq_items[keep].clone(),
        seq_ts=data.seq_ts[keep].clone() if data.seq_ts is not None else None,
        seq_session=data.seq_session[keep].clone() if data.seq_session is not None else None,
        seq_behavior=data.seq_behavior[keep].clone() if data.seq_behavior is not None else None,
        role=TRAIN_ROLE,
    )


def require_training(data: RecData, what: str) -> RecData:
    """Return ``data`` if it is a training view; raise :class:`LeakageError` otherwise."""
    if not isinstance(data, RecData):
        raise TrainingError(f"{what}: expected a RecData training view, got {type(data).__name__}")
    if not data.is_training_view:
        raise LeakageError(
            f"{what}: refusing to build from the full data (role={data.role!r}): it holds validation and "
            "test interactions",
            hint="pass kgplatform.data.training_view(data, split)",
        )
    return data


def train_pairs(train: RecData) -> tuple[torch.Tensor, torch.Tensor]:
    """``(users, items)`` of every interaction of a training view, in per-user order."""
    require_training(train, "train_pairs")
    return train.interaction_users(), train.seq_items


def item_counts(train: RecData) -> torch.Tensor:
    """Training interactions per item (popularity from the training split only)."""
    require_training(train, "item_counts")
    return torch.bincount(train.seq_items, minlength=train.num_items)
