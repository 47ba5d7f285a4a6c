"""Shared CLI plumbing: settings on the context, the graph connection, output helpers."""
from __future__ import annotations

import json
import sys
from typing import Any

import typer
from pydantic import ValidationError

from ..config import Settings
from ..db.graph import Graph
from ..errors import ConfigError


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"bad setting {loc}: {first.get('msg')}") from e


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if obj is None:
        obj = ctx.find_root().obj = load_settings()
    return obj


def info(msg: str) -> None:
    """Progress and notes go to stderr; results go to stdout."""
    print(msg, file=sys.stderr)


def open_graph(ctx: typer.Context, *, start_local: bool = True, migrate: bool = True) -> Graph:
    """Connect (starting the local server if needed) and bring the schema up to date."""
    from ..db import connect
    from ..db.migrations import migrate as run_migrations

    graph = connect(settings(ctx), start_local=start_local, log=info)
    try:
        if migrate:
            applied = run_migrations(graph)
            for m in applied:
                info(f"applied migration V{m.version:04d} {m.description}")
    except BaseException:
        graph.close()
        raise
    return graph


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str, sort_keys=False) + "\n")
