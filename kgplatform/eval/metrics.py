r"""Ranking metrics for one held-out item per user, vectorised over users.

Everything is computed from two integers per user: ``n_greater`` (candidates scored strictly above the
target) and ``n_ties`` (other candidates scored exactly like it). The target's rank is then
``n_greater + 1`` when ties are broken in its favour (``optimistic``), ``n_greater + n_ties + 1``
(``pessimistic``), or uniform over that range (``average``, the default): the metric is its *expected value*
under random tie-breaking, computed exactly. RecBole breaks ties with whatever order ``torch.topk`` returns
(unspecified; effectively arbitrary), so ``average`` is the unbiased counterpart of its numbers — and a
constant scorer scores like random instead of perfectly.

With a single relevant item, for rank :math:`r`:

.. math::
    \mathrm{HR@k} = [r \le k], \qquad
    \mathrm{NDCG@k} = \frac{[r \le k]}{\log_2(r + 1)}, \qquad
    \mathrm{MRR} = \frac{1}{r}

``MRR`` is not truncated; ``MRR@k`` is (``[r <= k] / r``, RecBole's MRR@k). Under ``average`` with :math:`g` = ``n_greater`` and :math:`e` = ``n_ties``,
:math:`r \sim \mathcal{U}\{g+1, \dots, g+e+1\}` and each metric is the mean of its value over that range,
obtained from cumulative sums of the discounts.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from kgplatform.errors import TrainingError

Ties = Literal["average", "optimistic", "pessimistic"]

DEFAULT_HR_KS = (1, 5, 10, 20)
DEFAULT_NDCG_KS = (5, 10, 20)
DEFAULT_MRR_KS = (10, 20)


def rank_counts(scores: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(n_greater, n_ties)`` of the target column in each row.

    Args:
        scores: ``[B, C]`` candidate scores; excluded candidates must be ``-inf``.
        target: ``[B]`` column index of the target in each row.
    """
    if torch.isnan(scores).any():
        raise TrainingError("model produced NaN scores", hint="the training diverged; lower the lr")
    t = scores.gather(1, target.view(-1, 1))
    if bool(torch.isneginf(t).any()):
        raise TrainingError("a target item was masked (score -inf)")
    n_greater = torch.count_nonzero(scores > t, dim=1)
    n_ties = torch.count_nonzero(scores == t, dim=1) - 1
    return n_greater, n_ties


def _cum_table(kind: str, n: int, device, k: int | None = None) -> Tensor:
    r = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    if kind == "ndcg":
        v = 1.0 / torch.log2(r + 1.0)
        if k is not None:
            v = torch.where(r <= k, v, torch.zeros_like(v))
    elif kind == "rr":
        v = 1.0 / r
    else:
        raise ValueError(kind)
    return torch.cat([torch.zeros(1, dtype=torch.float64, device=device), torch.cumsum(v, 0)])


def rank_metrics(
    n_greater: Tensor,
    n_ties: Tensor,
    *,
    hr_ks: Sequence[int] = DEFAULT_HR_KS,
    ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS,
    mrr: bool = True,
    mrr_ks: Sequence[int] = DEFAULT_MRR_KS,
    ties: Ties = "average",
) -> dict[str, Tensor]:
    """Per-user metric values (float64 ``[B]`` each), keyed ``HR@k``, ``NDCG@k``, ``MRR``, ``MRR@k``."""
    g = n_greater.to(torch.float64)
    e = n_ties.to(torch.float64)
    if ties == "optimistic":
        e = torch.zeros_like(e)
    elif ties == "pessimistic":
        g = g + e
        e = torch.zeros_like(e)
    elif ties != "average":
        raise TrainingError(f"unknown tie policy {ties!r}")
    lo = g.long()  # ranks lo+1 .. hi
    hi = (g + e + 1).long()
    width = e + 1
    out: dict[str, Tensor] = {}
    for k in hr_ks:
        out[f"HR@{k}"] = torch.minimum(torch.clamp(k - g, min=0), width) / width
    n_max = int(hi.max()) if hi.numel() else 1
    for k in ndcg_ks:
        tab = _cum_table("ndcg", min(n_max, k), n_greater.device, k)
        cap = tab.numel() - 1
        out[f"NDCG@{k}"] = (tab[hi.clamp(max=cap)] - tab[lo.clamp(max=cap)]) / width
    if mrr:
        tab = _cum_table("rr", max(n_max, 1), n_greater.device)
        out["MRR"] = (tab[hi] - tab[lo]) / width
        for k in mrr_ks:
            tab = _cum_table("rr", min(max(n_max, 1), k), n_greater.device)
            cap = tab.numel() - 1
            out[f"MRR@{k}"] = (tab[hi.clamp(max=cap)] - tab[lo.clamp(max=cap)]) / width
    return out


def metric_names(hr_ks: Sequence[int] = DEFAULT_HR_KS, ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS,
                 mrr_ks: Sequence[int] = DEFAULT_MRR_KS) -> list[str]:
    return [f"HR@{k}" for k in hr_ks] + [f"NDCG@{k}" for k in ndcg_ks] + ["MRR"] + [f"MRR@{k}" for k in mrr_ks]
