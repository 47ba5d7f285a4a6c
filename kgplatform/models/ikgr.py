"""IKGR: the intent-augmented KG recommender of "Explain What You Mean" (paper 001), Sections 3.3–4.5."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgplatform.data.intent_graph import CONSUMES, IntentGraph
from kgplatform.models.base import Recommender
from kgplatform.models.options import (
    check_bool, check_choice, check_float, check_floats, check_int, check_user_feature_options,
)
from kgplatform.nn.intent import IntentTranslation, Weighting, max_cos_per_item
from kgplatform.nn.kg_conv import KGConv, PreparedGraph
from kgplatform.nn.transh import TransH
from kgplatform.nn.user_features import UserFeatureFusion, knowledge_penalty, user_feature_fusion


@dataclass
class IKGRConfig:
    """Hyper-parameters and the paper's ablation switches (Table 3).

    Ablations (``IKGRConfig.ablation(name)``): ``no_aug`` (no intent nodes: ``use_intents=False``),
    ``exact_only`` (``related_intents=False``), ``no_int_scoring`` (``intent_scoring=False``: Eq. 9 only),
    ``no_int_trans`` (``intent_translation=False``: a free learned :math:`d_r` for *consumes*).

    Args:
        embedding_dim: :math:`d`.
        num_layers: KG convolution layers (the paper uses one).
        aggr / act: :class:`~kgplatform.nn.KGConv` aggregation and activation.
        conv_interactions: also convolve over the training *consumes* edges (the interaction part of the
            KG); otherwise users only see their intents.
        use_intents / related_intents / intent_scoring / intent_translation: see above.
        inherit_user_intents: a user's intent set also holds the intents of the items they consumed in
            *training* (most frequent first), as Eq. 10's wording allows; added as ``has_intent_inherited``
            edges too.
        max_user_intents / max_item_intents: intent-set caps (padding size of Eq. 8/10).
        min_intent_items: drop intents that fewer than this many items satisfy (exact or related). An intent
            held by one item links it to no other item, so it adds a parameter and noise but no item-to-item
            signal; ``1`` keeps every intent (the paper).
        merge_intents: cosine similarity of the intents' name vectors at or above which intents count as one
            (single linkage: "thriller film" and "thriller movie" become one node, linking the items of both);
            ``0`` keeps every intent apart (the paper). Applied before ``min_intent_items``.
        lam: :math:`\\lambda` of Eq. 11. ``tune_lambda`` grid-searches ``lambda_grid`` on validation.
        tau / weighting: Eq. 8's temperature and pair weighting (:class:`~kgplatform.nn.IntentTranslation`).
        rec_loss: the interaction objective on the Eq. 9 score — ``softmax`` (sampled softmax over the
            distinct positive and negative items of the batch), ``full_softmax`` (over every item), ``bpr``,
            or ``none`` (TransH margin only, as the paper's text literally reads). The paper scores with
            Eq. 9/11 but trains only Eq. 7; without a loss on the cosine the scoring function is never
            optimised, so a ranking loss on it is our addition.
        rec_temperature: cosine temperature of ``rec_loss``.
        kg_weight: weight of the TransH margin loss (Eq. 7) over consumes, intent and KG triples.
        kg_batch_size: intent/KG triples sampled per training step.
        margin / epsilon / corrupt_relation: TransH (Eq. 7) settings.
        norm_weight: weight of TransH's soft norm/orthogonality constraints.
        propagation: how a training step gets the embeddings it reads. ``batch`` (default): Eq. 3 for only the
            nodes the step reads (its users, items, KG triples and intents), from their in-edges: the same
            losses and gradients as ``full`` (up to float rounding; ``tests/models/test_ikgr_batch.py``), at a
            fraction of the cost. ``sampled``: as ``batch``, but each node aggregates over at most
            ``neighbour_samples`` in-neighbours drawn afresh at every step (uniformly with replacement where it
            has more, reweighted: an unbiased estimate of Eq. 3's aggregation, as KGCN's fixed-size sampled
            neighbourhoods); an approximation during training only, scoring always propagates the full graph.
            ``full``: Eq. 3 for every node of the graph at every step (the reference).
        neighbour_samples: in-neighbours per node with ``propagation="sampled"``.
        user_features: ``none``, ``fallback`` (the control: only the fallback vector of the users without
            knowledge) or ``knowledge`` (not the paper's): the embedded fused user knowledge added to
            the users' input vectors :math:`\mathbf{h}^{(0)}_u` through
            :class:`~kgplatform.nn.user_features.UserFeatureFusion`, before the KG convolution.
        knowledge_reg: with ``user_features=knowledge``, the L2 weight :math:`\lambda_k` on the knowledge term of
            the step's users (0 = none); knowledge_dropout: its per-user dropout while training (0 = none);
            knowledge_fallback: learn the vector of the users without knowledge (``False``: zero, as the plain
            model). See :class:`~kgplatform.nn.user_features.UserFeatureFusion`.

    The weak points the IKGR issue lists, each a switch measured by ``benchmarks/ikgr_variants.py`` (not the paper's;
    defaults keep the model as it was):

        item_bias: a learned per-item bias :math:`b_i` added to the loss's logits (:math:`\cos/\tau_r + b_i`) and
            to the score (:math:`\tau_r b_i`, scaled as the embedding term): the popularity signal that cosine
            scoring discards. Such a run claims no Eq. 9–11 decomposition and saves no inductive state.
        user_recency: half-life, in interactions, of a user's consumed items in the user's aggregation (the newest
            weighs most; the consumes edges keep their total share of the mean); 0 = uniform (the paper).
        user_embedding: the users' learned input vectors; off, a user is the aggregation of their items, intents
            and text only.
        pair_intents_without_positive: Eq. 8 for a training pair leaves out of the user's intent set the intents
            the pair's positive supplies (the inherited set holds them, a shortcut test pairs do not have).
        use_kg: convolve over the dataset's external KG triples (off: interactions and intents only).
        self_weight: weight :math:`s` of the node's own vector in Eq. 3, :math:`\mathbf{W}(s\,\mathbf{h}_v +
            \operatorname{AGG}) + \mathbf{b}`; 1 = the paper's.
    """

    embedding_dim: int = 64
    num_layers: int = 1
    aggr: Literal["mean", "sum"] = "mean"
    act: Literal["tanh", "relu", "leaky_relu", "none"] = "tanh"
    conv_interactions: bool = True
    use_intents: bool = True
    related_intents: bool = True
    intent_scoring: bool = True
    intent_translation: bool = True
    inherit_user_intents: bool = True
    max_user_intents: int = 16
    max_item_intents: int = 16
    min_intent_items: int = 1
    merge_intents: float = 0.0
    lam: float = 0.1
    tune_lambda: bool = True
    lambda_grid: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    tau: float = 0.1
    weighting: Weighting = "similar"
    rec_loss: Literal["softmax", "full_softmax", "bpr", "none"] = "softmax"
    rec_temperature: float = 0.1
    kg_weight: float = 0.1
    kg_batch_size: int = 2048
    margin: float = 1.0
    epsilon: float = 0.01
    corrupt_relation: float = 0.5
    norm_weight: float = 1e-3
    propagation: Literal["batch", "sampled", "full"] = "batch"
    neighbour_samples: int = 32
    user_features: str = "none"
    knowledge_reg: float = 0.0
    knowledge_dropout: float = 0.0
    knowledge_fallback: bool = True
    item_bias: bool = False
    user_recency: float = 0.0
    user_embedding: bool = True
    pair_intents_without_positive: bool = False
    use_kg: bool = True
    self_weight: float = 1.0

    ABLATIONS = ("full", "no_aug", "exact_only", "no_int_scoring", "no_int_trans")

    def validate(self) -> IKGRConfig:
        """Check (and coerce) every field; :class:`~kgplatform.errors.TrainingError` names a bad one."""
        check_int(self, "embedding_dim", 1)
        check_int(self, "num_layers", 0)  # 0 layers: the input features are the node vectors
        for name in ("max_user_intents", "max_item_intents", "min_intent_items", "kg_batch_size", "neighbour_samples"):
            check_int(self, name, 1)
        check_choice(self, "aggr", ("mean", "sum"))
        check_choice(self, "act", ("tanh", "relu", "leaky_relu", "none"))
        check_choice(self, "weighting", ("similar", "dissimilar", "linear"))
        check_choice(self, "rec_loss", ("softmax", "full_softmax", "bpr", "none"))
        check_choice(self, "propagation", ("batch", "sampled", "full"))
        check_user_feature_options(self)
        for name in ("conv_interactions", "use_intents", "related_intents", "intent_scoring", "intent_translation",
                     "inherit_user_intents", "tune_lambda", "item_bias",
                     "user_embedding", "pair_intents_without_positive", "use_kg"):
            check_bool(self, name)
        check_float(self, "lam", 0.0, 1.0)
        check_floats(self, "lambda_grid", 0.0, 1.0)
        for name in ("tau", "rec_temperature"):
            check_float(self, name, 0.0, lo_open=True)
        for name in ("kg_weight", "margin", "epsilon", "norm_weight", "user_recency", "self_weight"):
            check_float(self, name, 0.0)
        check_float(self, "corrupt_relation", 0.0, 1.0)
        check_float(self, "merge_intents", 0.0, 1.0)
        return self

    def ablation(self, name: str) -> IKGRConfig:
        """A copy with one of the paper's Table 3 ablations applied."""
        changes = {
            "full": {},
            "no_aug": {"use_intents": False},
            "exact_only": {"related_intents": False},
            "no_int_scoring": {"intent_scoring": False},
            "no_int_trans": {"intent_translation": False},
        }
        if name not in changes:
            raise ValueError(f"unknown ablation {name!r}; one of {', '.join(changes)}")
        return dataclasses.replace(self, **changes[name])


class IKGR(Recommender):
    r"""Intent Knowledge Graph Recommender.

    One node space holds users, items, KG entities and intent nodes. Input features come from the text
    embeddings where given (a linear projection of the sentence-transformer vectors plus a learned
    per-node vector) and are learned otherwise. Then:

    1. **KG convolution** (Eq. 3, :class:`~kgplatform.nn.KGConv`) over the intent-augmented graph: KG
       triples, *item satisfies intent* and *user has intent* (exact/related) edges and the training
       *user consumes item* edges, each also reversed, gives :math:`\mathbf{e}_v`.
    2. **TransH** (Eq. 4–7, :class:`~kgplatform.nn.TransH`) on :math:`\mathbf{e}`: margin loss over true vs.
       corrupted triples of every relation, with soft norm constraints.
    3. **Intent translation** (Eq. 8, :class:`~kgplatform.nn.IntentTranslation`): the *consumes* relation
       keeps a learned hyperplane :math:`\mathbf{w}_r`, but its translation is
       :math:`\mathbf{d}_{ui}` computed from the user's and the item's intent embeddings.
    4. **Intent-aware scoring** (Eq. 9–11):

    .. math::
        s(u, i) = (1 - \lambda)\cos(\mathbf{e}_u, \mathbf{e}_i)
            + \lambda \frac{1}{|\mathcal{I}_u|}\sum_{a \in \mathcal{I}_u}\max_{b \in \mathcal{I}_i}
              \cos(\mathbf{e}_a, \mathbf{e}_b)

    Args:
        graph (IntentGraph): the intent-augmented graph built from the *training* view by
            :func:`kgplatform.data.intent_graph.build_intent_graph` (intent sets, unified triples,
            convolution graph); :meth:`from_training_view` builds it with the config's switches.
        item_text, user_text, intent_text (torch.Tensor, optional): text feature matrices.
        config (IKGRConfig): hyper-parameters and ablation switches.
        user_fusion (UserFeatureFusion, optional): the fused-knowledge term of the users' input vectors.

    Shapes:
        - **loss** batch: ``users``, ``pos``, ``neg`` ``[B]``
        - **score**: users ``[B]``, items ``[B, C]`` → ``[B, C]``
        - **full_scores**: users ``[B]`` → ``[B, num_items]``
    """

    sampler = "pairs"

    @classmethod
    def from_training_view(cls, train, config: IKGRConfig | None = None) -> IKGR:
        """Build the graph from a training view (:func:`kgplatform.data.training_view`) and the model."""
        from kgplatform.data.intent_graph import build_intent_graph

        c = config or IKGRConfig()
        graph = build_intent_graph(
            train, use_intents=c.use_intents, related_intents=c.related_intents,
            inherit_user_intents=c.inherit_user_intents, max_user_intents=c.max_user_intents,
            max_item_intents=c.max_item_intents, min_intent_items=c.min_intent_items,
            conv_interactions=c.conv_interactions, user_recency=c.user_recency, use_kg=c.use_kg,
            merge_intents=c.merge_intents,
        )
        return cls(graph, item_text=train.item_text_emb, user_text=train.user_text_emb,
                   intent_text=train.intent_text_emb if graph.num_intents else None, config=c,
                   user_fusion=user_feature_fusion(train, c.user_features, c.embedding_dim, "ikgr", c.knowledge_reg,
                                                   c.knowledge_dropout, c.knowledge_fallback))

    def __init__(
        self,
        graph: IntentGraph,
        item_text: Tensor | None = None,
        user_text: Tensor | None = None,
        intent_text: Tensor | None = None,
        config: IKGRConfig | None = None,
        user_fusion: UserFeatureFusion | None = None,
    ) -> None:
        super().__init__(graph.num_users, graph.num_items)
        self.config = c = config or IKGRConfig()
        U, I, E, T = graph.num_users, graph.num_items, graph.num_entities, graph.num_intents
        self.num_entities, self.num_intents = E, T
        self.user_off, self.ent_off, self.int_off = graph.user_off, graph.ent_off, graph.int_off
        N = graph.num_nodes
        R = graph.num_relations
        self.rel_base = graph.num_kg_relations
        self.num_rel_total = R
        self.relation_names = graph.relation_names
        for name, t in graph.tensors().items():
            self.register_buffer(name, t)
        self.intent_map = graph.intent_map  # merged/dropped intents (cold start reads it; not a buffer)

        # --- parameters
        dim = c.embedding_dim
        self.transh = TransH(N, R, dim, margin=c.margin, epsilon=c.epsilon, corrupt_relation=c.corrupt_relation)
        self.convs = nn.ModuleList(KGConv(dim, dim, 2 * R, aggr=c.aggr, act=c.act) for _ in range(c.num_layers))
        self.translation = IntentTranslation(c.tau, c.weighting)
        self.text_proj = nn.ModuleDict()
        self._text_slices: dict[str, tuple[int, int]] = {}
        for name, feats, off, n in (("item", item_text, self.ent_off, I), ("user", user_text, self.user_off, U),
                                    ("intent", intent_text if T else None, self.int_off, T)):
            if feats is not None and n:
                self.register_buffer(f"{name}_text", feats.to(torch.float32))
                self.text_proj[name] = nn.Linear(feats.shape[1], dim, bias=False)
                self._text_slices[name] = (off, n)
        self.user_fusion = user_fusion
        self.item_bias = nn.Parameter(torch.zeros(I)) if c.item_bias else None
        self.lam = c.lam
        self._cache: Tensor | None = None
        self._int_cache: Tensor | None = None
        self._graph: PreparedGraph | None = None  # sparse operators of the fixed conv graph
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.transh.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for lin in self.text_proj.values():
            nn.init.xavier_uniform_(lin.weight)
        if self.user_fusion is not None:
            self.user_fusion.reset_parameters()
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias)

    # ------------------------------------------------------------ embeddings
    def input_features(self) -> Tensor:
        """:math:`\\mathbf{h}^{(0)}`: learned node vectors, plus projected text where available (and the users'
        fused-knowledge term with ``user_features``)."""
        x = self.transh.node_emb.weight
        if not self.config.user_embedding:  # users are what they consumed (and their text), no free vector
            keep = torch.ones(x.shape[0], 1, device=x.device)
            keep[self.user_off : self.user_off + self.num_users] = 0
            x = x * keep
        for name, (off, n) in self._text_slices.items():
            x = x.index_add(0, torch.arange(off, off + n, device=x.device),
                            self.text_proj[name](getattr(self, f"{name}_text")))
        if self.user_fusion is not None:
            x = x.index_add(0, torch.arange(self.user_off, self.user_off + self.num_users, device=x.device),
                            self.user_fusion())
        return x

    def _prepared(self) -> PreparedGraph:
        dev = self.edge_index.device
        if self._graph is None or self._graph.device != dev:
            self._graph = KGConv.prepare(self.edge_index, self.edge_type, self.transh.num_nodes,
                                         2 * self.num_rel_total, self.config.aggr,
                                         getattr(self, "edge_weight", None), self.config.self_weight)
        return self._graph

    def propagate(self, index: Tensor | None = None, sample: int | None = None) -> Tensor:
        """Final node embeddings :math:`\\mathbf{e}` after the KG convolution(s): ``[N, d]``, or only the rows
        ``index`` (distinct node ids) ``[S, d]``: the last layer then aggregates over those nodes' in-edges only
        (earlier layers, if any, run on every node), over at most ``sample`` sampled in-neighbours each if given
        (:meth:`KGConv.forward`)."""
        x = self.input_features()
        g = self._prepared()
        last = len(self.convs) - 1
        for k, conv in enumerate(self.convs):
            x = conv(x, prepared=g, index=index, sample=sample) if k == last else conv(x, prepared=g)
        if not self.convs and index is not None:
            x = x[index]
        return x

    def _drop_cache(self) -> None:
        self._cache = None
        self._int_cache = None

    def _embeddings(self) -> Tensor:
        if self._cache is not None and not self.training:
            return self._cache
        return self.propagate()

    def prepare_eval(self) -> None:
        with torch.no_grad():
            self._cache = self.propagate()
            self._int_cache = None
            if self._uses_intent_score():
                T, I = self.num_intents, self.num_items
                if T * I <= 60_000_000:  # ~240 MB of float32
                    self._int_cache = self._max_cos(torch.arange(T, device=self._cache.device))

    # ------------------------------------------------------------ intents
    def _intent_emb(self, e: Tensor) -> Tensor:
        return e[self.int_off : self.int_off + self.num_intents]

    def _set_emb(self, e: Tensor, sets: Tensor) -> tuple[Tensor, Tensor]:
        mask = sets >= 0
        return self._intent_emb(e)[sets.clamp(min=0)], mask

    def consumes_translation(self, e: Tensor, users: Tensor, items: Tensor, positives: Tensor | None = None) -> Tensor:
        """:math:`\\mathbf{d}_{ui}` (Eq. 8), or the free :math:`\\mathbf{d}_r` where intents are off/missing.
        ``positives``: with ``pair_intents_without_positive``, the user's set leaves out these items' intents."""
        free = self.transh.rel_emb.weight[self.rel_base + CONSUMES].expand(users.numel(), -1)
        if not (self.config.intent_translation and self.num_intents):
            return free
        ue, um = self._set_emb(e, self.user_sets[users])
        if positives is not None and self.config.pair_intents_without_positive:
            um = um & ~_in_sets(self.user_sets[users], self.item_sets[positives])
        ie, im = self._set_emb(e, self.item_sets[items])
        d, has = self.translation(ue, um, ie, im)
        return torch.where(has[:, None], d, free)

    def _translates(self) -> bool:
        return bool(self.config.intent_translation and self.num_intents)

    def _uses_intent_score(self) -> bool:
        return bool(self.config.intent_scoring and self.config.use_intents and self.num_intents)

    def _item_intent_edges(self) -> tuple[Tensor, Tensor]:
        rows, cols = torch.nonzero(self.item_sets >= 0, as_tuple=True)
        return rows, self.item_sets[rows, cols]

    def _max_cos(self, intents: Tensor) -> Tensor:
        e = self._embeddings()
        it, iv = self._item_intent_edges()
        ie = self._intent_emb(e)
        return max_cos_per_item(ie[intents], ie, it, iv, self.num_items)

    def intent_scores(self, users: Tensor) -> Tensor:
        """Eq. 10 for every item: ``[B, num_items]`` (0 where the user or the item has no intent)."""
        sets = self.user_sets[users]  # [B, m]
        mask = sets >= 0
        w = mask.float() / mask.sum(1, keepdim=True).clamp(min=1)
        if self._int_cache is not None:
            M = self._int_cache  # [T, I]
            A = torch.zeros(users.numel(), self.num_intents, device=users.device)
            A.scatter_add_(1, sets.clamp(min=0), w)
            return A @ M
        uniq, inv = torch.unique(sets.clamp(min=0), return_inverse=True)
        M = self._max_cos(uniq)
        A = torch.zeros(users.numel(), uniq.numel(), device=users.device)
        A.scatter_add_(1, inv, w)
        return A @ M

    # ------------------------------------------------------------ training
    def _sample_kg(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor] | None:
        """The step's intent/KG triples ``(h, r, t)`` and their corruptions ``(r2, t2)`` (Eq. 7's
        :math:`\\Delta'`: the relation with probability ``corrupt_relation``, and the tail), global node ids."""
        c = self.config
        if not (c.kg_weight and self.tri_h.numel()):
            return None
        idx = torch.randint(self.tri_h.numel(), (c.kg_batch_size,), device=device)
        h, r, t = self.tri_h[idx], self.tri_r[idx], self.tri_t[idx]
        r2 = r.clone()
        if c.corrupt_relation > 0 and self.present_rels.numel() > 1:
            flip = torch.rand(r.shape, device=device) < c.corrupt_relation
            pick = torch.randint(self.present_rels.numel(), (r.numel(),), device=device)
            r2 = torch.where(flip, self.present_rels[pick], r)
        t2 = self.tail_lo[r2] + (torch.rand(r2.shape, device=device) * self.tail_size[r2]).long()
        return h, r, t, r2, t2

    def _candidates(self, pos: Tensor, neg: Tensor) -> Tensor | None:
        """The items of the sampled softmax: the batch's distinct positives and negatives, or every item."""
        if self.config.rec_loss == "softmax":
            return torch.unique(torch.cat([pos, neg]))
        if self.config.rec_loss == "full_softmax":
            return torch.arange(self.num_items, device=pos.device)
        return None

    def _rec_loss(self, eu: Tensor, ep: Tensor, en: Tensor, pos: Tensor, neg: Tensor,
                  cand: Tensor | None = None, cand_emb: Tensor | None = None, users: Tensor | None = None) -> Tensor:
        """The interaction loss: softmax over the candidate items ``cand`` (sorted ids, vectors ``cand_emb``), or
        BPR over the (pos, neg) pairs without candidates (``users``, the pairs' users, is needed with candidates).

        The softmax's logits depend on the pair only through its user, so they are computed once per distinct
        user of ``users`` (a batch of 4,096 pairs on MovieLens-100k has at most 943): ``[U_b, C]`` instead of
        ``[B, C]``, and the loss of pair :math:`p` is :math:`\operatorname{logsumexp}_c z_{u_p c} - z_{u_p,
        i_p}` — the same value and gradients as the cross-entropy over ``[B, C]`` (up to float rounding). The
        temperature divides the ``[U_b, d]`` user vectors, not the logits."""
        c = self.config
        b = self.item_bias
        if cand is not None:
            uq, inv = torch.unique(users, return_inverse=True)
            first = torch.empty_like(uq).scatter_(0, inv, torch.arange(users.numel(), device=users.device))
            nu = F.normalize(eu[first], dim=-1) / c.rec_temperature
            logits = nu @ F.normalize(cand_emb, dim=-1).t()  # [U_b, C]
            if b is not None:
                logits = logits + b[cand]
            return (torch.logsumexp(logits, 1)[inv] - logits[inv, torch.searchsorted(cand, pos)]).mean()
        nu = F.normalize(eu, dim=-1)
        sp = (nu * F.normalize(ep, dim=-1)).sum(-1)
        sn = (nu * F.normalize(en, dim=-1)).sum(-1)
        diff = (sp - sn) / c.rec_temperature
        if b is not None:
            diff = diff + b[pos] - b[neg]
        return -F.logsigmoid(diff).mean()

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named losses of one step (``rec``, ``kg``, ``norm``, and ``knowledge_reg`` with ``knowledge_reg``); see
        ``propagation`` in :class:`IKGRConfig`."""
        out = self._loss_full(batch) if self.config.propagation == "full" else self._loss_batch(batch)
        return out | knowledge_penalty(self.user_fusion, batch["users"])

    def _loss_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The step's losses from Eq. 3 on the nodes it reads only (:meth:`propagate` with ``index``): the same
        values and gradients as :meth:`_loss_full`. The pairs' intent sets index one normalised table of the
        step's intents (:meth:`IntentTranslation.from_table`), and the positive and negative pairs share one
        Eq. 8 call."""
        c = self.config
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        B, dev = users.numel(), users.device
        cand = self._candidates(pos, neg)
        kg_triples = self._sample_kg(dev)
        translate = bool(c.kg_weight) and self._translates()
        need = [users + self.user_off, pos + self.ent_off, neg + self.ent_off]
        if cand is not None:
            need.append(cand + self.ent_off)
        if kg_triples is not None:
            need += [kg_triples[0], kg_triples[2], kg_triples[4]]
        if translate:
            u_sets, i_sets = _trim(self.user_sets[users]), _trim(self.item_sets[torch.cat([pos, neg])])
            ints = torch.unique(torch.cat([u_sets.flatten(), i_sets.flatten()]).clamp(min=0))
            need.append(ints + self.int_off)
        nodes = torch.unique(torch.cat(need))
        e = self.propagate(nodes, c.neighbour_samples if c.propagation == "sampled" else None)
        local = torch.empty(self.transh.num_nodes, dtype=torch.long, device=dev)
        local[nodes] = torch.arange(nodes.numel(), device=dev)

        def at(ids: Tensor) -> Tensor:
            return e[local[ids]]

        eu, ep, en = at(users + self.user_off), at(pos + self.ent_off), at(neg + self.ent_off)
        out: dict[str, Tensor] = {}
        if c.rec_loss != "none":
            out["rec"] = self._rec_loss(eu, ep, en, pos, neg, cand, None if cand is None else at(cand + self.ent_off),
                                        users)
        if c.kg_weight:
            th = self.transh
            r_c = torch.full((2 * B,), self.rel_base + CONSUMES, dtype=users.dtype, device=dev)
            if translate:
                lu = torch.searchsorted(ints, u_sets.clamp(min=0)).repeat(2, 1)
                li = torch.searchsorted(ints, i_sets.clamp(min=0))
                um = u_sets >= 0
                if c.pair_intents_without_positive:  # the pair's own positive must not supply the match
                    um = um & ~_in_sets(u_sets, i_sets[:B])
                d, has = self.translation.from_table(at(ints + self.int_off), lu, um.repeat(2, 1),
                                                     li, i_sets >= 0)
                free = th.rel_emb.weight[self.rel_base + CONSUMES]
                d = torch.where(has[:, None], d, free.expand_as(d))
            else:
                d = None
            energy = th.energy(torch.cat([eu, eu]), r_c, torch.cat([ep, en]), d)
            kg = th.margin_loss(energy[:B], energy[B:])
            parts = [eu, ep]
            if kg_triples is not None:
                h, r, t, r2, t2 = kg_triples
                eh, et = at(h), at(t)
                kg = kg + th.margin_loss(th.energy(eh, r, et), th.energy(eh, r2, at(t2)))
                parts += [eh, et]
            out["kg"] = c.kg_weight * kg
            if c.norm_weight:
                out["norm"] = c.norm_weight * th.constraint_loss(torch.cat(parts))
        return out

    def _loss_full(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The step's losses from Eq. 3 on every node of the graph (the reference for :meth:`_loss_batch`)."""
        c = self.config
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        e = self.propagate()
        eu = e[users + self.user_off]
        ep = e[pos + self.ent_off]
        en = e[neg + self.ent_off]
        out: dict[str, Tensor] = {}
        if c.rec_loss != "none":
            cand = self._candidates(pos, neg)
            out["rec"] = self._rec_loss(eu, ep, en, pos, neg, cand, None if cand is None else e[cand + self.ent_off],
                                        users)
        if c.kg_weight:
            th = self.transh
            r_c = torch.full_like(users, self.rel_base + CONSUMES)
            pos_e = th.energy(eu, r_c, ep, self.consumes_translation(e, users, pos, pos))
            neg_e = th.energy(eu, r_c, en, self.consumes_translation(e, users, neg, pos))
            kg = th.margin_loss(pos_e, neg_e)
            parts = [eu, ep]
            kg_triples = self._sample_kg(users.device)
            if kg_triples is not None:
                h, r, t, r2, t2 = kg_triples
                kg = kg + th.margin_loss(th.energy(e[h], r, e[t]), th.energy(e[h], r2, e[t2]))
                parts += [e[h], e[t]]
            out["kg"] = c.kg_weight * kg
            if c.norm_weight:
                out["norm"] = c.norm_weight * th.constraint_loss(torch.cat(parts))
        return out

    # ------------------------------------------------------------ scoring
    def _cos_all(self, users: Tensor) -> Tensor:
        e = self._embeddings()
        u = F.normalize(e[users + self.user_off], dim=-1)
        it = F.normalize(e[self.ent_off : self.ent_off + self.num_items], dim=-1)
        return u @ it.t()

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        s = self._cos_all(users)
        if self.item_bias is not None:
            s = s + self.config.rec_temperature * self.item_bias
        if self._uses_intent_score() and self.lam:
            s = (1 - self.lam) * s + self.lam * self.intent_scores(users)
        return s

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        e = self._embeddings()
        u = F.normalize(e[users + self.user_off], dim=-1)
        it = F.normalize(e[items + self.ent_off], dim=-1)
        s = torch.einsum("bd,bcd->bc", u, it)
        if self.item_bias is not None:
            s = s + self.config.rec_temperature * self.item_bias[items]
        if self._uses_intent_score() and self.lam:
            s = (1 - self.lam) * s + self.lam * self.intent_scores(users).gather(1, items)
        return s

    # ------------------------------------------------------------ write-back / tuning
    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        return self._embeddings()[users + self.user_off]

    def item_embeddings(self) -> Tensor:
        return self._embeddings()[self.ent_off : self.ent_off + self.num_items]

    def intent_embeddings(self) -> Tensor:
        return self._intent_emb(self._embeddings())

    def score_decomposition(self) -> dict | None:
        r"""Eq. 9–11 from written-back vectors (``None`` with ``item_bias``, a term outside them): ``lam`` (the λ
        the run ranks with; 0 where intent scoring is off), ``intent_vectors`` ``[T, d]`` (the propagated :math:`\mathbf{e}_a`; ``None`` without intents),
        ``user_sets`` ``[U, m]`` / ``item_sets`` ``[I, n]`` (:math:`\mathcal{I}_u`, :math:`\mathcal{I}_i` as
        intent indices, -1 padded). :func:`score_terms` recomputes the score from these and the stored user and
        item vectors, term by term."""
        if self.item_bias is not None:  # a per-item term outside Eq. 9-11: no decomposition is claimed
            return None
        return {"kind": "ikgr", "lam": float(self.eval_params()["lam"]),
                "intent_vectors": self.intent_embeddings().detach() if self.num_intents else None,
                "user_sets": self.user_sets, "item_sets": self.item_sets}

    def inductive_state(self) -> dict | None:
        """What embedding a node unseen in training needs (:func:`embed_new_node`): the trained weights of the
        KG convolution, the text projections, and every training node's input features
        :math:`\mathbf{h}^{(0)}` (rows: users, then entities with items first, then intents), with the
        relation layout of the convolution graph. ``None`` with more than one convolution layer (a new node's
        vector would then need its neighbours' intermediate states, not kept), and with ``item_bias`` or
        ``user_recency`` (terms the inductive path does not reproduce)."""
        if len(self.convs) != 1 or self.item_bias is not None or self.config.user_recency > 0:
            return None  # the inductive vectors and eq. 9-11 scores have neither an item bias nor recency weights
        conv = self.convs[0]
        with torch.no_grad():
            x0 = self.input_features().detach().float().cpu()
        return {
            "version": 1, "act": conv.act_name, "aggr": self.config.aggr,
            "lin_weight": conv.lin.weight.detach().cpu(),
            "lin_bias": None if conv.lin.bias is None else conv.lin.bias.detach().cpu(),
            "rel_emb": conv.rel_emb.weight.detach().cpu(),
            "num_rel_total": self.num_rel_total, "rel_base": self.rel_base,
            "text_proj": {k: v.weight.detach().cpu() for k, v in self.text_proj.items()},
            "user_off": self.user_off, "ent_off": self.ent_off, "int_off": self.int_off,
            "num_users": self.num_users, "num_items": self.num_items, "num_entities": self.num_entities,
            "num_intents": self.num_intents, "x0": x0,
            "self_weight": float(self.config.self_weight),
            "use_intents": bool(self.config.use_intents), "related_intents": bool(self.config.related_intents),
            "conv_interactions": bool(self.config.conv_interactions),
            "max_item_intents": int(self.config.max_item_intents), "lam": float(self.eval_params()["lam"]),
            "max_user_intents": int(self.config.max_user_intents),
            "inherit_user_intents": bool(self.config.inherit_user_intents),
            # how the run's intents became nodes: cold start maps a stored intent the same way
            "intent_map": None if self.intent_map is None else self.intent_map.cpu(),
            "min_intent_items": int(self.config.min_intent_items),
            "merge_intents": float(self.config.merge_intents),
            "intent_text": (torch.nn.functional.normalize(self.intent_text.detach().float().cpu(), dim=1)
                            if self.config.merge_intents > 0 and hasattr(self, "intent_text") else None),
        }

    def eval_grid(self) -> dict[str, list[float]]:
        if self._uses_intent_score() and self.config.tune_lambda:
            return {"lam": list(self.config.lambda_grid)}
        return {}

    def set_eval_param(self, name: str, value: float) -> None:
        if name != "lam":
            raise KeyError(name)
        self.lam = float(value)

    def eval_params(self) -> dict[str, float]:
        return {"lam": self.lam if self._uses_intent_score() else 0.0}


def _in_sets(sets: Tensor, other: Tensor) -> Tensor:
    """``[B, m]``: whether each (non-padding) entry of ``sets`` ``[B, m]`` is in the same row of ``other``."""
    return ((sets[:, :, None] == other[:, None, :]) & (other[:, None, :] >= 0)).any(-1) & (sets >= 0)


def _trim(sets: Tensor) -> Tensor:
    """Intent sets (-1 padded) without the trailing columns that are padding in every row."""
    used = torch.nonzero((sets >= 0).any(0))
    return sets[:, : int(used[-1]) + 1 if used.numel() else 1]


def score_terms(user_vec: Sequence[float], item_vec: Sequence[float], lam: float,
                user_intents: Sequence[tuple[str, Sequence[float]]] = (),
                item_intents: Sequence[tuple[str, Sequence[float]]] = ()) -> list[dict]:
    r"""IKGR's score of one (user, item) pair split into the terms that sum to it (Eq. 9–11):

    .. math::
        s(u, i) = \underbrace{(1 - \lambda)\cos(\mathbf{e}_u, \mathbf{e}_i)}_{\text{embedding}}
            + \sum_{a \in \mathcal{I}_u} \underbrace{\frac{\lambda}{|\mathcal{I}_u|}
              \max_{b \in \mathcal{I}_i} \cos(\mathbf{e}_a, \mathbf{e}_b)}_{\text{intent match } (a, b^*)}

    With :math:`\lambda = 0` (or no intent on either side) only the embedding term is non-zero, as in
    :meth:`IKGR.full_scores`. Intents are ``(name, vector)`` pairs. Each term is a dict with ``name``
    (``embedding`` / ``intent match``), ``value`` (its share of the score), ``weight`` and ``cos``; intent
    terms also name ``user_intent`` and the best-matching ``item_intent``. Computed in float64 from the vectors
    the run wrote back, so the sum is the score the run ranked by up to float32 rounding.
    """
    def unit(v: Sequence[float]) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        return a / max(float(np.linalg.norm(a)), 1e-12)

    cos = float(unit(user_vec) @ unit(item_vec))
    terms = [{"name": "embedding", "value": (1.0 - lam) * cos if lam else cos, "weight": 1.0 - lam, "cos": cos}]
    if not lam or not user_intents:
        return terms
    w = lam / len(user_intents)
    if not item_intents:
        terms.append({"name": "intent match", "value": 0.0, "weight": lam, "cos": 0.0, "user_intent": None,
                      "item_intent": None, "note": "the item has no intent, so the intent term is 0"})
        return terms
    names_b = [n for n, _ in item_intents]
    B = np.stack([unit(v) for _, v in item_intents])
    for name_a, va in user_intents:
        sims = B @ unit(va)
        k = int(np.argmax(sims))
        terms.append({"name": "intent match", "value": w * float(sims[k]), "weight": w, "cos": float(sims[k]),
                      "user_intent": name_a, "item_intent": names_b[k]})
    return terms


def embed_new_node(state: dict, neighbours: Sequence[tuple[int, Tensor]], *, text: Tensor | None = None,
                   kind: str = "item", h_self: Tensor | None = None) -> Tensor:
    r"""Eq. 3 for one node the model never trained, from :meth:`IKGR.inductive_state`:

    .. math::
        \mathbf{e}_v = \sigma\Big(\mathbf{W}\big(\mathbf{h}_v
            + \operatorname*{AGG}_{(r, u) \in \mathcal{N}(v)} (\mathbf{h}_u + \mathbf{e}_r)\big)
            + \mathbf{b}\Big), \qquad \mathbf{h}_v = \mathbf{P}_{\text{kind}}\,\mathbf{t}_v

    The node has no learned vector of its own, so :math:`\mathbf{h}_v` is its projected text vector
    :math:`\mathbf{t}_v` (zero without text); ``h_self`` overrides it (a training node's own
    :math:`\mathbf{h}^{(0)}`, which makes this exactly the model's Eq. 3 for that node: the test of this
    function). ``neighbours`` are ``(r, h_u)``: the convolution relation of the edge *into* the node (a
    triple's relation for a head→node edge, relation + ``num_rel_total`` for the reversed edge of a triple whose
    head is the node) and the neighbour's input features. The neighbours' own vectors do not change: adding a
    node to a mean-aggregated graph would shift them slightly, which retraining would pick up.
    """
    W, b, rel = state["lin_weight"], state["lin_bias"], state["rel_emb"]
    if h_self is not None:
        h = h_self.float()
    elif text is not None and kind in state["text_proj"]:
        h = state["text_proj"][kind] @ text.float()
    else:
        h = torch.zeros(W.shape[1])
    h = h * float(state.get("self_weight", 1.0))
    if neighbours:
        msgs = torch.stack([hu.float() + rel[r] for r, hu in neighbours])
        h = h + (msgs.mean(0) if state["aggr"] == "mean" else msgs.sum(0))
    out = W @ h + (b if b is not None else 0.0)
    act = state["act"]
    if act == "tanh":
        return torch.tanh(out)
    if act == "relu":
        return torch.relu(out)
    if act == "leaky_relu":
        return F.leaky_relu(out)
    return out


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def ikgr_scores(U: np.ndarray, user_intents: list[np.ndarray], V: np.ndarray, item_intents: list[np.ndarray],
                lam: float) -> np.ndarray:
    """Eq. 9–11 of users ``U`` ``[n, d]`` against items ``V`` ``[c, d]``; ``user_intents[u]`` / ``item_intents[j]``
    are ``[m, d]`` intent vectors (possibly empty). ``[n, c]``."""
    s = unit_rows(U) @ unit_rows(V).T
    if not lam:
        return s
    term = np.zeros_like(s)
    for j, B in enumerate(item_intents):
        if len(B) == 0:
            continue
        Bu = unit_rows(B)
        for u, A in enumerate(user_intents):
            if len(A):
                term[u, j] = float((unit_rows(A) @ Bu.T).max(1).mean())
    return (1 - lam) * s + lam * term


def new_user_inputs(state: dict, items: Sequence[int], profile: Sequence[tuple[int, bool]],
                    item_sets: Sequence[Sequence[int]]) -> tuple[list[tuple[int, Tensor]], list[int]]:
    """The eq. 3 neighbourhood (for :func:`embed_new_node`) and the eq. 10 intent set of a user the model never
    trained on, built as training builds them: ``items`` the trained item indices the user took (in order),
    ``profile`` their profile intents ``(intent index, related?)``, ``item_sets[n]`` the intent indices of
    ``items[n]``. The set holds the profile intents first, then the taken items' intents by frequency (first
    seen first among equals), capped at ``max_user_intents``; the neighbourhood has the *consumes* edges (if the
    model convolves interactions) and one edge per intent of the set."""
    from kgplatform.data.intent_graph import CONSUMES, HAS_EXACT, HAS_INHERITED, HAS_RELATED

    x0, R, R_kg = state["x0"], state["num_rel_total"], state["rel_base"]
    cap = state.get("max_user_intents", 16)
    nb: list[tuple[int, Tensor]] = []
    if state.get("conv_interactions", True):
        nb += [(R_kg + CONSUMES + R, x0[state["ent_off"] + i]) for i in items]
    sets: list[int] = []
    if not state["use_intents"]:
        return nb, sets
    for t, related in profile:
        if (related and not state["related_intents"]) or t in sets or len(sets) >= cap:
            continue
        sets.append(t)
        nb.append((R_kg + (HAS_RELATED if related else HAS_EXACT) + R, x0[state["int_off"] + t]))
    if state.get("inherit_user_intents", True):
        counts: dict[int, int] = {}
        for its in item_sets:
            for t in its:
                counts[t] = counts.get(t, 0) + 1
        for t in sorted(counts, key=lambda t: -counts[t]):
            if len(sets) >= cap:
                break
            if t not in sets:
                sets.append(t)
                nb.append((R_kg + HAS_INHERITED + R, x0[state["int_off"] + t]))
    return nb, sets
