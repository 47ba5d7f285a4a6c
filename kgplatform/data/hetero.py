"""PyG ``HeteroData`` builders: one for training (training interactions only), one explicitly for serving.

* :func:`training_graph` takes a ``role="train"`` :class:`~kgplatform.data.recdata.RecData` (from
  :func:`kgplatform.data.training_view`) and refuses anything else, so no validation or test interaction can
  reach a graph a model learns from.
* :func:`serving_graph` takes the full data (every interaction the graph holds): for serving, inspection
  and export, never for training. Its name says so, and its ``graph.role`` attribute records it.

Node types ``user``, ``item``, ``entity`` (non-item KG entities, re-indexed from 0), ``intent``, ``session``.
Edge types: ``(user, interacted, item)`` (``pos``, ``ts``, ``behavior``: the index into
``RecData.behavior_names``, -1 for none), one ``(user, <behavior>, item)`` per behaviour type (the same
interactions split by type: ``loved``, ``view``, ``buy``…), one per KG relation and endpoint types
``(src, <relation>, dst)``, ``(item, satisfies, intent)`` and ``(user, has_intent, intent)`` with the intent
kind as ``edge_attr``, and, when session boundaries are known, ``(user, has_session, session)`` and
``(session, contains, item)`` (``pos`` within the session). Node features ``x`` where text vectors exist.
"""
from __future__ import annotations

import torch

from kgplatform.data.contract import require_training
from kgplatform.data.recdata import FULL_ROLE, RecData
from kgplatform.errors import TrainingError


def training_graph(train: RecData):
    """The ``HeteroData`` a model may train on (training interactions only; see the module docstring)."""
    require_training(train, "training_graph")
    return _build(train)


def serving_graph(data: RecData):
    """The ``HeteroData`` of everything the graph holds (validation/test interactions included).

    For serving and export only: a model trained on it would see the answers.
    """
    if data.role != FULL_ROLE:
        raise TrainingError("serving_graph expects the full data; use training_graph for a training view")
    return _build(data)


def edge_name(name: str) -> str:
    """PyG edge type names may not contain ``__`` (its separator for flattened keys)."""
    return name.replace("__", "_")


def _build(d: RecData):
    from torch_geometric.data import HeteroData

    g = HeteroData()
    g.role = d.role
    g.dataset = d.dataset
    g["user"].num_nodes = d.num_users
    g["item"].num_nodes = d.num_items
    if d.user_text_emb is not None:
        g["user"].x = d.user_text_emb
    if d.item_text_emb is not None:
        g["item"].x = d.item_text_emb
    users = d.interaction_users()
    pos = torch.arange(d.num_interactions) - torch.repeat_interleave(d.seq_indptr[:-1], d.seq_lengths)
    e = g["user", "interacted", "item"]
    e.edge_index = torch.stack([users, d.seq_items])
    e.pos = pos
    if d.seq_ts is not None:
        e.ts = d.seq_ts
    if d.seq_behavior is not None:
        e.behavior = d.seq_behavior
        for b, name in enumerate(d.behavior_names):  # one edge type per behaviour type, same rows
            m = d.seq_behavior == b
            if bool(m.any()):
                eb = g["user", edge_name(name), "item"]
                eb.edge_index = e.edge_index[:, m]
                eb.pos = pos[m]
                if d.seq_ts is not None:
                    eb.ts = d.seq_ts[m]
    if d.seq_session is not None and d.num_interactions:
        # one session node per (user, ordinal) present in this view
        key = users * (int(d.seq_session.max()) + 1) + d.seq_session
        uniq, sess = torch.unique(key, return_inverse=True)
        n_s = int(uniq.numel())
        g["session"].num_nodes = n_s
        s_user = torch.zeros(n_s, dtype=torch.long).scatter_(0, sess, users)
        g["user", "has_session", "session"].edge_index = torch.stack([s_user, torch.arange(n_s)])
        first = torch.full((n_s,), d.num_interactions, dtype=torch.long).scatter_reduce_(
            0, sess, torch.arange(d.num_interactions), reduce="amin")
        c = g["session", "contains", "item"]
        c.edge_index = torch.stack([sess, d.seq_items])
        c.pos = torch.arange(d.num_interactions) - first[sess]
    n_other = d.num_entities - d.num_items
    if n_other > 0:
        g["entity"].num_nodes = n_other
    if d.has_kg:
        I = d.num_items
        for r, name in enumerate(d.relation_names):
            m = d.kg_rels == r
            if not bool(m.any()):
                continue
            h, t = d.kg_heads[m], d.kg_tails[m]
            for hs in (True, False):
                for ts in (True, False):
                    mm = ((h < I) == hs) & ((t < I) == ts)
                    if not bool(mm.any()):
                        continue
                    src = "item" if hs else "entity"
                    dst = "item" if ts else "entity"
                    hh = h[mm] if hs else h[mm] - I
                    tt = t[mm] if ts else t[mm] - I
                    g[src, edge_name(name), dst].edge_index = torch.stack([hh, tt])
    if d.num_intents:
        g["intent"].num_nodes = d.num_intents
        if d.intent_text_emb is not None:
            g["intent"].x = d.intent_text_emb
        if d.item_intents is not None and d.item_intents.numel():
            s = g["item", "satisfies", "intent"]
            s.edge_index = d.item_intents.t().contiguous()
            s.edge_attr = d.item_intent_kind
        if d.user_intents is not None and d.user_intents.numel():
            s = g["user", "has_intent", "intent"]
            s.edge_index = d.user_intents.t().contiguous()
            s.edge_attr = d.user_intent_kind
    return g
