"""Recommenders and the explicit model registry.

``MODELS`` maps a name to a :class:`ModelSpec`: the class, its typed config, a builder that turns a
*training view* (:func:`kgplatform.data.training_view`: a :class:`~kgplatform.data.recdata.RecData` holding
only training interactions) into a model (plain sizes and tensors — the models never see the dataset object),
and training defaults. Builders cannot see validation or test interactions. No name-based imports.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kgplatform.data.contract import item_counts, require_training, train_pairs, training_view
from kgplatform.data.recdata import RecData
from kgplatform.data.split import Split
from kgplatform.errors import TrainingError
from kgplatform.models.base import Recommender
from kgplatform.models.bpr import BPRConfig, BPRMF
from kgplatform.models.gru4rec import GRU4Rec, GRU4RecConfig
from kgplatform.models.ikgr import IKGR, IKGRConfig
from kgplatform.models.kgcn import KGCN, KGCNConfig
from kgplatform.models.lightgcn import LightGCN, LightGCNConfig
from kgplatform.models.llm4sbr import LLM4SBR, LLM4SBRConfig, build_llm4sbr
from kgplatform.models.persona_rec import PersonaRecConfig, PersonaSeqRec, build_persona_rec
from kgplatform.models.pop import POP, POPConfig, recbole_batch_counts
from kgplatform.models.sasrec import SASRec, SASRecConfig
from kgplatform.models.srgnn import SRGNN, SRGNNConfig
from kgplatform.nn.user_features import user_feature_fusion


def _build_pop(train: RecData, cfg: POPConfig, gen: torch.Generator) -> POP:
    if cfg.count == "recbole":
        users, items = train_pairs(train)
        counts = recbole_batch_counts(
            users, items, train.num_items, batch_size=cfg.recbole_batch_size, neg=cfg.recbole_neg, generator=gen
        )
    else:
        counts = item_counts(train)
    return POP(train.num_users, train.num_items, counts)


def _build_bpr(train: RecData, cfg: BPRConfig, gen: torch.Generator) -> BPRMF:
    return BPRMF(train.num_users, train.num_items, cfg,
                 user_feature_fusion(train, cfg.user_features, cfg.embedding_dim, "bpr", cfg.knowledge_reg,
                                     cfg.knowledge_dropout, cfg.knowledge_fallback))


def _build_sasrec(train: RecData, cfg: SASRecConfig, gen: torch.Generator) -> SASRec:
    return SASRec(train.num_users, train.num_items, cfg,
                  user_feature_fusion(train, cfg.user_features, cfg.hidden_size, "sasrec", cfg.knowledge_reg,
                                      cfg.knowledge_dropout, cfg.knowledge_fallback))


def _kg(data: RecData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if data.has_kg:
        return data.kg_heads, data.kg_rels, data.kg_tails
    z = torch.zeros(0, dtype=torch.long)
    return z, z, z


def _build_kgcn(train: RecData, cfg: KGCNConfig, gen: torch.Generator) -> KGCN:
    h, r, t = _kg(train)
    return KGCN(train.num_users, train.num_items, train.num_entities, train.num_relations, h, r, t, cfg, gen)


def _build_ikgr(train: RecData, cfg: IKGRConfig, gen: torch.Generator) -> IKGR:
    return IKGR.from_training_view(train, cfg)


def _build_lightgcn(train: RecData, cfg: LightGCNConfig, gen: torch.Generator) -> LightGCN:
    users, items = train_pairs(train)  # training interactions only: the graph never sees valid/test items
    return LightGCN(train.num_users, train.num_items, users, items, cfg,
                    user_feature_fusion(train, cfg.user_features, cfg.embedding_dim, "lightgcn", cfg.knowledge_reg,
                                        cfg.knowledge_dropout, cfg.knowledge_fallback))


def _build_gru4rec(train: RecData, cfg: GRU4RecConfig, gen: torch.Generator) -> GRU4Rec:
    return GRU4Rec(train.num_users, train.num_items, cfg)


def _build_srgnn(train: RecData, cfg: SRGNNConfig, gen: torch.Generator) -> SRGNN:
    return SRGNN(train.num_users, train.num_items, cfg)


def _build_llm4sbr(train: RecData, cfg: LLM4SBRConfig, gen: torch.Generator) -> LLM4SBR:
    return build_llm4sbr(train, cfg)


def _build_persona_sasrec(train: RecData, cfg: PersonaRecConfig, gen: torch.Generator) -> PersonaSeqRec:
    return build_persona_rec(train, cfg, gen)


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry. ``train_defaults`` fill the unset fields of the Trainer's config."""

    name: str
    model_cls: type[Recommender]
    config_cls: type
    build: Callable[[RecData, Any, torch.Generator], Recommender]  # (training view, config, generator)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        # every builder refuses the full data: the guard wraps whatever builder an entry registers
        raw = self.build

        def guarded(train: RecData, cfg: Any, gen: torch.Generator) -> Recommender:
            require_training(train, f"model {self.name}")
            return raw(train, cfg, gen)

        guarded.__wrapped__ = raw  # type: ignore[attr-defined]
        object.__setattr__(self, "build", guarded)

    def make_config(self, config: Any = None, **overrides: Any) -> Any:
        """The typed config: ``config`` (an instance or a dict) with ``overrides`` applied, checked.

        Every field's type and range and the cross-field rules are checked here (the config's ``validate()``),
        so a bad option fails with one :class:`TrainingError` naming it before anything is exported or trained;
        obviously numeric values are coerced (``64.0`` → ``64``). A given instance is copied, never modified.
        """
        if config is None:
            cfg = self.config_cls()
        elif isinstance(config, dict):
            cfg = self.config_cls(**_known(self.config_cls, config))
        elif isinstance(config, self.config_cls):
            cfg = dataclasses.replace(config)
        else:
            raise TrainingError(f"{self.name}: config must be {self.config_cls.__name__} or a dict")
        cfg = dataclasses.replace(cfg, **_known(self.config_cls, overrides)) if overrides else cfg
        return cfg.validate()


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise TrainingError(
            f"{cls.__name__}: unknown option(s) {', '.join(sorted(unknown))}",
            hint=f"known: {', '.join(sorted(names))}",
        )
    return dict(values)


MODELS: dict[str, ModelSpec] = {
    "pop": ModelSpec("pop", POP, POPConfig, _build_pop, {"epochs": 0}, "item popularity in training"),
    "bpr": ModelSpec(
        "bpr", BPRMF, BPRConfig, _build_bpr,
        {"epochs": 300, "batch_size": 2048, "lr": 1e-3, "eval_every": 5},
        "matrix factorisation with the BPR loss",
    ),
    "sasrec": ModelSpec(
        "sasrec", SASRec, SASRecConfig, _build_sasrec,
        {"epochs": 200, "batch_size": 256, "lr": 1e-3, "eval_every": 1},
        "self-attentive sequential model, cross-entropy over all items",
    ),
    "kgcn": ModelSpec(
        "kgcn", KGCN, KGCNConfig, _build_kgcn,
        {"epochs": 300, "batch_size": 2048, "lr": 2e-3, "eval_every": 5},
        "KG convolutional network (user-specific neighbourhood attention)",
    ),
    "ikgr": ModelSpec(
        "ikgr", IKGR, IKGRConfig, _build_ikgr,
        {"epochs": 100, "batch_size": 2048, "lr": 5e-3, "eval_every": 2},
        "intent-augmented KG recommender (KG conv + TransH + intent translation/scoring)",
    ),
    "lightgcn": ModelSpec(
        "lightgcn", LightGCN, LightGCNConfig, _build_lightgcn,
        {"epochs": 300, "batch_size": 2048, "lr": 1e-3, "eval_every": 5},
        "LightGCN: layer-mean propagation over the training user-item graph, BPR loss",
    ),
    "gru4rec": ModelSpec(
        "gru4rec", GRU4Rec, GRU4RecConfig, _build_gru4rec,
        {"epochs": 200, "batch_size": 256, "lr": 1e-3, "eval_every": 1},
        "GRU4Rec: recurrent sequential model, cross-entropy over all items",
    ),
    "srgnn": ModelSpec(
        "srgnn", SRGNN, SRGNNConfig, _build_srgnn,
        {"epochs": 200, "batch_size": 512, "lr": 1e-3, "eval_every": 1},
        "SR-GNN: gated GNN over each history's session graph, attention readout, cross-entropy over all items",
    ),
    "llm4sbr": ModelSpec(
        "llm4sbr", LLM4SBR, LLM4SBRConfig, _build_llm4sbr,
        {"epochs": 200, "batch_size": 512, "lr": 1e-3, "eval_every": 1},
        "LLM4SBR: an SR-GNN or SASRec backbone aligned and gated with the LLM's localised long- and short-term "
        "session intents (kgp extract --round sessions)",
    ),
    "persona-sasrec": ModelSpec(
        "persona-sasrec", PersonaSeqRec, PersonaRecConfig, _build_persona_sasrec,
        {"epochs": 200, "batch_size": 256, "lr": 1e-3, "eval_every": 1},
        "persona-driven session recommender: HDGI personas (training graph) gated into SASRec/GRU4Rec with text-"
        "initialised items, top-N re-ranked by the session's intent",
    ),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise TrainingError(f"unknown model {name!r}", hint=f"one of: {', '.join(MODELS)}") from None


def build_model(
    name: str, data: RecData, split: Split | None = None, config: Any = None,
    generator: torch.Generator | None = None,
) -> Recommender:
    """Instantiate registry model ``name`` from the training part of ``data``.

    ``data`` is either a training view, or the full data together with its ``split`` (the training view is
    cut here). The builder only ever sees the training view.
    """
    spec = get_spec(name)
    cfg = spec.make_config(config)
    train = data if data.is_training_view else training_view(data, split)
    require_training(train, f"model {name}")
    return spec.build(train, cfg, generator or torch.Generator().manual_seed(0))


__all__ = [
    "MODELS", "ModelSpec", "Recommender", "build_model", "get_spec",
    "POP", "POPConfig", "BPRMF", "BPRConfig", "SASRec", "SASRecConfig", "KGCN", "KGCNConfig", "IKGR", "IKGRConfig",
    "LightGCN", "LightGCNConfig", "GRU4Rec", "GRU4RecConfig", "SRGNN", "SRGNNConfig", "LLM4SBR", "LLM4SBRConfig", "PersonaRecConfig", "PersonaSeqRec",
]
