"""Batched evaluation of a recommender under the two protocols.

* ``full`` — every item is a candidate; the user's history before the target (training items, and for
  test also the validation item) is masked to ``-inf``, except the target itself (RecBole's convention:
  ``used_ids - positive_items``). Scores come from ``model.full_scores`` for a batch of users at a time.
* ``sampled<K>`` — the target plus the K stored negatives of :mod:`kgplatform.data.candidates`, scored with
  ``model.score``; nothing to mask (negatives were never interacted with).

Conventions (``convention=``): ``kgp`` (default) masks the history for every model; ``recbole`` follows
RecBole 1.2.1 — general models are masked the same way, sequential models (``needs_sequence``) rank every item
without masking, and the sampled candidates are RecBole's (see :mod:`kgplatform.data.candidates`, chosen by
:func:`candidate_policy`). Metrics include RecBole's truncated ``MRR@k`` next to the untruncated ``MRR``.

Both reduce to ``(n_greater, n_ties)`` per user and :func:`~kgplatform.eval.metrics.rank_metrics`; no loop
over users in Python, only over user batches.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from kgplatform.errors import TrainingError
from kgplatform.data.candidates import SampledCandidates
from kgplatform.eval.metrics import DEFAULT_HR_KS, DEFAULT_NDCG_KS, Ties, rank_counts, rank_metrics
from kgplatform.data.split import Phase, Split
from kgplatform.models.base import prefix_kwargs

FULL = "full"
CONVENTIONS = ("kgp", "recbole")


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise TrainingError(f"unknown convention {convention!r} ({'|'.join(CONVENTIONS)})")
    return convention


def masks_history(model, convention: str) -> bool:
    """Whether full ranking masks the user's earlier items for ``model`` under ``convention``."""
    return not (check_convention(convention) == "recbole" and getattr(model, "needs_sequence", False))


def candidate_policy(convention: str, sequential: bool) -> dict:
    """``sample_negatives`` keyword arguments of a convention: ``kgp`` never-interacted items without
    replacement; ``recbole`` RecBole's general sampler (phase history) or its sequential one (target only),
    both with replacement."""
    if check_convention(convention) == "kgp":
        return {"exclude": "all", "replacement": False}
    return {"exclude": "target" if sequential else "phase", "replacement": True}


def sampled_label(num_negatives: int) -> str:
    """The protocol label of the sampled-negatives protocol, e.g. ``sampled99``."""
    return f"sampled{num_negatives}"


def history_for(model, split: Split, phase: Phase | None, users: Tensor) -> tuple[Tensor, Tensor]:
    """The input sequence of a sequential model: the user's last ``max_seq_len`` history items, or only those of
    the target's session when the model says ``history_scope = "session"`` (an anonymous session). ``phase=None``
    (after the test item, for serving) always reads the whole sequence."""
    if phase is not None and getattr(model, "history_scope", "user") == "session":
        return split.session_history(phase, users, model.max_seq_len)
    return split.history_sequences(phase, users, model.max_seq_len)


def _model_device(model) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def rank_counts_for(
    model,
    split: Split,
    phase: Phase,
    protocol: str,
    *,
    candidates: SampledCandidates | None = None,
    batch_size: int = 1024,
    users: Tensor | None = None,
    mask_history: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(n_greater, n_ties)`` of each evaluated user's target (CPU tensors, in ``split.users(phase)`` order).

    ``mask_history=False`` ranks the history items too (RecBole's convention for sequential models).
    """
    device = _model_device(model)
    users = split.users(phase) if users is None else users
    was_training = model.training
    model.eval()
    model.prepare_eval()
    g_all, e_all = [], []
    order = None
    if model.needs_sequence:  # batch users of similar history length: less padding
        order = torch.argsort(split.history_len(phase, users), stable=True)
        users = users[order]
    try:
        for ub in users.split(batch_size):
            seq = None
            if model.needs_sequence:
                seq, _ = history_for(model, split, phase, ub)
                seq = seq.to(device)
            tgt = split.targets(phase, ub)
            ud = ub.to(device)
            kw = prefix_kwargs(model, split.history_len(phase, ub).to(device))
            if protocol == FULL:
                scores = model.full_scores(ud, seq=seq, **kw).float()
                if mask_history:
                    rows, items = split.history_coo(phase, ub)
                    scores[rows.to(device), items.to(device)] = float("-inf")
                g, e = rank_counts(scores, tgt.to(device))
            elif protocol.startswith("sampled"):
                if candidates is None:
                    raise TrainingError("the sampled protocol needs candidates (see eval.sample_negatives)")
                neg = candidates.for_users(phase, ub)
                cand = torch.cat([tgt.view(-1, 1), neg], 1).to(device)
                scores = model.score(ud, cand, seq=seq, **kw).float()
                g, e = rank_counts(scores, torch.zeros(ub.numel(), dtype=torch.long, device=device))
            else:
                raise TrainingError(f"unknown protocol {protocol!r} (full|sampled<K>)")
            g_all.append(g.cpu())
            e_all.append(e.cpu())
    finally:
        model.train(was_training)
    if not g_all:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    g, e = torch.cat(g_all), torch.cat(e_all)
    if order is not None:
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel())
        g, e = g[inv], e[inv]
    return g, e


def evaluate(
    model,
    split: Split,
    phase: Phase = "test",
    *,
    protocols: Sequence[str] = (FULL, "sampled"),
    candidates: SampledCandidates | None = None,
    hr_ks: Sequence[int] = DEFAULT_HR_KS,
    ndcg_ks: Sequence[int] = DEFAULT_NDCG_KS,
    ties: Ties = "average",
    batch_size: int = 1024,
    per_user: bool = False,
    convention: str = "kgp",
) -> dict[str, dict[str, float]] | dict[str, dict[str, Tensor]]:
    """Metrics of ``model`` on the ``phase`` targets, one dict per protocol.

    ``"sampled"`` in ``protocols`` is expanded to ``sampled<K>`` with K from ``candidates``. Returns
    ``{"full": {"HR@1": ..., "NDCG@10": ..., "MRR": ...}, "sampled99": {...}}`` (means over users), or
    per-user tensors when ``per_user`` (in ``split.users(phase)`` order). ``convention``: see the module
    docstring (the candidates must have been drawn under the same convention).
    """
    mask = masks_history(model, convention)
    out: dict = {}
    for proto in protocols:
        label = proto
        if proto == "sampled":
            if candidates is None:
                raise TrainingError("the sampled protocol needs candidates (see eval.sample_negatives)")
            label = sampled_label(candidates.num_negatives)
        g, e = rank_counts_for(model, split, phase, label, candidates=candidates, batch_size=batch_size,
                               mask_history=mask)
        m = rank_metrics(g, e, hr_ks=hr_ks, ndcg_ks=ndcg_ks, ties=ties)
        out[label] = m if per_user else {k: (float(v.mean()) if v.numel() else float("nan")) for k, v in m.items()}
    return out
