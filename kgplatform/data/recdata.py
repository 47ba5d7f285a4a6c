"""``RecData``: everything a recommender needs, as integer-indexed tensors.

The contract between the exporter (:mod:`kgplatform.graph.export`, which fills it from Neo4j) and the models,
trainer and evaluator. A ``RecData`` has a ``role``: ``"full"`` (everything the graph holds, validation and
test interactions included: what evaluation and serving read) or ``"train"`` (built by
:func:`kgplatform.data.training_view`: only the training prefix of every sequence). Everything a model
*trains on* is built from a ``"train"`` view, and the builders refuse a ``"full"`` one. Indices run ``0..n-1``; ``user_ids`` / ``item_ids`` / ``intent_keys`` map them back to
graph ids (position = index).

Index spaces
------------
* users ``[0, num_users)`` and items ``[0, num_items)``.
* one *entity* space for the KG: items occupy ``[0, num_items)``, other KG entities follow up to
  ``num_entities``. A KG triple ``(h, r, t)`` uses entity indices.
* intents ``[0, num_intents)`` (a separate space; the models place them where they like).

Interactions are per-user chronological sequences in CSR form: user ``u``'s items are
``seq_items[seq_indptr[u]:seq_indptr[u+1]]`` in the ``pos`` order of their ``INTERACTED`` edges.
``seq_session`` (optional, aligned with ``seq_items``) is the ordinal of the graph ``Session`` each
interaction belongs to within its user (0, 1, …; sessions are contiguous runs of the sequence).
``seq_behavior`` (optional, aligned too) is each interaction's behaviour type (``view``, ``buy``, ``loved``…) as an
index into ``behavior_names``, ``-1`` where none was recorded. A ``"full"`` view is not split: :func:`kgplatform.data.split.leave_one_out` does that.

Intent edges carry a kind: ``0`` exact (first LLM round), ``1`` related (second, RAG round).

.. warning::
   ``user_intents`` must come from what is known about the user *independently of the held-out
   interactions* (a profile). Intents inherited from consumed items are derived by the models from the
   training split only; an exporter that copies intents of *all* consumed items onto the user leaks the
   validation/test items into training.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

from kgplatform.errors import TrainingError
from kgplatform.data.session_intents import SessionIntents

EXACT_KIND = 0
RELATED_KIND = 1
FULL_ROLE = "full"
TRAIN_ROLE = "train"


def _long(x) -> Tensor:
    if isinstance(x, Tensor):
        return x.to(torch.long).contiguous()
    return torch.as_tensor(np.asarray(x, dtype=np.int64), dtype=torch.long)


def _float(x) -> Tensor | None:
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x.to(torch.float32).contiguous()
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


@dataclass
class RecData:
    """Interactions, optional KG, optional intents and text features of one dataset.

    Build it with :meth:`from_sequences` (the exporter and the dev loaders do) rather than field by field;
    :meth:`validate` checks shapes and index ranges.
    """

    dataset: str
    user_ids: list[str]
    item_ids: list[str]
    # --- interactions (CSR over users, chronological) ---
    seq_indptr: Tensor  # [num_users + 1]
    seq_items: Tensor  # [num_interactions]
    seq_ts: Tensor | None = None  # [num_interactions] float seconds, optional
    # --- knowledge graph over entities (items first) ---
    kg_heads: Tensor | None = None  # [num_triples]
    kg_rels: Tensor | None = None
    kg_tails: Tensor | None = None
    num_entities: int = 0  # 0 means "no KG": entities == items
    relation_names: list[str] = field(default_factory=list)
    entity_ids: list[str] | None = None  # graph ids of entities num_items.. (optional)
    # --- intents ---
    intent_keys: list[str] = field(default_factory=list)
    item_intents: Tensor | None = None  # [E_i, 2] (item_idx, intent_idx)
    item_intent_kind: Tensor | None = None  # [E_i] 0 exact / 1 related
    user_intents: Tensor | None = None  # [E_u, 2] (user_idx, intent_idx)
    user_intent_kind: Tensor | None = None  # [E_u]
    # --- text features (sentence-transformer vectors) ---
    item_text_emb: Tensor | None = None  # [num_items, d]
    user_text_emb: Tensor | None = None  # [num_users, d]
    intent_text_emb: Tensor | None = None  # [num_intents, d]
    # --- fused user knowledge (kgp extract --round knowledge; from training behaviour only), when exported ---
    user_knowledge_emb: Tensor | None = None  # [num_users, d], zero rows where a user has none
    user_knowledge_mask: Tensor | None = None  # [num_users] bool, True where a user has knowledge
    # --- LLM4SBR session intents (kgp extract --round sessions; each row from its prefix only), when exported ---
    session_intents: SessionIntents | None = None
    # --- sessions and provenance ---
    seq_session: Tensor | None = None  # [num_interactions] session ordinal within the user
    # --- behaviour types (INTERACTED.behavior) ---
    seq_behavior: Tensor | None = None  # [num_interactions] index into behavior_names, -1 = none recorded
    behavior_names: list[str] = field(default_factory=list)  # sorted
    role: str = FULL_ROLE  # "full" (all interactions) or "train" (training prefixes only)

    def __post_init__(self) -> None:
        if self.num_entities == 0:
            self.num_entities = self.num_items

    @property
    def is_training_view(self) -> bool:
        return self.role == TRAIN_ROLE

    # ------------------------------------------------------------------ sizes
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return int(self.seq_items.numel())

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    @property
    def num_intents(self) -> int:
        return len(self.intent_keys)

    @property
    def has_kg(self) -> bool:
        return self.kg_heads is not None and self.kg_heads.numel() > 0

    @property
    def has_intents(self) -> bool:
        return self.num_intents > 0 and self.item_intents is not None and self.item_intents.numel() > 0

    @property
    def seq_lengths(self) -> Tensor:
        return self.seq_indptr[1:] - self.seq_indptr[:-1]

    def interaction_users(self) -> Tensor:
        """User index of every entry of ``seq_items``."""
        return torch.repeat_interleave(torch.arange(self.num_users), self.seq_lengths)

    def sequence(self, user: int) -> Tensor:
        return self.seq_items[self.seq_indptr[user] : self.seq_indptr[user + 1]]

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_sequences(
        cls,
        dataset: str,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        sequences: Sequence[Sequence[int]],
        *,
        timestamps: Sequence[Sequence[float]] | None = None,
        sessions: Sequence[Sequence[int]] | None = None,
        kg_triples: Tensor | np.ndarray | Sequence[tuple[int, int, int]] | None = None,
        num_entities: int | None = None,
        relation_names: Sequence[str] | None = None,
        entity_ids: Sequence[str] | None = None,
        intent_keys: Sequence[str] | None = None,
        item_intents: Sequence[tuple[int, int, int]] | np.ndarray | Tensor | None = None,
        user_intents: Sequence[tuple[int, int, int]] | np.ndarray | Tensor | None = None,
        item_text_emb=None,
        user_text_emb=None,
        intent_text_emb=None,
        behaviors: Sequence[Sequence[str | None]] | None = None,
    ) -> RecData:
        """Build from per-user item-index sequences (already in chronological order).

        Args:
            dataset: dataset name.
            user_ids / item_ids: graph ids; position = index.
            sequences: ``sequences[u]`` = item indices of user ``u`` in ``pos`` order.
            timestamps: optional, same shape as ``sequences``.
            sessions: optional, same shape as ``sequences``: the session ordinal of each interaction within
                its user (non-decreasing along the sequence).
            kg_triples: ``[T, 3]`` (head, relation, tail) in the entity space (items first).
            num_entities: size of the entity space (default: 1 + max index, at least ``len(item_ids)``).
            relation_names: one name per relation index (default ``r0, r1, ...``).
            intent_keys: one key per intent index.
            item_intents / user_intents: ``[E, 3]`` rows ``(item_or_user, intent, kind)``; kind 0 exact,
                1 related. ``[E, 2]`` means all exact.
            item_text_emb / user_text_emb / intent_text_emb: optional ``[n, d]`` feature matrices.
            behaviors: optional, same shape as ``sequences``: each interaction's behaviour type name (``None``
                for none); stored as indices into the sorted ``behavior_names``.
        """
        if len(sequences) != len(user_ids):
            raise TrainingError(f"{len(sequences)} sequences for {len(user_ids)} users")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        indptr = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if len(sequences) and indptr[-1] > 0
            else np.zeros(0, dtype=np.int64)
        )
        ts = None
        if timestamps is not None:
            ts = torch.as_tensor(
                np.concatenate([np.asarray(t, dtype=np.float64) for t in timestamps])
                if len(timestamps)
                else np.zeros(0),
                dtype=torch.float64,
            )
        sess = None
        if sessions is not None:
            sess = torch.as_tensor(
                np.concatenate([np.asarray(t, dtype=np.int64) for t in sessions]) if len(sessions) else np.zeros(0),
                dtype=torch.long,
            )
        beh, beh_names = None, []
        if behaviors is not None:
            flat_b = [b for seq in behaviors for b in seq]
            beh_names = sorted({b for b in flat_b if b is not None})
            code = {b: k for k, b in enumerate(beh_names)}
            beh = torch.as_tensor(np.fromiter((code[b] if b is not None else -1 for b in flat_b), dtype=np.int64,
                                              count=len(flat_b)), dtype=torch.long)
        heads = rels = tails = None
        n_ent = num_entities or 0
        rel_names: list[str] = list(relation_names or [])
        if kg_triples is not None:
            kg = _long(kg_triples).view(-1, 3)
            heads, rels, tails = kg[:, 0].contiguous(), kg[:, 1].contiguous(), kg[:, 2].contiguous()
            if not n_ent:
                n_ent = max(len(item_ids), int(torch.cat([heads, tails]).max()) + 1 if kg.numel() else 0)
            if not rel_names:
                n_rel = int(rels.max()) + 1 if rels.numel() else 0
                rel_names = [f"r{i}" for i in range(n_rel)]

        def edges(x):
            if x is None:
                return None, None
            e = _long(x)
            if e.numel() == 0:
                return torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.long)
            e = e.view(e.shape[0], -1)
            kind = e[:, 2].contiguous() if e.shape[1] > 2 else torch.zeros(e.shape[0], dtype=torch.long)
            return e[:, :2].contiguous(), kind

        ii, ii_kind = edges(item_intents)
        ui, ui_kind = edges(user_intents)
        data = cls(
            dataset=dataset,
            user_ids=list(user_ids),
            item_ids=list(item_ids),
            seq_indptr=torch.as_tensor(indptr),
            seq_items=torch.as_tensor(flat),
            seq_ts=ts,
            kg_heads=heads,
            kg_rels=rels,
            kg_tails=tails,
            num_entities=n_ent,
            relation_names=rel_names,
            entity_ids=list(entity_ids) if entity_ids is not None else None,
            intent_keys=list(intent_keys or []),
            item_intents=ii,
            item_intent_kind=ii_kind,
            user_intents=ui,
            user_intent_kind=ui_kind,
            item_text_emb=_float(item_text_emb),
            user_text_emb=_float(user_text_emb),
            intent_text_emb=_float(intent_text_emb),
            seq_session=sess,
            seq_behavior=beh,
            behavior_names=beh_names,
        )
        data.validate()
        return data

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise :class:`TrainingError` on inconsistent shapes or out-of-range indices."""
        U, I = self.num_users, self.num_items

        def fail(msg: str) -> None:
            raise TrainingError(f"RecData({self.dataset}): {msg}")

        if len(set(self.user_ids)) != U:
            fail("duplicate user ids")
        if len(set(self.item_ids)) != I:
            fail("duplicate item ids")
        if self.seq_indptr.numel() != U + 1 or int(self.seq_indptr[0]) != 0:
            fail("seq_indptr must have num_users + 1 entries starting at 0")
        if int(self.seq_indptr[-1]) != self.seq_items.numel():
            fail("seq_indptr[-1] != len(seq_items)")
        if bool((self.seq_lengths < 0).any()):
            fail("seq_indptr must be non-decreasing")
        if self.seq_items.numel() and (int(self.seq_items.min()) < 0 or int(self.seq_items.max()) >= I):
            fail("item index out of range in seq_items")
        if self.seq_ts is not None and self.seq_ts.numel() != self.seq_items.numel():
            fail("seq_ts must align with seq_items")
        if self.role not in (FULL_ROLE, TRAIN_ROLE):
            fail(f"role must be {FULL_ROLE!r} or {TRAIN_ROLE!r}, got {self.role!r}")
        if self.seq_session is not None:
            if self.seq_session.numel() != self.seq_items.numel():
                fail("seq_session must align with seq_items")
            if self.seq_session.numel():
                users = self.interaction_users()
                same = users[1:] == users[:-1]
                if bool((self.seq_session[1:][same] < self.seq_session[:-1][same]).any()):
                    fail("seq_session must be non-decreasing along each user's sequence")
        if self.seq_behavior is not None:
            if self.seq_behavior.numel() != self.seq_items.numel():
                fail("seq_behavior must align with seq_items")
            if self.seq_behavior.numel() and (int(self.seq_behavior.min()) < -1
                                              or int(self.seq_behavior.max()) >= len(self.behavior_names)):
                fail("behaviour index out of range (behavior_names too short)")
        if self.has_kg:
            if not (self.kg_heads.numel() == self.kg_rels.numel() == self.kg_tails.numel()):
                fail("kg_heads/kg_rels/kg_tails differ in length")
            ht = torch.cat([self.kg_heads, self.kg_tails])
            if int(ht.min()) < 0 or int(ht.max()) >= self.num_entities:
                fail("KG entity index out of range")
            if int(self.kg_rels.min()) < 0 or int(self.kg_rels.max()) >= self.num_relations:
                fail("KG relation index out of range (relation_names too short)")
        if self.num_entities < I:
            fail("num_entities must be >= num_items (items occupy the first entity indices)")
        T = self.num_intents
        for name, edges, kind, n in (
            ("item_intents", self.item_intents, self.item_intent_kind, I),
            ("user_intents", self.user_intents, self.user_intent_kind, U),
        ):
            if edges is None or edges.numel() == 0:
                continue
            if edges.dim() != 2 or edges.shape[1] != 2:
                fail(f"{name} must be [E, 2]")
            if int(edges[:, 0].min()) < 0 or int(edges[:, 0].max()) >= n:
                fail(f"{name}: node index out of range")
            if int(edges[:, 1].min()) < 0 or int(edges[:, 1].max()) >= T:
                fail(f"{name}: intent index out of range (intent_keys has {T})")
            if kind is None or kind.numel() != edges.shape[0]:
                fail(f"{name}: kind must align with edges")
        for name, emb, n in (
            ("item_text_emb", self.item_text_emb, I),
            ("user_text_emb", self.user_text_emb, U),
            ("intent_text_emb", self.intent_text_emb, T),
        ):
            if emb is not None and (emb.dim() != 2 or emb.shape[0] != n):
                fail(f"{name} must be [{n}, d], got {tuple(emb.shape)}")
        if (self.user_knowledge_emb is None) != (self.user_knowledge_mask is None):
            fail("user_knowledge_emb and user_knowledge_mask come together")
        if self.user_knowledge_emb is not None:
            if self.user_knowledge_emb.dim() != 2 or self.user_knowledge_emb.shape[0] != U:
                fail(f"user_knowledge_emb must be [{U}, d], got {tuple(self.user_knowledge_emb.shape)}")
            if self.user_knowledge_mask.shape != (U,) or self.user_knowledge_mask.dtype != torch.bool:
                fail(f"user_knowledge_mask must be a [{U}] bool tensor")
        if self.session_intents is not None:
            try:
                self.session_intents.validate(U, I)
            except ValueError as e:
                fail(str(e))

    # --------------------------------------------------------------- checksum
    def checksum(self) -> str:
        """SHA-256 over ids and every tensor's bytes (stable across runs and machines)."""
        h = hashlib.sha256()
        for f in fields(self):
            if f.name == "role" or (f.name in ("seq_behavior", "behavior_names") and self.seq_behavior is None):
                continue  # no behaviour types: the checksum of the data before they existed
            if f.name.startswith("user_knowledge_") and self.user_knowledge_emb is None:
                continue  # likewise without exported knowledge
            v = getattr(self, f.name)
            if f.name == "session_intents":
                if v is not None:  # likewise: absent session intents leave the checksum as it was
                    h.update(f.name.encode() + v.digest())
                continue
            h.update(f.name.encode())
            if v is None:
                h.update(b"\x00none")
            elif isinstance(v, Tensor):
                a = v.detach().cpu().contiguous()
                h.update(str(a.dtype).encode() + str(tuple(a.shape)).encode())
                h.update(a.numpy().tobytes())
            elif isinstance(v, list):
                h.update(str(len(v)).encode())
                h.update("\x1f".join(map(str, v)).encode())
            else:
                h.update(repr(v).encode())
        return h.hexdigest()

    def summary(self) -> dict:
        return {
            "dataset": self.dataset,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "entities": self.num_entities,
            "relations": self.num_relations,
            "triples": int(self.kg_heads.numel()) if self.has_kg else 0,
            "intents": self.num_intents,
            "item_intent_edges": int(self.item_intents.shape[0]) if self.item_intents is not None else 0,
            "user_intent_edges": int(self.user_intents.shape[0]) if self.user_intents is not None else 0,
            "behaviors": list(self.behavior_names),
        }

    def keep_users(self, users: Sequence[int] | Tensor) -> RecData:
        """A copy holding only ``users`` (indices, kept in the given order, each once): their sequences with
        timestamps, sessions and behaviours, their text, intent, knowledge and session-intent rows re-indexed.
        Items, the KG and item-side fields are unchanged (a user sub-sample of the same catalogue)."""
        import dataclasses

        if self.is_training_view:
            raise TrainingError("keep_users: sub-sample the full data, then cut its training view")
        idx = torch.as_tensor(users, dtype=torch.long).view(-1)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_users):
            raise TrainingError("keep_users: user index out of range")
        if torch.unique(idx).numel() != idx.numel():
            raise TrainingError("keep_users: a user is listed twice")
        new_of = torch.full((self.num_users,), -1, dtype=torch.long)
        new_of[idx] = torch.arange(idx.numel())
        lens = self.seq_lengths[idx]
        indptr = torch.zeros(idx.numel() + 1, dtype=torch.long)
        indptr[1:] = torch.cumsum(lens, 0)
        rows = torch.repeat_interleave(torch.arange(idx.numel()), lens)
        flat = self.seq_indptr[idx][rows] + torch.arange(int(lens.sum())) - indptr[:-1][rows]

        def take(x):
            return None if x is None else x[flat].clone()

        ui, uik = self.user_intents, self.user_intent_kind
        if ui is not None:
            keep = new_of[ui[:, 0]] >= 0
            ui = torch.stack([new_of[ui[keep, 0]], ui[keep, 1]], 1)
            uik = uik[keep]
        si = self.session_intents
        if si is not None:
            si = si.select(new_of[si.user] >= 0)
            si = dataclasses.replace(si, user=new_of[si.user])
        out = dataclasses.replace(
            self, user_ids=[self.user_ids[i] for i in idx.tolist()], seq_indptr=indptr, seq_items=take(self.seq_items),
            seq_ts=take(self.seq_ts), seq_session=take(self.seq_session), seq_behavior=take(self.seq_behavior),
            user_text_emb=None if self.user_text_emb is None else self.user_text_emb[idx],
            user_intents=ui, user_intent_kind=uik,
            user_knowledge_emb=None if self.user_knowledge_emb is None else self.user_knowledge_emb[idx],
            user_knowledge_mask=None if self.user_knowledge_mask is None else self.user_knowledge_mask[idx],
            session_intents=si)
        out.validate()
        return out

    def restrict_intents(self, kinds: Sequence[int]) -> RecData:
        """A copy keeping only intent edges of the given kinds (e.g. ``[EXACT_KIND]``)."""
        import dataclasses

        keep_k = torch.as_tensor(list(kinds))

        def sel(e, k):
            if e is None:
                return None, None
            m = torch.isin(k, keep_k)
            return e[m], k[m]

        ii, iik = sel(self.item_intents, self.item_intent_kind)
        ui, uik = sel(self.user_intents, self.user_intent_kind)
        return dataclasses.replace(
            self, item_intents=ii, item_intent_kind=iik, user_intents=ui, user_intent_kind=uik
        )
