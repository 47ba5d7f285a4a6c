"""Ingest stage: load a dataset from files, validate every row, then write it to the graph.

>>> from kgplatform.ingest import load_dataset, write_dataset
>>> data = load_dataset("movielens-100k", Path("../shared/data/movielens-100k"))
>>> write_dataset(graph, data)
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .amazon import load_amazon_beauty, load_amazon_games
from .generic import load_generic
from .model import Fact, ParsedDataset
from .movielens import load_movielens
from .writer import IngestReport, write_dataset

#: dataset kind -> (loader, default dataset name, default folder under the data dir)
LOADERS: dict[str, tuple[Callable[..., ParsedDataset], str, str]] = {
    "movielens-100k": (load_movielens, "movielens-100k", "movielens-100k"),
    "amazon-beauty": (load_amazon_beauty, "amazon-beauty", "amazon-beauty"),
    "amazon-games": (load_amazon_games, "amazon-games", "amazon-games"),
    "generic": (load_generic, "", ""),
}


#: Dataset names: ids become ``<name>:<raw id>``, so no ':' and no whitespace; short enough for index keys.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def check_dataset_name(name: str) -> str:
    """A dataset name is 1-100 letters, digits, '_', '.', '-' (starting with a letter or digit)."""
    if not _NAME.match(name):
        raise ConfigError(f"bad dataset name {name[:60]!r}",
                          hint="1-100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def load_dataset(kind: str, path: Path, *, name: str | None = None, session_gap_s: int | None = 1800,
                 dbpedia_dir: Path | None = None, with_kg: bool = True) -> ParsedDataset:
    """Parse and validate a dataset of ``kind`` from ``path`` (nothing is written)."""
    if kind not in LOADERS:
        raise ConfigError(f"unknown dataset kind {kind!r}", hint=f"one of: {', '.join(LOADERS)}")
    loader, default_name, _ = LOADERS[kind]
    dataset = default_name if name is None else name
    if not dataset:
        raise ConfigError("the generic loader needs a dataset name (--name)" if kind == "generic"
                          else "the dataset name (--name) must not be empty")
    check_dataset_name(dataset)
    if session_gap_s is not None and session_gap_s < 0:
        raise ConfigError(f"the session gap must be >= 0 seconds, got {session_gap_s}")
    if kind == "movielens-100k":
        return load_movielens(path, dataset=dataset, dbpedia_dir=dbpedia_dir, session_gap_s=session_gap_s,
                              with_kg=with_kg)
    if kind == "generic":
        return load_generic(path, dataset=dataset, session_gap_s=session_gap_s)
    return loader(path, dataset=dataset)


__all__ = ["LOADERS", "check_dataset_name", "load_dataset", "write_dataset", "IngestReport", "ParsedDataset", "Fact",
           "load_movielens", "load_amazon_beauty", "load_amazon_games", "load_generic"]
