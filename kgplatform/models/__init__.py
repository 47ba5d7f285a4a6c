"""Recommenders and the explicit model registry.

``MODELS`` maps a name to a :class:`ModelSpec`: the class, its typed config, a builder that turns a
:class:`~kgplatform.train.data.RecData` plus its training split into constructor arguments (plain sizes and
tensors — the models never see the dataset object), and training defaults. No name-based imports.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kgplatform.errors import TrainingError
from kgplatform.eval.split import Split
from kgplatform.models.base import Recommender
from kgplatform.models.bpr import BPRConfig, BPRMF
from kgplatform.models.ikgr import IKGR, IKGRConfig
from kgplatform.models.kgcn import KGCN, KGCNConfig
from kgplatform.models.pop import POP, POPConfig, recbole_batch_counts
from kgplatform.models.sasrec import SASRec, SASRecConfig
from kgplatform.train.data import RecData


def _build_pop(data: RecData, split: Split, cfg: POPConfig, gen: torch.Generator) -> POP:
    if cfg.count == "recbole":
        users, items = split.train_pairs()
        counts = recbole_batch_counts(
            users, items, data.num_items, batch_size=cfg.recbole_batch_size, neg=cfg.recbole_neg, generator=gen
        )
    else:
        counts = split.item_counts()
    return POP(data.num_users, data.num_items, counts)


def _build_bpr(data: RecData, split: Split, cfg: BPRConfig, gen: torch.Generator) -> BPRMF:
    return BPRMF(data.num_users, data.num_items, cfg)


def _build_sasrec(data: RecData, split: Split, cfg: SASRecConfig, gen: torch.Generator) -> SASRec:
    return SASRec(data.num_users, data.num_items, cfg)


def _kg(data: RecData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if data.has_kg:
        return data.kg_heads, data.kg_rels, data.kg_tails
    z = torch.zeros(0, dtype=torch.long)
    return z, z, z


def _build_kgcn(data: RecData, split: Split, cfg: KGCNConfig, gen: torch.Generator) -> KGCN:
    h, r, t = _kg(data)
    return KGCN(data.num_users, data.num_items, data.num_entities, data.num_relations, h, r, t, cfg, gen)


def _edges3(edges, kind) -> torch.Tensor | None:
    if edges is None:
        return None
    return torch.cat([edges, kind.view(-1, 1)], 1)


def _build_ikgr(data: RecData, split: Split, cfg: IKGRConfig, gen: torch.Generator) -> IKGR:
    h, r, t = _kg(data)
    users, items = split.train_pairs()
    return IKGR(
        data.num_users,
        data.num_items,
        data.num_entities,
        data.num_relations,
        torch.stack([h, r, t], 1),
        users,
        items,
        num_intents=data.num_intents,
        item_intents=_edges3(data.item_intents, data.item_intent_kind),
        user_intents=_edges3(data.user_intents, data.user_intent_kind),
        item_text=data.item_text_emb,
        user_text=data.user_text_emb,
        intent_text=data.intent_text_emb,
        config=cfg,
    )


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry. ``train_defaults`` fill the unset fields of the Trainer's config."""

    name: str
    model_cls: type[Recommender]
    config_cls: type
    build: Callable[[RecData, Split, Any, torch.Generator], Recommender]
    train_defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def make_config(self, config: Any = None, **overrides: Any) -> Any:
        """The typed config: ``config`` (an instance or a dict) with ``overrides`` applied."""
        if config is None:
            cfg = self.config_cls()
        elif isinstance(config, dict):
            cfg = self.config_cls(**_known(self.config_cls, config))
        elif isinstance(config, self.config_cls):
            cfg = config
        else:
            raise TrainingError(f"{self.name}: config must be {self.config_cls.__name__} or a dict")
        return dataclasses.replace(cfg, **_known(self.config_cls, overrides)) if overrides else cfg


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
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise TrainingError(f"unknown model {name!r}", hint=f"one of: {', '.join(MODELS)}") from None


def build_model(
    name: str, data: RecData, split: Split, config: Any = None, generator: torch.Generator | None = None
) -> Recommender:
    """Instantiate registry model ``name`` for ``data`` (training part of ``split`` only)."""
    spec = get_spec(name)
    cfg = spec.make_config(config)
    return spec.build(data, split, cfg, generator or torch.Generator().manual_seed(0))


__all__ = [
    "MODELS", "ModelSpec", "Recommender", "build_model", "get_spec",
    "POP", "POPConfig", "BPRMF", "BPRConfig", "SASRec", "SASRecConfig", "KGCN", "KGCNConfig", "IKGR", "IKGRConfig",
]
