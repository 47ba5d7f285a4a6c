"""Write a validated :class:`ParsedDataset` into Neo4j: batched ``UNWIND``, one transaction per batch, idempotent
(a second run changes nothing).

How (measured in ``benchmarks/ingest.py``):

- **Phases in dependency order**: nodes (users, items and entities side by side), sessions, interactions, session
  membership, external-KG facts. A phase starts when the previous one has committed, so every relationship finds
  its endpoints, and a run killed half-way has written a prefix of the phases (the facts always last).
- **CREATE on a first ingest, MERGE otherwise**: one read (``ingest/dataset_state``) says which node and
  relationship kinds the dataset already has; a kind it has none of is CREATEd from the validated, de-duplicated
  rows. A run killed half-way leaves some, so its re-run MERGEs that kind and still ends with exactly one node
  per key and one edge per row. Entities are shared by datasets and always MERGEd.
- **Batches of plain lists**: a relationship batch sends the distinct keys of its endpoints once
  (``$users``/``$items``…) and its rows as lists of positions and values, so each endpoint is looked up once per
  batch rather than once per row, and the driver packs lists, not one dict per row. A missing endpoint fails the
  batch (no row is ever skipped or attached to the wrong node).
- **Nodes in parallel, relationships in order**: the node phase runs ``workers`` write transactions at once
  (independent labels and keys; the driver retries a transient deadlock). Relationship batches commit one after
  the other in row order, as before, while the next batch is packed: the order in which a node's relationships
  are stored decides the order the exporter meets KG entities in (``RecData`` entity numbering, hence its
  checksum), so it must not depend on thread timing. On a 2-core machine the server's CPU is the limit anyway.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from ..db.graph import Graph
from ..errors import ConfigError
from .model import ParsedDataset

#: (head kind, tail kind) -> the batch query's suffix; item-item and entity-entity triples are rare and keep the
#: row-per-dict queries
_FACT_BATCH = {("item", "entity"): "item_entity", ("entity", "item"): "entity_item"}
_FACT_ROWS = {("item", "item"): "facts_item_item", ("entity", "entity"): "facts_entity_entity"}


@dataclass
class IngestReport:
    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def relationships(self) -> int:
        return sum(self.rows.get(k, 0) for k in ("interactions", "sessions", "session_items", "facts"))


@dataclass
class _Step:
    label: str  # the report's row counter
    query: str
    batches: Iterable[tuple[int, dict[str, Any]]]  # (rows in the batch, query parameters)


def write_dataset(graph: Graph, data: ParsedDataset, *, batch_size: int = 5000, progress: bool | None = None,
                  workers: int = 2) -> IngestReport:
    """Write everything in dependency order (nodes before the edges that match them).

    Args:
        batch_size: rows per write transaction.
        workers: write transactions at once (1 = one after the other).
    """
    if batch_size < 1 or workers < 1:
        raise ConfigError(f"batch_size and workers must be >= 1, got {batch_size}, {workers}")
    t0 = time.perf_counter()
    report = IngestReport(data.name)
    state = graph.read_one("ingest/dataset_state", dataset=data.name) or {}

    def verb(kind: str) -> str:
        return "merge" if state.get(kind, True) else "create"

    fact_groups: dict[tuple[str, str], list[Any]] = {}
    for f in data.facts:
        fact_groups.setdefault((f.head[0], f.tail[0]), []).append(f)
    fact_steps = []
    for key, facts in sorted(fact_groups.items()):
        if key in _FACT_BATCH:
            fact_steps.append(_Step("facts", f"ingest/{verb('facts')}_fact_batch_{_FACT_BATCH[key]}",
                                    _fact_batches(facts, batch_size)))
        else:  # entity-entity triples are not owned by one dataset: always MERGE them
            v = "merge" if key == ("entity", "entity") else verb("facts")
            rows = [{"head": f.head[1], "predicate": f.predicate, "tail": f.tail[1], "source": f.source} for f in facts]
            fact_steps.append(_Step("facts", f"ingest/{v}_{_FACT_ROWS[key]}", _dict_batches(rows, batch_size)))

    phases: list[list[_Step]] = [
        [_Step("users", f"ingest/{verb('users')}_users", _dict_batches(data.users, batch_size)),
         _Step("items", f"ingest/{verb('items')}_items", _dict_batches(data.items, batch_size)),
         _Step("entities", "ingest/merge_entity_batch",
               _list_batches([[e["uri"], e.get("label"), e.get("source"), e.get("kind")] for e in data.entities],
                             batch_size))],
        [_Step("sessions", f"ingest/{verb('sessions')}_session_batch",
               _keyed_batches(data.sessions, batch_size, "users", "user", None, None, ("id", "start", "end", "size"),
                              dataset=data.name))],
        [_Step("interactions", f"ingest/{verb('interactions')}_interaction_batch",
               _keyed_batches(data.interactions, batch_size, "users", "user", "items", "item",
                              ("pos", "ts", "rating", "behavior")))],
        [_Step("session_items", f"ingest/{verb('session_items')}_session_item_batch",
               _keyed_batches(data.session_items, batch_size, "sessions", "session", "items", "item",
                              ("pos", "ts")))],
        fact_steps,
    ]
    total = len(data.users) + len(data.items) + len(data.entities) + len(data.sessions) + len(data.interactions) \
        + len(data.session_items) + len(data.facts)
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    with tqdm(total=total, desc=f"ingest {data.name}", unit="row", file=sys.stderr, disable=disable) as bar, \
            _Pool(graph, workers) as pool:
        for k, steps in enumerate(phases):
            pool.run(steps, report, bar.update, ordered=k > 0)
    graph.write("ingest/merge_dataset", name=data.name, kind=data.kind, path=data.path,
                counts={"users": len(data.users), "items": len(data.items),
                        "interactions": len(data.interactions), "sessions": len(data.sessions),
                        "entities": len(data.entities), "facts": len(data.facts)})
    report.seconds = time.perf_counter() - t0
    return report


class _Pool:
    """Runs the batches of a phase's steps on ``workers`` threads (one write transaction each), or, ``ordered``,
    on one thread in order while the caller packs the next batch; at most ``workers + 1`` batches in flight; the
    phase ends when all of them have committed."""

    def __init__(self, graph: Graph, workers: int) -> None:
        self.graph = graph
        self.workers = workers
        self.parallel: ThreadPoolExecutor | None = None
        self.serial: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> "_Pool":
        if self.workers > 1:
            self.parallel = ThreadPoolExecutor(self.workers, thread_name_prefix="kgp-ingest")
        self.serial = ThreadPoolExecutor(1, thread_name_prefix="kgp-ingest-ordered")
        return self

    def __exit__(self, *exc: object) -> None:
        for executor in (self.parallel, self.serial):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)

    def run(self, steps: list[_Step], report: IngestReport, advance: Callable[[int], None], *,
            ordered: bool) -> None:
        started: dict[str, float] = {}

        def jobs() -> Iterator[tuple[_Step, int, dict[str, Any]]]:
            for step in steps:
                for n, params in step.batches:
                    yield step, n, params

        def write(step: _Step, n: int, params: dict[str, Any]) -> tuple[_Step, int]:
            with self._lock:
                started.setdefault(step.query, time.perf_counter())
            self.graph.write(step.query, **params)
            return step, n

        def done(step: _Step, n: int) -> None:
            report.rows[step.label] = report.rows.get(step.label, 0) + n
            name = step.query.rsplit("/", 1)[-1]
            report.step_seconds[name] = time.perf_counter() - started[step.query]
            advance(n)

        executor = self.serial if ordered or self.parallel is None else self.parallel
        assert executor is not None
        in_flight = 2 if executor is self.serial else self.workers + 1
        pending: deque[Future] = deque()
        todo = jobs()
        try:
            for job in todo:
                pending.append(executor.submit(write, *job))
                if len(pending) >= in_flight:
                    break
            while pending:
                result = pending.popleft().result()
                job = next(todo, None)
                if job is not None:
                    pending.append(executor.submit(write, *job))
                done(*result)
        except BaseException:
            for f in pending:
                f.cancel()
            for f in pending:  # let the transactions in flight end before the error goes up
                if not f.cancelled():
                    f.exception()
            raise


def _chunks(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _dict_batches(rows: list[dict[str, Any]], size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for chunk in _chunks(rows, size):
        yield len(chunk), {"rows": chunk}


def _list_batches(rows: list[list[Any]], size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for chunk in _chunks(rows, size):
        yield len(chunk), {"rows": chunk}


def _keyed_batches(rows: list[dict[str, Any]], size: int, start_param: str, start_key: str,
                   end_param: str | None, end_key: str | None, value_keys: tuple[str, ...],
                   **extra: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Batches of ``[start position, (end position,) values…]`` rows with the batch's distinct endpoint keys."""
    values = lambda r: [r.get(k) for k in value_keys]  # noqa: E731 - optional keys (behavior) may be absent
    for chunk in _chunks(rows, size):
        starts: dict[str, int] = {}
        ends: dict[str, int] = {}
        s_pos, e_pos = starts.setdefault, ends.setdefault
        if end_key is None:
            out = [[s_pos(r[start_key], len(starts)), *values(r)] for r in chunk]
        else:
            out = [[s_pos(r[start_key], len(starts)), e_pos(r[end_key], len(ends)), *values(r)] for r in chunk]
        params = {start_param: list(starts), "rows": out, **extra}
        if end_param is not None:
            params[end_param] = list(ends)
        yield len(chunk), params


def _fact_batches(facts: list[Any], size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Batches of ``[head position, predicate, tail position, source]`` rows with the distinct endpoint keys."""
    for chunk in _chunks(facts, size):
        heads: dict[str, int] = {}
        tails: dict[str, int] = {}
        out = [[heads.setdefault(f.head[1], len(heads)), f.predicate, tails.setdefault(f.tail[1], len(tails)),
                f.source] for f in chunk]
        yield len(chunk), {"heads": list(heads), "tails": list(tails), "rows": out}
