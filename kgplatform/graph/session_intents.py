"""Read what ``kgp extract --round sessions`` stored into the data contract's
:class:`~kgplatform.data.session_intents.SessionIntents` (LLM4SBR's inference representations: per prefix and view,
the localised items and their weights, and optionally the encoded raw answer).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data.session_intents import VIEWS, SessionIntents

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph


def read_session_intents(graph: Graph, dataset: str, user_ids: list[str], item_ids: list[str], *,
                         run: str | None = None,
                         encode: Callable[[Sequence[str]], Any] | None = None) -> SessionIntents:
    """The stored session intents of ``dataset`` (of run ``run``, or the current ones), indexed like the
    RecData whose ``user_ids``/``item_ids`` are given; rows sorted by (user, prefix_end, view). Items or users
    the RecData does not know are left out. With ``encode`` (texts → ``[n, d]`` vectors, e.g. the text encoder
    the items were embedded with) the raw answers are encoded into ``answer_emb``."""
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
    answers = [texts[k] for k in keys]
    emb = None
    if encode is not None and keys:
        unique = sorted(set(answers))
        vec = np.asarray(encode(unique), dtype=np.float32)
        at = {t: j for j, t in enumerate(unique)}
        emb = torch.from_numpy(vec[[at[t] for t in answers]])
    return SessionIntents(col(0), col(1), col(2), it, wt, answers, answer_emb=emb)


__all__ = ["SessionIntents", "VIEWS", "read_session_intents"]
