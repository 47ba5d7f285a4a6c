"""LLM4SBR (*Multi-view Intent Learning and Alignment with LLMs for Session-based Recommendation*), stage 2: a
behavioural session model (SR-GNN or SASRec) whose local and global session vectors are aligned with, and fused
with, the semantic views of the same prefix — what the LLM inferred from the long-term and the short-term view,
localised to catalogue items (stage 1, ``kgp extract --round sessions``).

The inferences are read from :attr:`RecData.session_intents` (every row built from the items before its
prefix's target only; see :mod:`kgplatform.data.session_intents`); a prefix without one uses a learned fallback
vector, or (``fallback="backbone"``) the backbone alone.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from kgplatform.data.recdata import RecData
from kgplatform.data.session_intents import VIEWS, prefix_keys
from kgplatform.errors import TrainingError
from kgplatform.models.base import Recommender, sequence_ce
from kgplatform.models.options import check_choice, check_float, check_int, refuse
from kgplatform.models.sasrec import SASRec, SASRecConfig
from kgplatform.models.srgnn import SRGNN, SRGNNConfig
from kgplatform.nn.llm4sbr import GatedFusion, SemanticView, alignment_loss, uniformity_loss

#: which behavioural vector each semantic view is aligned with
ALIGNED_WITH = {"long": "global", "short": "local"}


@dataclass
class LLM4SBRConfig:
    """LLM4SBR's options (the backbone's own follow RecBole's defaults).

    Args:
        backbone: ``srgnn`` (the paper's main backbone) or ``sasrec``.
        embedding_dim: session / item vector size (SR-GNN ``embedding_size``, SASRec ``hidden_size``).
        max_seq_len: longest prefix read.
        steps: SR-GNN propagation steps.
        num_layers / num_heads / inner_size / dropout: the SASRec backbone's shape.
        views: the semantic views used: ``long`` (the user's history) and/or ``short`` (the current session).
        semantic: ``localized`` (the weighted text vectors of the items each answer was localised to) or
            ``answer`` (the encoded raw answer: the "no localisation" ablation).
        align_weight: weight of the alignment and the uniformity losses (the paper's 0.1); 0 switches them off.
        use_llm: ``False`` drops the semantic views altogether (the backbone alone, trained the same way).
        fallback: what a prefix with no inference in any view is scored with. ``learned`` (the paper's fusion,
            each missing view replaced by a learned vector) or ``backbone`` (``h = h_b``: such a prefix is scored by
            the backbone alone, and the semantic side only changes the prefixes the LLM saw).
        align_mean: how the alignment and uniformity terms are averaged: ``inferred`` (over the batch's prefixes
            that have an inference, the paper's, where every prefix has one) or ``batch`` (their sum over those
            prefixes divided by the batch size, so at low coverage an inferred prefix weighs like one example
            instead of like the whole batch).
        gate_bias: the gate's initial bias :math:`\mathbf{b}_g` (0: :math:`g \approx 0.5` at the start; 3:
            :math:`g \approx 0.95`, starting close to the backbone).
    """

    backbone: str = "srgnn"
    embedding_dim: int = 64
    max_seq_len: int = 50
    steps: int = 1
    num_layers: int = 2
    num_heads: int = 2
    inner_size: int = 256
    dropout: float = 0.5
    views: tuple[str, ...] = VIEWS
    semantic: str = "localized"
    align_weight: float = 0.1
    use_llm: bool = True
    fallback: str = "learned"
    gate_bias: float = 0.0
    align_mean: str = "inferred"

    #: named rows (``llm4sbr:NAME``): the paper's ablations, then variants of the scoring of prefixes the LLM did
    #: not see (``backbone_fallback``), of the gate's start (``open_gate``) and of the alignment's weight at low
    #: coverage (``batch_align``)
    ABLATIONS: ClassVar[tuple[str, ...]] = ("full", "no_llm", "long_only", "short_only", "no_localization",
                                            "no_align", "backbone_fallback", "open_gate", "batch_align")

    def ablation(self, name: str) -> LLM4SBRConfig:
        changes = {"full": {}, "no_llm": {"use_llm": False}, "long_only": {"views": ("long",)},
                   "short_only": {"views": ("short",)}, "no_localization": {"semantic": "answer"},
                   "no_align": {"align_weight": 0.0}, "backbone_fallback": {"fallback": "backbone"},
                   "open_gate": {"gate_bias": 3.0}, "batch_align": {"align_mean": "batch"}}
        if name not in changes:
            raise ValueError(f"unknown ablation {name!r}; one of {', '.join(changes)}")
        return dataclasses.replace(self, **changes[name])

    def validate(self) -> LLM4SBRConfig:
        check_choice(self, "backbone", ("srgnn", "sasrec"))
        for name in ("embedding_dim", "max_seq_len", "steps", "num_layers", "num_heads", "inner_size"):
            check_int(self, name, 1)
        check_float(self, "dropout", 0.0, 1.0, hi_open=True)
        check_float(self, "align_weight", 0.0)
        check_choice(self, "semantic", ("localized", "answer"))
        check_choice(self, "fallback", ("learned", "backbone"))
        check_choice(self, "align_mean", ("inferred", "batch"))
        check_float(self, "gate_bias", -20.0, 20.0)
        if isinstance(self.views, str):
            self.views = tuple(v.strip() for v in self.views.split(",") if v.strip())
        if not isinstance(self.views, (list, tuple)) or not self.views or any(v not in VIEWS for v in self.views) \
                or len(set(self.views)) != len(self.views):
            raise refuse(self, "views", f"must be a non-empty list of distinct {', '.join(VIEWS)}")
        self.views = tuple(v for v in VIEWS if v in self.views)
        if not isinstance(self.use_llm, bool):
            raise refuse(self, "use_llm", "must be true or false")
        if self.backbone == "sasrec" and self.embedding_dim % self.num_heads:
            raise refuse(self, "num_heads", f"embedding_dim {self.embedding_dim} is not divisible by {self.num_heads}")
        return self

    def make_backbone(self, num_users: int, num_items: int) -> Recommender:
        if self.backbone == "srgnn":
            return SRGNN(num_users, num_items, SRGNNConfig(self.embedding_dim, self.steps, self.max_seq_len).validate())
        return SASRec(num_users, num_items, SASRecConfig(
            hidden_size=self.embedding_dim, num_layers=self.num_layers, num_heads=self.num_heads,
            inner_size=self.inner_size, dropout=self.dropout, max_seq_len=self.max_seq_len).validate())


@dataclass(frozen=True)
class PrefixTable:
    """The semantic input of every inferred prefix: ``keys [K]`` sorted (user, prefix_end) keys, ``z [K, V, D]`` the
    per-view vectors, ``has [K, V]`` which views have an inference."""

    keys: Tensor
    z: Tensor
    has: Tensor

    @staticmethod
    def from_data(data: RecData, views: tuple[str, ...], semantic: str) -> PrefixTable:
        """Build the table from ``data.session_intents`` (see :class:`~kgplatform.nn.llm4sbr.SemanticView`)."""
        si = data.session_intents
        if si is None or not len(si):
            raise TrainingError(f"{data.dataset}: LLM4SBR needs session intents",
                                hint=f"run kgp extract --round sessions -d {data.dataset} first")
        if semantic == "answer":
            if si.answer_emb is None:
                raise TrainingError("semantic=answer needs the encoded raw answers (export with an answer encoder)")
            vec = si.answer_emb.float()
        else:
            if data.item_text_emb is None:
                raise TrainingError(f"{data.dataset}: LLM4SBR needs item text vectors", hint=f"run kgp embed -d {data.dataset}")
            t = data.item_text_emb.float()
            w = si.weights * (si.items >= 0)
            vec = (t[si.items.clamp(min=0)] * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-12)
        keep = torch.isin(si.view, torch.tensor([si.views.index(v) for v in views]))
        keys_all = si.keys()[keep]
        keys, inv = torch.unique(keys_all, sorted=True, return_inverse=True)
        col = torch.tensor([views.index(si.views[int(v)]) for v in si.view[keep]], dtype=torch.long)
        z = torch.zeros(keys.numel(), len(views), vec.shape[1])
        has = torch.zeros(keys.numel(), len(views), dtype=torch.bool)
        z[inv, col] = vec[keep]
        has[inv, col] = True
        return PrefixTable(keys, z, has)


class LLM4SBR(Recommender):
    r"""LLM4SBR over an SR-GNN or SASRec backbone, cross-entropy over all items.

    For a prefix the backbone gives a local :math:`\mathbf{s}_l` and a global :math:`\mathbf{s}_g` session vector
    (SR-GNN: last click and attention readout; SASRec: the last position's output and the mean over positions) and
    its own fused vector :math:`\mathbf{h}_b` (SR-GNN: :math:`\mathbf{W}_3[\mathbf{s}_l; \mathbf{s}_g]`; SASRec:
    :math:`\mathbf{s}_l`). Each semantic view :math:`v` gives :math:`\mathbf{p}_v`
    (:class:`~kgplatform.nn.llm4sbr.SemanticView`), and

    .. math::
        \mathbf{h} = \mathrm{GatedFusion}(\mathbf{h}_b; \mathbf{p}_{\text{long}}, \mathbf{p}_{\text{short}}),
        \qquad s(u, j) = \mathbf{h}^\top \mathbf{e}_j,

    .. math::
        \mathcal{L} = \mathcal{L}_{\text{ce}} + \beta \sum_{v} \Big( \mathcal{L}_{\text{align}}(\mathbf{s}_{a(v)},
            \mathbf{p}_v) + \tfrac{1}{2}\big(\mathcal{L}_{\text{uniform}}(\mathbf{s}_{a(v)})
            + \mathcal{L}_{\text{uniform}}(\mathbf{p}_v)\big) \Big)

    with :math:`a(\text{long}) = g`, :math:`a(\text{short}) = l` (same-view pairs), the alignment and uniformity
    terms (:func:`~kgplatform.nn.llm4sbr.alignment_loss`, :func:`~kgplatform.nn.llm4sbr.uniformity_loss`) over the
    batch's prefixes that have an inference for :math:`v` (with ``align_mean="batch"`` each view's terms are
    multiplied by the share of the batch that has that inference), :math:`\beta` = ``align_weight`` and
    :math:`\mathcal{L}_{\text{ce}}` the backbone's (every training target once per epoch,
    :class:`~kgplatform.train.samplers.PrefixSampler`). With ``use_llm=False``, :math:`\mathbf{h} = \mathbf{h}_b`:
    the backbone alone, trained the same way; with ``fallback="backbone"``, :math:`\mathbf{h} = \mathbf{h}_b` for
    every prefix that has no inference in any view.

    Args:
        num_users / num_items: sizes.
        config: :class:`LLM4SBRConfig`.
        table: the inferred prefixes' semantic inputs (:class:`PrefixTable`; ``None`` with ``use_llm=False``).

    Shapes:
        - **loss** batch: ``seq`` ``[B, L]``, ``target`` ``[B]``, ``users`` ``[B]``, ``prefix_end`` ``[B]``,
          optional ``norm``
        - **score**: users ``[B]``, items ``[B, C]``, seq ``[B, L]``, prefix_end ``[B]`` → ``[B, C]``
        - **full_scores**: users ``[B]``, seq ``[B, L]``, prefix_end ``[B]`` → ``[B, num_items]``
    """

    sampler: ClassVar[str] = "prefixes"
    needs_sequence: ClassVar[bool] = True
    needs_prefix_end: ClassVar[bool] = True

    def __init__(self, num_users: int, num_items: int, config: LLM4SBRConfig | None = None,
                 table: PrefixTable | None = None) -> None:
        super().__init__(num_users, num_items)
        self.config = c = config or LLM4SBRConfig()
        self.max_seq_len = c.max_seq_len
        self.backbone = c.make_backbone(num_users, num_items)
        self.use_llm = c.use_llm
        if c.use_llm:
            if table is None:
                raise TrainingError("LLM4SBR needs its prefix table (session intents) unless use_llm=False")
            self.register_buffer("keys", table.keys, persistent=False)
            self.register_buffer("z", table.z, persistent=False)
            self.register_buffer("has", table.has, persistent=False)
            d_text = table.z.shape[-1]
            self.semantic = nn.ModuleDict({v: SemanticView(d_text, c.embedding_dim) for v in c.views})
            self.fusion = GatedFusion(c.embedding_dim, len(c.views), gate_bias=c.gate_bias)

    # ---- the representation
    def lookup(self, users: Tensor, prefix_end: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(z [B, V, D], has [B, V])`` of each (user, prefix_end); no inference (or no ``prefix_end``) → zeros,
        ``False``."""
        B, V = users.shape[0], self.has.shape[1]
        if prefix_end is None or self.keys.numel() == 0:
            return self.z.new_zeros(B, V, self.z.shape[-1]), torch.zeros(B, V, dtype=torch.bool, device=users.device)
        q = prefix_keys(users, prefix_end)
        idx = torch.searchsorted(self.keys, q).clamp(max=self.keys.numel() - 1)
        found = self.keys[idx] == q
        z = self.z[idx] * found[:, None, None]
        return z, self.has[idx] & found[:, None]

    def represent(self, seq: Tensor, users: Tensor, prefix_end: Tensor | None) -> dict[str, Tensor]:
        """``h`` (the scoring vector) and, with the LLM views, ``local``, ``global``, ``p_<view>``, ``has_<view>``."""
        local, glob = self.backbone.session_views(seq)
        hb = self.backbone.session_fuse(local, glob)
        if not self.use_llm:
            return {"h": hb}
        z, has = self.lookup(users, prefix_end)
        out = {"local": local, "global": glob}
        ps = []
        for k, v in enumerate(self.config.views):
            p = self.semantic[v](z[:, k], has[:, k])
            out[f"p_{v}"], out[f"has_{v}"] = p, has[:, k]
            ps.append(p)
        out["h"], out["gate"] = self.fusion(hb, ps)
        if self.config.fallback == "backbone":
            seen = has.any(1)
            out["h"] = torch.where(seen[:, None], out["h"], hb)
            out["gate"] = torch.where(seen[:, None], out["gate"], torch.ones_like(out["gate"]))
        return out

    # ---- the contract
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        r = self.represent(batch["seq"], batch["users"], batch.get("prefix_end"))
        out = {"ce": sequence_ce(r["h"] @ self.backbone.output_items().t(), batch["target"], batch.get("norm"))}
        beta = self.config.align_weight
        if self.use_llm and beta > 0:
            align = uniform = r["h"].new_zeros(())
            for v in self.config.views:
                m = r[f"has_{v}"]
                s, p = r[ALIGNED_WITH[v]][m], r[f"p_{v}"][m]
                share = m.float().mean() if self.config.align_mean == "batch" else 1.0
                align = align + share * alignment_loss(s, p)
                uniform = uniform + share * 0.5 * (uniformity_loss(s) + uniformity_loss(p))
            out["align"] = beta * align
            out["uniform"] = beta * uniform
        return out

    def session_embedding(self, seq: Tensor, users: Tensor, prefix_end: Tensor | None = None) -> Tensor:
        return self.represent(_need(seq), users, prefix_end)["h"]

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None,
              prefix_end: Tensor | None = None) -> Tensor:
        h = self.session_embedding(seq, users, prefix_end)
        return torch.einsum("bd,bcd->bc", h, self.backbone.output_items()[items])

    def full_scores(self, users: Tensor, seq: Tensor | None = None, prefix_end: Tensor | None = None) -> Tensor:
        return self.session_embedding(seq, users, prefix_end) @ self.backbone.output_items().t()

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None,
                        prefix_end: Tensor | None = None) -> Tensor | None:
        return None if seq is None else self.session_embedding(seq, users, prefix_end)

    def item_embeddings(self) -> Tensor:
        return self.backbone.output_items()


def _need(seq: Tensor | None) -> Tensor:
    if seq is None:
        raise ValueError("LLM4SBR scores a session: pass seq (the user's history, right-padded with -1)")
    return seq


def build_llm4sbr(train: RecData, cfg: LLM4SBRConfig) -> LLM4SBR:
    """The model from a training view (its ``session_intents`` hold every prefix's inference, each made from the
    items before that prefix's target only)."""
    table = PrefixTable.from_data(train, cfg.views, cfg.semantic) if cfg.use_llm else None
    return LLM4SBR(train.num_users, train.num_items, cfg, table)


__all__ = ["LLM4SBR", "LLM4SBRConfig", "PrefixTable", "build_llm4sbr"]
