"""Versioned Cypher migrations: ``migrations/V<NNNN>__<description>.cypher``.

Each file is split into statements at a ``;`` that ends a line; statements run in order, each in its own
auto-commit transaction (Neo4j does not mix schema and data writes in one transaction), and every statement
must be idempotent (``IF NOT EXISTS``, ``MERGE``) so a file interrupted half-way can simply be re-run.
An applied file is recorded as ``(:KgpMigration {version, description, checksum, appliedAt})``; editing it
afterwards is an error (checksum mismatch), never a silent re-run.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import resource_dir
from ..errors import MigrationError, QueryError
from .graph import Graph

_NAME = re.compile(r"^V(\d+)__([A-Za-z0-9_]+)\.cypher$")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    path: Path
    checksum: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    description: str
    state: str  # applied | pending | changed
    applied_at: str | None = None


def split_statements(text: str) -> list[str]:
    """Split at ``;`` that ends a line; drop ``//`` comment-only lines."""
    out: list[str] = []
    buf: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("//"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out


def load_migrations(folder: Path | None = None) -> list[Migration]:
    folder = folder or resource_dir("migrations")
    migrations: list[Migration] = []
    seen: dict[int, Path] = {}
    for path in sorted(folder.glob("*.cypher")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration files must be named V<NNNN>__<description>.cypher")
        version = int(m.group(1))
        if version in seen:
            raise MigrationError(f"{path}: version {version} also used by {seen[version].name}")
        seen[version] = path
        text = path.read_text(encoding="utf-8")
        statements = tuple(split_statements(text))
        if not statements:
            raise MigrationError(f"{path}: no statements")
        checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
        migrations.append(Migration(version, m.group(2).replace("_", " "), path, checksum, statements))
    return sorted(migrations, key=lambda mg: mg.version)


def _applied(graph: Graph) -> dict[int, dict]:
    return {int(r["version"]): r for r in graph.read("migrations/list_applied")}


def status(graph: Graph, folder: Path | None = None) -> list[MigrationStatus]:
    applied = _applied(graph)
    out = []
    for mg in load_migrations(folder):
        rec = applied.get(mg.version)
        if rec is None:
            out.append(MigrationStatus(mg.version, mg.description, "pending"))
        else:
            state = "applied" if rec["checksum"] == mg.checksum else "changed"
            out.append(MigrationStatus(mg.version, mg.description, state, str(rec.get("appliedAt"))))
    return out


#: status codes of a schema statement that lost a race with another process applying the same migration
_ALREADY = ("Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists", "Neo.ClientError.Schema.IndexAlreadyExists",
            "Neo.ClientError.Schema.ConstraintAlreadyExists")
_TRANSIENT = ("Neo.TransientError.", )


def _schema_statement(graph: Graph, mg: Migration, i: int, stmt: str, attempts: int = 5) -> None:
    """Run one idempotent schema statement. Two commands migrating a new database at once can collide: a
    deadlock (transient) is retried with a short back-off, and "already exists" means the other one did it."""
    import time

    for attempt in range(attempts):
        try:
            graph.run_raw_schema(stmt)
            return
        except Exception as e:  # noqa: BLE001 - re-raised with context
            code = str(getattr(e.__cause__, "code", "") or getattr(e, "code", "") or "")
            if code in _ALREADY:
                return
            if code.startswith(_TRANSIENT) and attempt + 1 < attempts:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise MigrationError(f"{mg.path.name}: statement {i} failed: {e}") from e


def migrate(graph: Graph, folder: Path | None = None, *, target: int | None = None) -> list[Migration]:
    """Apply pending migrations in order; returns those applied (empty on a second run)."""
    migrations = load_migrations(folder)
    applied = _applied(graph)
    for mg in migrations:
        rec = applied.get(mg.version)
        if rec is not None and rec["checksum"] != mg.checksum:
            raise MigrationError(
                f"migration V{mg.version:04d} ({mg.path.name}) was edited after it was applied",
                hint="add a new migration file instead of editing an applied one",
            )
    done: list[Migration] = []
    for mg in migrations:
        if mg.version in applied or (target is not None and mg.version > target):
            continue
        for i, stmt in enumerate(mg.statements, 1):
            _schema_statement(graph, mg, i, stmt)
        try:
            graph.write(
                "migrations/record_applied",
                version=mg.version,
                description=mg.description,
                checksum=mg.checksum,
                file=mg.path.name,
            )
        except QueryError as e:  # another process recorded the same version between our MERGE's match and create
            if str(getattr(e.__cause__, "code", "")) != "Neo.ClientError.Schema.ConstraintValidationFailed":
                raise
        done.append(mg)
    return done
