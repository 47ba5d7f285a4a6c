"""POP: rank items by their number of training interactions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from kgplatform.models.base import Recommender
from kgplatform.models.options import check_choice, check_int


@dataclass
class POPConfig:
    """Args:
        count: ``"interactions"`` counts training interactions (correct). ``"recbole"`` reproduces RecBole
            1.2.1's ``Pop``, which — because ``item_cnt[item] += 1`` ignores repeated indices within a batch —
            counts the number of *training batches* an item (positive or sampled negative) appears in
            (RecBole issue #1844, PR #2199). For comparing with published RecBole Pop numbers only.
        recbole_batch_size: RecBole's ``train_batch_size`` (rows per batch, positives + negatives).
        recbole_neg: negatives per positive in RecBole's pointwise training batches (default 1).
    """

    count: Literal["interactions", "recbole"] = "interactions"
    recbole_batch_size: int = 2048
    recbole_neg: int = 1

    def validate(self) -> POPConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        check_choice(self, "count", ("interactions", "recbole"))
        check_int(self, "recbole_batch_size", 1)
        check_int(self, "recbole_neg", 0)
        return self


class POP(Recommender):
    r"""Popularity baseline: :math:`s(u, i) = c_i`, the training interaction count of item :math:`i`.

    Args:
        num_users (int): number of users (unused, kept for the shared contract).
        num_items (int): number of items.
        counts (torch.Tensor): ``[num_items]`` popularity scores.

    Shapes:
        - **score**: users ``[B]``, items ``[B, C]`` → ``[B, C]``
        - **full_scores**: users ``[B]`` → ``[B, num_items]``
    """

    sampler = "none"

    def __init__(self, num_users: int, num_items: int, counts: Tensor) -> None:
        super().__init__(num_users, num_items)
        self.register_buffer("counts", counts.to(torch.float32).clone())

    def loss(self, batch):  # nothing to learn
        return {}

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        return self.counts[items]

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self.counts.unsqueeze(0).expand(users.numel(), -1).clone()


def recbole_batch_counts(
    users: Tensor,
    items: Tensor,
    num_items: int,
    *,
    batch_size: int = 2048,
    neg: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Emulate RecBole 1.2.1 ``Pop.item_cnt`` after its single training epoch.

    Training interactions are shuffled and cut into steps of ``batch_size // (1 + neg)`` positives; each
    positive gets ``neg`` uniform negatives not among the user's training items; an item's count goes up
    by one for every batch it appears in, however often.
    """
    gen = generator or torch.Generator().manual_seed(0)
    n = users.numel()
    perm = torch.randperm(n, generator=gen)
    u, i = users[perm], items[perm]
    keys = torch.unique(users * num_items + items)
    negs = []
    for _ in range(neg):
        cand = torch.randint(num_items, (n,), generator=gen)
        for _ in range(100):
            bad = torch.isin(u * num_items + cand, keys)
            if not bool(bad.any()):
                break
            cand[bad] = torch.randint(num_items, (int(bad.sum()),), generator=gen)
        negs.append(cand)
    step = max(batch_size // (1 + neg), 1)
    batch_of = torch.arange(n) // step
    all_items = torch.cat([i] + negs)
    all_batches = batch_of.repeat(1 + neg)
    present = torch.unique(all_batches * num_items + all_items) % num_items
    return torch.bincount(present, minlength=num_items).to(torch.float32)
