"""The Cypher query registry: the only place that turns ``.cypher`` file text into driver queries.

Files live in ``cypher/<area>/<verb_object>.cypher``, one statement each, with a header::

    // mode: read|write
    // params: $rows (list of {id, ...})
    // <free description>

A query is addressed by ``"<area>/<name>"`` (e.g. ``"ingest/merge_users"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from ..config import resource_dir
from ..errors import QueryError

_HEADER = re.compile(r"^//\s*(\w+)\s*:\s*(.*)$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SLOT = re.compile(r"\{\{([a-z]+)\}\}")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    text: str
    mode: Literal["read", "write"]
    params: tuple[str, ...] = field(default=())
    description: str = ""
    path: Path | None = None
    identifiers: tuple[str, ...] = ()

    def render(self, identifiers: dict[str, str] | None = None) -> str:
        """The statement with ``{{name}}`` identifier slots filled (validated by :mod:`kgplatform.schema`)."""
        if not self.identifiers:
            return self.text
        from ..schema import check_identifier

        given = identifiers or {}
        missing = [k for k in self.identifiers if k not in given]
        if missing:
            raise QueryError(f"query {self.name!r} needs identifiers: {', '.join(missing)}")
        text = self.text
        for k in self.identifiers:
            try:
                text = text.replace("{{" + k + "}}", check_identifier(k, given[k]))
            except ValueError as e:
                raise QueryError(f"query {self.name!r}: {e}") from e
        return text


def parse_query_file(name: str, path: Path) -> NamedQuery:
    raw = path.read_text(encoding="utf-8")
    mode = None
    description: list[str] = []
    body: list[str] = []
    in_header = True
    for line in raw.splitlines():
        stripped = line.strip()
        if in_header and stripped.startswith("//"):
            m = _HEADER.match(stripped)
            if m and m.group(1).lower() == "mode":
                mode = m.group(2).strip().lower()
            elif not (m and m.group(1).lower() == "params"):
                description.append(stripped.lstrip("/ ").strip())
            continue
        if in_header and not stripped:
            continue
        in_header = False
        body.append(line)
    text = "\n".join(body).strip().rstrip(";").strip()
    if mode not in ("read", "write"):
        raise QueryError(f"{path}: header must declare '// mode: read' or '// mode: write'")
    if not text:
        raise QueryError(f"{path}: no statement")
    params = tuple(dict.fromkeys(_PARAM.findall(text)))
    slots = tuple(dict.fromkeys(_SLOT.findall(text)))
    return NamedQuery(name, text, mode, params, " ".join(d for d in description if d), path,  # type: ignore[arg-type]
                      slots)


class QueryRegistry:
    """All named queries under one folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or resource_dir("cypher")
        self._queries: dict[str, NamedQuery] = {}
        for path in sorted(self.root.rglob("*.cypher")):
            name = path.relative_to(self.root).with_suffix("").as_posix()
            self._queries[name] = parse_query_file(name, path)

    def __getitem__(self, name: str) -> NamedQuery:
        try:
            return self._queries[name]
        except KeyError:
            raise QueryError(f"unknown query {name!r}", hint=f"queries live in {self.root}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._queries

    def __iter__(self):
        return iter(self._queries.values())

    def names(self) -> list[str]:
        return sorted(self._queries)


@lru_cache(maxsize=1)
def default_registry() -> QueryRegistry:
    return QueryRegistry()
