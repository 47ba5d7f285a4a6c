"""Bulk first load: validated datasets into an *empty* local database through Neo4j's offline importer.

``kgp ingest KIND --bulk`` (or :func:`bulk_load` with several datasets at once) writes the very rows the
transactional writer would write (:class:`~kgplatform.ingest.model.ParsedDataset`, validated before anything is
written) as CSV files in the importer's format, stops the local server, runs ``neo4j-admin database import full``
(``org.neo4j.cli.AdminTool``, from the same Maven Central jars the launcher runs: ``org.neo4j:neo4j-import-tool``
and ``org.neo4j:neo4j-command-line`` 5.26 are already on its classpath), starts the server again, applies the
migrations (constraints and indexes are built once, over the loaded data) and records each ``Dataset`` node with
the same query as the transactional path. The graph is the one the transactional path writes (same nodes,
relationships and properties: ``tests/ingest/test_bulk.py`` compares their fingerprints).

Refused, with one ``Error:`` line, when the database holds anything besides migration records, when the
connection is not the local launcher's server (``NEO4J_URI`` / testcontainers), when two datasets share a name,
or when a value cannot be written faithfully in the importer's CSV (an empty list, a column that mixes types,
the array delimiter U+001F inside a list element). A failed import leaves the database empty: run it again.
"""
from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..db.graph import Graph
from ..db.migrations import migrate
from ..errors import ConfigError, DataValidationError
from .model import ParsedDataset

if TYPE_CHECKING:
    from ..db.server import LocalServer

ARRAY_DELIMITER = "\x1f"  # U+001F (unit separator): never in the validated ids, refused in list elements
_GROUPS = {"item": "Item", "entity": "Entity"}


@dataclass
class BulkReport:
    datasets: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    csv_seconds: float = 0.0
    stop_seconds: float = 0.0
    import_seconds: float = 0.0
    start_seconds: float = 0.0
    finish_seconds: float = 0.0
    seconds: float = 0.0
    #: the importer's own phases as it reports them ("Node import", "Relationship import", ...: seconds)
    importer_phases: dict[str, float] = field(default_factory=dict)

    @property
    def relationships(self) -> int:
        return sum(self.rows.get(k, 0) for k in ("interactions", "sessions", "session_items", "facts"))


def bulk_load(server: "LocalServer", datasets: list[ParsedDataset], *, connect: Callable[[], Graph],
              log: Callable[[str], None] | None = None, workdir: Path | None = None) -> BulkReport:
    """Load ``datasets`` into the empty database of the local ``server`` with Neo4j's offline importer.

    Args:
        server: the local launcher's server (running or not; it runs again afterwards).
        datasets: validated datasets (distinct names).
        connect: opens a :class:`Graph` on the running server (called before and after the import).
        workdir: where the CSV files go (default: a temporary folder under the server's home, removed after).
    """
    say = log or (lambda m: print(m, file=sys.stderr))
    t0 = time.perf_counter()
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"--bulk got the dataset name {next(n for n in names if names.count(n) > 1)!r} twice")
    if server.status() is None:
        server.start()
    graph = connect()
    try:
        row = graph.read_one("ingest/database_has_data") or {}
        if row.get("hasData", True):
            raise ConfigError(
                f"--bulk loads into an empty database only, and {graph.info.describe()} already holds data",
                hint="use the transactional ingest (without --bulk), or start from an empty KGP_HOME")
    finally:
        graph.close()

    report = BulkReport(names)
    folder = Path(tempfile.mkdtemp(prefix="kgp-bulk-", dir=workdir or server.home))
    try:
        t = time.perf_counter()
        say(f"writing the importer's CSV files under {folder} ...")
        nodes, rels, multiline = write_csv(datasets, folder, report.rows)
        report.csv_seconds = time.perf_counter() - t

        t = time.perf_counter()
        say("stopping the local Neo4j for the offline import ...")
        server.stop()
        report.stop_seconds = time.perf_counter() - t

        t = time.perf_counter()
        say(f"importing {sum(report.rows.values()):,} rows with neo4j-admin database import full ...")
        try:
            report.importer_phases = importer_phases(server.import_full(nodes, rels, multiline=multiline))
        finally:
            report.import_seconds = time.perf_counter() - t
            t = time.perf_counter()
            server.start()
            report.start_seconds = time.perf_counter() - t
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    t = time.perf_counter()
    graph = connect()
    try:
        migrate(graph)  # constraints and indexes, built once over the loaded data
        for d in datasets:
            graph.write("ingest/merge_dataset", name=d.name, kind=d.kind, path=d.path, counts=_counts(d))
    finally:
        graph.close()
    report.finish_seconds = time.perf_counter() - t
    report.seconds = time.perf_counter() - t0
    return report


def importer_phases(output: str) -> dict[str, float]:
    """The phase timings in the importer's output (``Node import COMPLETED in 2s 685ms``, ``IMPORT DONE in 11s
    863ms.``): phase name -> seconds (``IMPORT DONE`` as ``total``)."""
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    out: dict[str, float] = {}
    for m in re.finditer(r"^(.*?) (?:COMPLETED|DONE) in ((?:\d+(?:ms|s|m|h) ?)+)", output, re.MULTILINE):
        name = "total" if m.group(1).strip() == "IMPORT" else m.group(1).strip()
        out[name] = round(sum(int(v) * units[u] for v, u in re.findall(r"(\d+)(ms|s|m|h)", m.group(2))), 3)
    return out


def _counts(d: ParsedDataset) -> dict[str, int]:
    """The Dataset node's counts, exactly as the transactional writer records them."""
    return {"users": len(d.users), "items": len(d.items), "interactions": len(d.interactions),
            "sessions": len(d.sessions), "entities": len(d.entities), "facts": len(d.facts)}


# -- CSV in the importer's format ---------------------------------------------------------------------------------
def write_csv(datasets: list[ParsedDataset], folder: Path, rows: dict[str, int] | None = None
              ) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]], list[Path]]:
    """Write node and relationship files for ``datasets`` under ``folder``.

    Nodes get the importer's integer ids (one space per label; ``--id-type=integer``: no string ids to sort and
    look up), their keys stay ordinary properties (``id``, ``uri``). Returns ``(label, file)`` node files, ``(type, file)`` relationship files and the files whose quoted fields
    hold line breaks (the importer reads those with ``--multiline-fields``).
    """
    counts = rows if rows is not None else {}
    nodes: list[tuple[str, Path]] = []
    rels: list[tuple[str, Path]] = []
    multiline: list[Path] = []

    ids: dict[str, dict[str, int]] = {}  # id group -> node key -> the importer's integer id

    def node_file(label: str, name: str, key: str, records: list[dict[str, Any]]) -> None:
        group = ids.setdefault(label, {})
        for r in records:
            group[r[key]] = len(group)
        if not records:
            return
        path = folder / f"{name}.csv"
        if _write_table(path, records, label, key, group):
            multiline.append(path)
        nodes.append((label, path))
        counts[name] = counts.get(name, 0) + len(records)

    def rel_file(rtype: str, name: str, start: str, end: str, header: list[str], records: Iterable[list[Any]],
                 count_as: str) -> None:
        path = folder / f"{name}.csv"
        starts, ends = ids.get(start, {}), ids.get(end, {})

        def resolved() -> Iterable[list[Any]]:
            for rec in records:
                try:
                    yield [starts[rec[0]], ends[rec[1]], *rec[2:]]
                except KeyError as e:  # the loaders validate this; say so rather than let the importer guess
                    raise DataValidationError(f"{name}: {e.args[0]!r} is not a {start if e.args[0] == rec[0] else end}"
                                              " of the data being loaded") from None

        n = _write_rows(path, [f":START_ID({start})", f":END_ID({end})", *header], resolved())
        if n:
            rels.append((rtype, path))
            counts[count_as] = counts.get(count_as, 0) + n
        else:
            path.unlink()

    entities: dict[str, dict[str, Any]] = {}
    for d in datasets:  # shared by datasets: the last write wins, as MERGE … SET does
        for e in d.entities:
            entities[e["uri"]] = e
    node_file("User", "users", "id", [u for d in datasets for u in d.users])
    node_file("Item", "items", "id", [i for d in datasets for i in d.items])
    node_file("Entity", "entities", "uri", list(entities.values()))
    node_file("Session", "session_nodes", "id",
              [{"id": s["id"], "dataset": s["dataset"], "start": s["start"], "end": s["end"], "size": s["size"]}
               for d in datasets for s in d.sessions])
    counts["sessions"] = counts.pop("session_nodes", 0)
    rel_file("HAS_SESSION", "has_session", "User", "Session", [],
             ([s["user"], s["id"]] for d in datasets for s in d.sessions), "session_edges")
    counts.pop("session_edges", None)
    # one file per set of present optional values, so a string column (behavior) never holds a missing value,
    # which the importer would read as an empty string; numbers may be blank (= no property)
    optional = (("ts", "ts:long"), ("rating", "rating:double"), ("behavior", "behavior"))
    shapes: dict[tuple[bool, ...], list[list[Any]]] = {}
    for d in datasets:
        for r in d.interactions:
            present = tuple(r.get(k) is not None for k, _ in optional) if r.get("behavior") is not None \
                else (True, True, False)
            shapes.setdefault(present, []).append(
                [r["user"], r["item"], r["pos"], *(r.get(k) for (k, _), p in zip(optional, present) if p)])
    for present, rows in sorted(shapes.items()):
        suffix = "".join("1" if p else "0" for p in present)
        rel_file("INTERACTED", f"interacted_{suffix}", "User", "Item",
                 ["pos:long", *(h for (_, h), p in zip(optional, present) if p)], rows, "interactions")
    rel_file("CONTAINS", "contains", "Session", "Item", ["pos:long", "ts:long"],
             ([r["session"], r["item"], r["pos"], r["ts"]] for d in datasets for r in d.session_items),
             "session_items")
    groups: dict[tuple[str, str], dict[tuple[str, str, str], str]] = {}
    for d in datasets:
        for f in d.facts:  # one FACT per (head, predicate, tail); the last source wins, as MERGE … SET does
            groups.setdefault((f.head[0], f.tail[0]), {})[(f.head[1], f.predicate, f.tail[1])] = f.source
    for (h, t), facts in sorted(groups.items()):
        rel_file("FACT", f"fact_{h}_{t}", _GROUPS[h], _GROUPS[t], ["predicate", "source"],
                 ([head, tail_, predicate, source] for (head, predicate, tail_), source in facts.items()), "facts")
    return nodes, rels, multiline


def _field(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, (list, tuple)):
        if not value:
            raise DataValidationError(f"{where}: an empty list cannot be bulk loaded",
                                      hint="use the transactional ingest (without --bulk)")
        parts = []
        for v in value:
            text = v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)
            if ARRAY_DELIMITER in text:
                raise DataValidationError(f"{where}: a list element holds U+001F, the bulk loader's array delimiter",
                                          hint="use the transactional ingest (without --bulk)")
            parts.append(text)
        return '"' + ARRAY_DELIMITER.join(parts).replace('"', '""') + '"'
    raise DataValidationError(f"{where}: a {type(value).__name__} value cannot be bulk loaded")


def _kind(value: Any) -> str | None:
    """The importer's type of a property value (None for a null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)) and value:
        inner = {_kind(v) for v in value}
        if len(inner) == 1 and None not in inner:
            return f"{inner.pop()}[]"
    return "?"


def _write_table(path: Path, records: list[dict[str, Any]], group: str, key: str, ids: dict[str, int]) -> bool:
    """A node file: the importer's integer id, then one column per property (first-seen order), typed from the
    values; True when a quoted field holds a line break."""
    columns: dict[str, str | None] = {}
    for r in records:
        for k, v in r.items():
            kind = _kind(v)
            seen = columns.get(k)
            if k not in columns or seen is None:
                columns[k] = kind
            elif kind is not None and kind != seen:
                raise DataValidationError(f"{path.stem}: property {k!r} mixes {seen} and {kind} values",
                                          hint="use the transactional ingest (without --bulk)")
            if kind == "?":
                what = "an empty list" if isinstance(v, (list, tuple)) and not v else "a value the importer cannot hold"
                raise DataValidationError(f"{path.stem}: property {k!r} has {what} (not bulk-loadable)",
                                          hint="use the transactional ingest (without --bulk)")
    names = list(columns)
    header = [f":ID({group})"] + [k if columns[k] in (None, "string") else f"{k}:{columns[k]}" for k in names]
    multiline = False
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for r in records:
            line = ",".join([str(ids[r[key]]), *(_field(r.get(k), f"{path.stem} {r[key]}") for k in names)])
            if "\n" in line or "\r" in line:
                multiline = True
            f.write(line + "\n")
    return multiline


def _write_rows(path: Path, header: list[str], records: Iterable[list[Any]]) -> int:
    """A relationship file, through the C csv writer: integer ids and numbers unquoted (``None`` = an empty
    field = no property), strings quoted (FACT predicates and sources, validated non-empty)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        strings = any(not h.startswith(":") and ":" not in h for h in header)
        writer = csv.writer(f, lineterminator="\n",
                            quoting=csv.QUOTE_NONNUMERIC if strings else csv.QUOTE_MINIMAL)
        n = 0
        for rec in records:
            if strings and None in rec:
                raise DataValidationError(f"{path.stem}: a relationship with a missing value cannot be bulk loaded")
            writer.writerow(rec)
            n += 1
    return n
