"""Training: the ``RecData`` contract, samplers, the one Trainer and the multi-seed helper.

Names are imported lazily so that ``kgplatform.train.data`` (imported by the models) does not pull in the
Trainer (which imports the models).
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RecData": "kgplatform.train.data",
    "TrainConfig": "kgplatform.train.trainer",
    "Trainer": "kgplatform.train.trainer",
    "TrainResult": "kgplatform.train.trainer",
    "EpochLog": "kgplatform.train.trainer",
    "load_checkpoint": "kgplatform.train.trainer",
    "recommend": "kgplatform.train.trainer",
    "SeedSummary": "kgplatform.train.seeds",
    "run_seeds": "kgplatform.train.seeds",
    "summarize": "kgplatform.train.seeds",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kgplatform.train' has no attribute {name!r}")
