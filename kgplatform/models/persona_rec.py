"""Persona-aware session recommendation (stage 2 of the persona paper): a sequential backbone whose items start
from their text (LLM/sentence-encoder) vectors, whose session representation is fused with the user's HDGI
persona through a gate, and whose top-N candidates are re-ranked by the current session's intent.

Reconstruction choices (the paper's text gives the ideas, not the formulas; each is a config switch):

* **persona vector** = the centroid of the user's persona (``persona_vector="centroid"``, default) rather than
  the user's own HDGI vector (``"user"``): a persona is shared by hundreds of users, so it carries no trace of
  one user's training targets (no shortcut in training) and it is what an anonymous session can be given;
* **gate**: :math:`\\mathbf{g} = \\sigma(\\mathbf{W}_g[\\mathbf{h}; \\mathbf{p}] + \\mathbf{b}_g)`,
  :math:`\\mathbf{h}' = (1 - \\mathbf{g})\\odot\\mathbf{h} + \\mathbf{g}\\odot\\mathbf{p}` with
  :math:`\\mathbf{p} = \\mathbf{W}_p\\,\\mathbf{c}_{\\pi(u)}` the projected persona centroid;
* **item init**: the item table starts from the PCA projection of the items' text vectors (scaled to the
  backbone's initial spread), ``item_init="random"`` is the ablation;
* **re-ranking**: the backbone's top ``rerank_n`` items are re-ordered by
  :math:`(1 - \\mu)\\, z(s) + \\mu\\, z(\\cos(\\mathbf{t}_{\\text{session}}, \\mathbf{t}_i))`, :math:`z` the
  standardisation within the N candidates and :math:`\\mathbf{t}_{\\text{session}}` the mean text vector of
  the session's last ``rerank_window`` items (its short-term intent); :math:`\\mu` is chosen on validation
  (``eval_grid``), items below the top N keep their order after them;
* **anonymous** scoring (``anonymous=True``): no user id — the persona is inferred from the history items
  alone through the inductive HDGI encoder (:meth:`kgplatform.nn.hdgi.HDGI.encode_items`), and the model reads
  only the target's session (``history_scope = "session"``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgplatform.data.contract import require_training
from kgplatform.data.recdata import RecData
from kgplatform.errors import TrainingError
from kgplatform.models.base import NextItemRecommender, sequence_ce
from kgplatform.models.gru4rec import GRU4Rec, GRU4RecConfig
from kgplatform.models.options import check_bool, check_choice, check_float, check_floats, check_int, refuse
from kgplatform.models.personas import METAPATHS, HDGIConfig, Personas, assign, learn_personas, persona_vectors
from kgplatform.models.sasrec import SASRec, SASRecConfig


@dataclass
class PersonaRecConfig:
    """Settings of :class:`PersonaSeqRec` (backbone fields as :class:`~kgplatform.models.sasrec.SASRecConfig`).

    Args:
        backbone: ``sasrec`` or ``gru4rec``.
        hidden_size / num_layers / num_heads / inner_size / dropout / max_seq_len / layer_norm_eps /
            train_stride: the backbone's (GRU4Rec reads ``hidden_size`` as its embedding size and a GRU of twice
            that).
        persona: ``hdgi`` (the paper), ``mean`` (ablation: personas from the users' mean item text vectors, no
            HDGI) or ``none`` (the bare backbone with text init and re-ranking).
        persona_vector: ``centroid`` or ``user`` (see the module docstring).
        num_personas: K (``0``: chosen by silhouette, see :mod:`kgplatform.models.personas`).
        hdgi_hidden / hdgi_epochs / hdgi_patience / metapaths: HDGI settings.
        item_init: ``text`` or ``random``.
        rerank / rerank_n / rerank_window / rerank_mu / rerank_grid: the re-ranker; ``rerank_mu`` is tuned on
            validation over ``rerank_grid`` (0 in the grid means "no re-ranking" stays possible).
        anonymous: score without user ids (persona inferred from the session's items).
    """

    backbone: str = "sasrec"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 2
    inner_size: int = 256
    dropout: float = 0.5
    max_seq_len: int = 50
    layer_norm_eps: float = 1e-12
    train_stride: int = 1
    persona: str = "hdgi"
    persona_vector: str = "centroid"
    num_personas: int = 0
    hdgi_hidden: int = 64
    hdgi_epochs: int = 300
    hdgi_patience: int = 20
    metapaths: tuple[str, ...] = METAPATHS
    item_init: str = "text"
    rerank: bool = True
    rerank_n: int = 100
    rerank_window: int = 3
    rerank_mu: float = 0.0
    rerank_grid: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    anonymous: bool = False

    ABLATIONS: ClassVar[tuple[str, ...]] = ("full", "no_persona", "mean_persona", "no_llm_init", "no_rerank",
                                            "anonymous")

    def ablation(self, name: str) -> PersonaRecConfig:
        changes = {"full": {}, "no_persona": {"persona": "none"}, "mean_persona": {"persona": "mean"},
                   "no_llm_init": {"item_init": "random"}, "no_rerank": {"rerank": False},
                   "anonymous": {"anonymous": True}}
        if name not in changes:
            raise ValueError(f"unknown ablation {name!r}; one of {', '.join(changes)}")
        return dataclasses.replace(self, **changes[name])

    def validate(self) -> PersonaRecConfig:
        check_choice(self, "backbone", ("sasrec", "gru4rec"))
        for name in ("hidden_size", "num_layers", "num_heads", "inner_size", "max_seq_len", "train_stride",
                     "hdgi_hidden", "hdgi_epochs", "hdgi_patience", "rerank_n", "rerank_window"):
            check_int(self, name, 1)
        check_int(self, "num_personas", 0)
        if self.num_personas == 1:
            raise refuse(self, "num_personas", "must be 0 (chosen by silhouette) or at least 2")
        check_float(self, "dropout", 0.0, 1.0, hi_open=True)
        check_float(self, "layer_norm_eps", 0.0, 1.0, lo_open=True)
        check_choice(self, "persona", ("hdgi", "mean", "none"))
        check_choice(self, "persona_vector", ("centroid", "user"))
        check_choice(self, "item_init", ("text", "random"))
        check_bool(self, "rerank")
        check_bool(self, "anonymous")
        check_float(self, "rerank_mu", 0.0, 1.0)
        check_floats(self, "rerank_grid", 0.0, 1.0)
        if not isinstance(self.metapaths, (list, tuple)) or not self.metapaths or \
                any(m not in METAPATHS for m in self.metapaths):
            raise refuse(self, "metapaths", f"must be a non-empty list of {', '.join(METAPATHS)}")
        self.metapaths = tuple(self.metapaths)
        if self.backbone == "sasrec" and self.hidden_size % self.num_heads:
            raise refuse(self, "num_heads", f"hidden_size {self.hidden_size} is not divisible by {self.num_heads}")
        if self.anonymous and self.persona == "none":
            raise refuse(self, "anonymous", "needs a persona (persona=hdgi or mean)")
        return self

    def hdgi(self) -> HDGIConfig:
        return HDGIConfig(hidden=self.hdgi_hidden, epochs=self.hdgi_epochs, patience=self.hdgi_patience,
                          metapaths=tuple(self.metapaths), k=self.num_personas,
                          user_vectors="mean" if self.persona == "mean" else "hdgi")


def text_init(text: Tensor, dim: int, std: float) -> Tensor:
    """PCA projection of the item text vectors to ``dim`` columns, scaled to per-entry std ``std``."""
    x = text.float() - text.float().mean(0, keepdim=True)
    q = min(dim, x.shape[0], x.shape[1])
    _, _, v = torch.pca_lowrank(x, q=q, center=False, niter=4)
    proj = x @ v[:, :q]
    if q < dim:
        proj = torch.cat([proj, torch.randn(x.shape[0], dim - q) * proj.std()], 1)
    return proj / proj.std().clamp(min=1e-12) * std


class PersonaSeqRec(NextItemRecommender):
    r"""A sequential backbone (SASRec or GRU4Rec) with a gated persona and a session-intent re-ranker.

    .. math::
        \mathbf{h}' = (1 - \mathbf{g}) \odot \mathbf{h}_t + \mathbf{g} \odot \mathbf{W}_p \mathbf{c}_{\pi(u)},
        \quad \mathbf{g} = \sigma\big(\mathbf{W}_g [\mathbf{h}_t; \mathbf{W}_p\mathbf{c}_{\pi(u)}] + \mathbf{b}_g\big),
        \quad s(u, i) = \mathbf{h}'^\top \mathbf{e}_i

    with :math:`\mathbf{h}_t` the backbone's output at the last position, :math:`\mathbf{c}_{\pi(u)}` the HDGI
    centroid of the user's persona and cross-entropy over all items (as SASRec; every target weighs the same).
    The re-ranker and the anonymous mode are described in the module docstring.

    Args:
        num_users / num_items: sizes.
        config: :class:`PersonaRecConfig`.
        personas: the personas learned from the training view (``None`` when ``persona="none"``).
        item_text: item text vectors ``[num_items, d_text]`` (text init and re-ranking; ``None`` disables both).

    Shapes: as :class:`~kgplatform.models.sasrec.SASRec`; the loss batch also reads ``users`` ``[B]``.
    """

    def __init__(self, num_users: int, num_items: int, config: PersonaRecConfig | None = None,
                 personas: Personas | None = None, item_text: Tensor | None = None) -> None:
        super().__init__(num_users, num_items)
        self.config = c = (config or PersonaRecConfig()).validate()
        self.max_seq_len = c.max_seq_len
        self.train_stride = c.train_stride
        self.history_scope = "session" if c.anonymous else "user"
        if c.backbone == "sasrec":
            self.backbone = SASRec(num_users, num_items, SASRecConfig(
                hidden_size=c.hidden_size, num_layers=c.num_layers, num_heads=c.num_heads, inner_size=c.inner_size,
                dropout=c.dropout, max_seq_len=c.max_seq_len, layer_norm_eps=c.layer_norm_eps))
            init_std = 0.02
        else:
            self.backbone = GRU4Rec(num_users, num_items, GRU4RecConfig(
                embedding_dim=c.hidden_size, hidden_size=2 * c.hidden_size, num_layers=c.num_layers,
                dropout=min(c.dropout, 0.3), max_seq_len=c.max_seq_len))
            init_std = float(self.backbone.item_emb.weight[:num_items].detach().std())
        d = c.hidden_size
        if c.item_init == "text" and item_text is not None:
            with torch.no_grad():
                self.backbone.item_emb.weight[:num_items] = text_init(item_text, d, init_std)
        self.persona_on = c.persona != "none" and personas is not None
        if c.persona != "none" and personas is None:
            raise TrainingError("persona-sasrec: persona is on but no personas were given")
        if self.persona_on:
            self.register_buffer("user_persona", persona_vectors(personas, c.persona_vector))  # [U, h]
            self.register_buffer("centroids", personas.centroids.clone())
            self.persona_proj = nn.Linear(self.user_persona.shape[1], d)
            self.gate = nn.Linear(2 * d, d)
            self.personas_hdgi = personas.hdgi  # frozen submodule (inductive encoding), or None
            if personas.item_features is not None:
                self.register_buffer("persona_item_features", personas.item_features.clone())
            self.persona_user_vectors = personas.user_vectors
        has_text = item_text is not None
        if has_text:
            self.register_buffer("item_text", F.normalize(item_text.float(), dim=1))
        self.rerank_on = bool(c.rerank and has_text)
        self.rerank_mu = float(c.rerank_mu)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.persona_on:
            self.persona_proj.reset_parameters()
            self.gate.reset_parameters()

    @property
    def item_emb(self) -> nn.Embedding:  # NextItemRecommender reads self.item_emb
        return self.backbone.item_emb

    # ------------------------------------------------------------------ persona
    def _session_z(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """The persona-space vector of each row's (non-padding) items, inferred without a user id, and the
        number of items per row."""
        valid = seq >= 0
        lens = valid.sum(1)
        if self.persona_user_vectors == "hdgi":
            offsets = torch.zeros(seq.shape[0] + 1, dtype=torch.long, device=seq.device)
            offsets[1:] = torch.cumsum(lens, 0)
            return self.personas_hdgi.encode_items(seq[valid], offsets), lens
        rows = torch.repeat_interleave(torch.arange(seq.shape[0], device=seq.device), lens)
        f = self.persona_item_features
        z = torch.zeros(seq.shape[0], f.shape[1], device=seq.device).index_add_(0, rows, f[seq[valid]])
        return z / lens.clamp(min=1)[:, None].float(), lens

    def infer_persona_index(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """``(persona index [B], weight [B])`` inferred from the items of ``seq`` (``-1`` for an empty row)."""
        z, lens = self._session_z(seq)
        return assign(z, self.centroids, empty=lens == 0)

    def infer_persona(self, seq: Tensor) -> Tensor:
        """Persona vectors ``[B, h]`` inferred from the (non-padding) items of ``seq`` alone."""
        z, lens = self._session_z(seq)
        a, _ = assign(z, self.centroids, empty=lens == 0)
        if self.config.persona_vector == "user":
            return torch.where((a >= 0)[:, None], F.normalize(z, dim=1), torch.zeros_like(z))
        out = torch.zeros(seq.shape[0], self.centroids.shape[1], device=seq.device)
        out[a >= 0] = self.centroids[a[a >= 0]]
        return out

    def persona_of(self, users: Tensor, seq: Tensor | None) -> Tensor:
        if self.config.anonymous and not self.training:
            if seq is None:
                raise TrainingError("anonymous scoring needs the session's items")
            return self.infer_persona(seq)
        return self.user_persona[users]

    def fuse(self, h: Tensor, persona: Tensor) -> Tensor:
        """Gated fusion; ``h`` ``[B, d]`` or ``[B, L, d]``, ``persona`` ``[B, h]``."""
        p = self.persona_proj(persona)
        if h.dim() == 3:
            p = p[:, None, :].expand_as(h)
        g = torch.sigmoid(self.gate(torch.cat([h, p], -1)))
        return (1 - g) * h + g * p

    def session_repr(self, users: Tensor, seq: Tensor) -> Tensor:
        h = self.backbone.last_hidden(seq)
        return self.fuse(h, self.persona_of(users, seq)) if self.persona_on else h

    def encode(self, seq: Tensor) -> Tensor:
        return self.backbone.encode(seq)

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        h = self.backbone.encode(batch["seq"])
        if self.persona_on:
            h = self.fuse(h, self.user_persona[batch["users"]])
        tgt = batch["target"]
        m = tgt >= 0
        logits = h[m] @ self.item_emb.weight[: self.num_items].t()
        return {"ce": sequence_ce(logits, tgt[m], batch.get("norm"))}

    # ------------------------------------------------------------------ scoring
    def _session_text(self, seq: Tensor) -> Tensor:
        w = self.config.rerank_window
        valid = seq >= 0
        lens = valid.sum(1)
        col = torch.arange(seq.shape[1], device=seq.device)[None, :]
        recent = valid & (col >= (lens[:, None] - w))
        idx = torch.where(recent, seq, torch.zeros_like(seq))
        t = (self.item_text[idx] * recent[..., None]).sum(1)
        return F.normalize(t, dim=1)

    def rerank(self, scores: Tensor, seq: Tensor, items: Tensor | None = None) -> Tensor:
        """Re-order the top ``rerank_n`` of ``scores`` (``[B, C]``; ``items`` ``[B, C]``, or all items when
        ``None``) by the session intent; the rest keep their order below them."""
        if not self.rerank_on or self.rerank_mu <= 0 or self.training:
            return scores
        n = min(self.config.rerank_n, scores.shape[1])
        top_s, top_j = torch.topk(scores, n, dim=1)
        cand = top_j if items is None else torch.gather(items, 1, top_j)
        sim = torch.einsum("bd,bnd->bn", self._session_text(seq), self.item_text[cand])

        def z(x: Tensor) -> Tensor:
            return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp(min=1e-6)

        mixed = (1 - self.rerank_mu) * z(top_s) + self.rerank_mu * z(sim)
        finite = torch.isfinite(top_s)
        mixed = torch.where(finite, mixed, top_s)
        fin = scores[torch.isfinite(scores)]
        shift = (float(fin.abs().max()) if fin.numel() else 0.0) + 1e4
        out = scores - shift  # everything below the re-ranked top N, order kept
        return out.scatter(1, top_j, mixed)

    def score(self, users: Tensor, items: Tensor, seq: Tensor | None = None) -> Tensor:
        h = self.session_repr(users, seq)
        s = torch.einsum("bd,bcd->bc", h, self.item_emb(items))
        return self.rerank(s, seq, items)

    def full_scores(self, users: Tensor, seq: Tensor | None = None) -> Tensor:
        s = self.session_repr(users, seq) @ self.item_emb.weight[: self.num_items].t()
        return self.rerank(s, seq)

    def user_embeddings(self, users: Tensor, seq: Tensor | None = None) -> Tensor | None:
        return None if seq is None else self.session_repr(users, seq)

    # ------------------------------------------------------------------ validation-tuned re-ranking weight
    def eval_grid(self) -> dict[str, list[float]]:
        return {"rerank_mu": list(self.config.rerank_grid)} if self.rerank_on else {}

    def set_eval_param(self, name: str, value: float) -> None:
        if name != "rerank_mu":
            raise KeyError(name)
        self.rerank_mu = float(value)

    def eval_params(self) -> dict[str, float]:
        return {"rerank_mu": self.rerank_mu} if self.rerank_on else {}


def for_serving(config: PersonaRecConfig | dict, state_dict: dict[str, Tensor]) -> PersonaSeqRec:
    """Rebuild a trained :class:`PersonaSeqRec` from its checkpoint alone (no dataset, no HDGI training): the
    shapes are read off ``state_dict``; the HDGI part keeps what inductive encoding needs (projections, item
    messages, semantic weights), its metapath operators are left empty."""
    from kgplatform.nn.hdgi import HDGI, MetaPath

    cfg = PersonaRecConfig(**config) if isinstance(config, dict) else config
    cfg = dataclasses.replace(cfg, metapaths=tuple(cfg.metapaths)).validate()
    num_items = state_dict["backbone.item_emb.weight"].shape[0] - 1
    personas = None
    if "user_persona" in state_dict:
        up, cen = state_dict["user_persona"], state_dict["centroids"]
        hdgi = None
        vectors = "mean" if "persona_item_features" in state_dict else "hdgi"
        if vectors == "hdgi":
            msgs = state_dict["personas_hdgi.messages"]
            n_paths = msgs.shape[0]
            in_dim = state_dict["personas_hdgi.encoder.lins.0.weight"].shape[1]
            att = state_dict["personas_hdgi.encoder.att.lin.weight"].shape[0]
            empty = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (1, 1))
            hdgi = HDGI(in_dim, msgs.shape[2], [MetaPath(f"P{j}", empty, ()) for j in range(n_paths)], att)
            hdgi.messages = torch.zeros_like(msgs)
            hdgi.weights = torch.zeros_like(state_dict["personas_hdgi.weights"])
            for p in hdgi.parameters():
                p.requires_grad_(False)
        personas = Personas(user_emb=up, assignment=torch.zeros(up.shape[0], dtype=torch.long),
                            weight=torch.zeros(up.shape[0]), centroids=cen, sizes=torch.zeros(cen.shape[0]),
                            k=cen.shape[0], silhouette={}, top_items=[], top_entities=[], top_intents=[],
                            metapaths=[], metapath_weights=[], losses=[], hdgi=hdgi, user_vectors=vectors,
                            item_features=state_dict.get("persona_item_features"))
    text = state_dict.get("item_text")
    model = PersonaSeqRec(up.shape[0] if personas is not None else 0, num_items, cfg, personas, text)
    model.load_state_dict(state_dict)
    return model.eval()


def build_persona_rec(train: RecData, cfg: PersonaRecConfig, gen: torch.Generator, log=None) -> PersonaSeqRec:
    """Learn the personas from the training view, then build the recommender around them."""
    require_training(train, "persona-sasrec")
    cfg = cfg.validate()
    personas = None
    if cfg.persona != "none":
        personas = learn_personas(train, cfg.hdgi(), gen, log=log)
    text = train.item_text_emb
    if text is None and (cfg.item_init == "text" or cfg.rerank):
        raise TrainingError(f"persona-sasrec on {train.dataset} needs item text vectors (text init, re-ranking)",
                            hint=f"run `kgp embed -d {train.dataset}`, or --set item_init=random --set rerank=false")
    model = PersonaSeqRec(train.num_users, train.num_items, cfg, personas, text)
    model.personas = personas  # not a module attribute of state: for write-back and inspection
    return model


__all__ = ["PersonaRecConfig", "PersonaSeqRec", "build_persona_rec", "for_serving", "text_init"]
