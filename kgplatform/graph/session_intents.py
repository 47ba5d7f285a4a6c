"""Session intents for the data contract: what ``kgp extract --round sessions`` stored, as index tensors a model
can read (LLM4SBR's inference representations: per prefix and view, the localised items and their weights).

A row is one (user, prefixEnd, view): ``user`` and ``items`` are indices of the :class:`~kgplatform.data.RecData`
the caller exported (its ``user_ids`` / ``item_ids``), ``prefix_end`` the position of the target in the user's
full sequence (the prefix is ``seq[:prefix_end]``), ``view`` an index into :data:`VIEWS`. ``items``/``weights``
are right-padded with -1 / 0 to ``top_r`` columns. Prefixes with no row have no inference (a model uses a
learned fallback vector there).

Leakage: a row of a validation or test prefix was inferred from items before its target only (see
:mod:`kgplatform.session_intents`); a training-side model should read training prefixes only
(``prefix_end < split.train_len[user]``), which :meth:`SessionIntents.training` selects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph

VIEWS = ("long", "short")


@dataclass(frozen=True)
class SessionIntents:
    user: Tensor  # [N] long
    prefix_end: Tensor  # [N] long
    view: Tensor  # [N] long, index into VIEWS
    items: Tensor  # [N, R] long, -1 padded
    weights: Tensor  # [N, R] float, 0 padded
    texts: list[str] = field(default_factory=list)  # [N] the answers
    views: tuple[str, ...] = VIEWS

    def __len__(self) -> int:
        return int(self.user.numel())

    def row_of(self) -> dict[tuple[int, int, str], int]:
        """``(user, prefix_end, view)`` → row."""
        return {(int(u), int(e), self.views[int(v)]): k
                for k, (u, e, v) in enumerate(zip(self.user, self.prefix_end, self.view))}

    def select(self, mask: Tensor) -> SessionIntents:
        idx = torch.nonzero(mask).view(-1)
        return SessionIntents(self.user[idx], self.prefix_end[idx], self.view[idx], self.items[idx],
                              self.weights[idx], [self.texts[i] for i in idx.tolist()], self.views)

    def training(self, train_len: Tensor) -> SessionIntents:
        """The rows of training prefixes only (targets that are training interactions)."""
        return self.select(self.prefix_end < train_len[self.user])


def read_session_intents(graph: Graph, dataset: str, user_ids: list[str], item_ids: list[str], *,
                         run: str | None = None) -> SessionIntents:
    """The stored session intents of ``dataset`` (of run ``run``, or the current ones), indexed like the
    RecData whose ``user_ids``/``item_ids`` are given; rows sorted by (user, prefix_end, view). Items or users
    the RecData does not know are left out."""
    users = {uid: k for k, uid in enumerate(user_ids)}
    items = {iid: k for k, iid in enumerate(item_ids)}
    rows: dict[tuple[int, int, int], list[tuple[int, int, float]]] = {}
    texts: dict[tuple[int, int, int], str] = {}
    for r in graph.read("sessions/read_inferred", dataset=dataset, run=run):
        u, i = users.get(r["user"]), items.get(r["item"])
        if u is None or i is None or r["view"] not in VIEWS:
            continue
        key = (u, int(r["prefixEnd"]), VIEWS.index(r["view"]))
        rows.setdefault(key, []).append((int(r["rank"]), i, float(r["weight"])))
        texts[key] = r["text"] or ""
    keys = sorted(rows)
    width = max((len(v) for v in rows.values()), default=0)
    it = torch.full((len(keys), width), -1, dtype=torch.long)
    wt = torch.zeros((len(keys), width), dtype=torch.float32)
    for k, key in enumerate(keys):
        for j, (_, i, w) in enumerate(sorted(rows[key])):
            it[k, j], wt[k, j] = i, w
    col = lambda n: torch.tensor([key[n] for key in keys], dtype=torch.long)  # noqa: E731
    return SessionIntents(col(0), col(1), col(2), it, wt, [texts[k] for k in keys])


__all__ = ["SessionIntents", "VIEWS", "read_session_intents"]
