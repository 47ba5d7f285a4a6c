"""A thin handle on a Neo4j database that runs *named* queries only.

Reads run in read transactions (READ routing), writes in write transactions; every call is tagged with
the query name in the transaction metadata so it shows up in ``SHOW TRANSACTIONS`` and the query log.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j import GraphDatabase, Query, RoutingControl, unit_of_work
from neo4j import exceptions as neo4j_exc

from ..errors import AuthenticationFailed, DatabaseUnavailable, QueryError
from . import interrupts
from .queries import NamedQuery, QueryRegistry, default_registry


@dataclass(frozen=True)
class ConnectionInfo:
    uri: str
    user: str | None
    password: str | None
    database: str = "neo4j"
    source: str = "env"  # env | testcontainers | local

    def describe(self) -> str:
        return f"{self.uri} (database {self.database}, via {self.source})"


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Map driver exceptions onto the kgplatform error hierarchy (one-line messages)."""
    try:
        yield
    except neo4j_exc.AuthError as e:
        raise AuthenticationFailed(
            f"Neo4j rejected the credentials for {where}",
            hint="check NEO4J_USER / NEO4J_PASSWORD (the local server's password is in KGP_HOME/neo4j/password)",
        ) from e
    except (neo4j_exc.ServiceUnavailable, neo4j_exc.SessionExpired, OSError) as e:
        raise DatabaseUnavailable(
            f"cannot reach Neo4j at {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            hint="start the local server with 'kgp db start', or set NEO4J_URI",
        ) from e
    except neo4j_exc.Neo4jError as e:
        raise QueryError(f"{where}: {e.code}: {(e.message or '').splitlines()[0] if e.message else e}") from e


class Graph:
    """Runs named queries against one database. Create with :func:`kgplatform.db.connect`."""

    def __init__(
        self,
        driver: neo4j.Driver,
        info: ConnectionInfo,
        registry: QueryRegistry | None = None,
        timeout_s: float | None = 600.0,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.driver = driver
        self.info = info
        self.registry = registry or default_registry()
        self.timeout_s = timeout_s
        self._on_close = on_close
        self._local = threading.local()
        self._sessions: list[neo4j.Session] = []
        self._sessions_lock = threading.Lock()
        self._columns: dict[str, list[str]] = {}

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, info: ConnectionInfo, registry: QueryRegistry | None = None, *, retry_s: float = 30.0,
             **kw: Any) -> "Graph":
        """Connect (``retry_s``: the driver's retry budget for transient transaction failures)."""
        interrupts.install()  # an interrupt in a driver read or write drops that connection (db/interrupts.py)
        auth = (info.user or "neo4j", info.password or "") if info.password is not None else None
        with translate_errors(info.uri):
            try:
                driver = GraphDatabase.driver(info.uri, auth=auth, connection_timeout=10,
                                              notifications_min_severity="OFF", max_transaction_retry_time=retry_s)
            except ValueError as e:
                raise DatabaseUnavailable(f"bad Neo4j URI {info.uri!r}: {e}") from e
            try:
                driver.verify_connectivity()
            except BaseException:
                driver.close()
                raise
        return cls(driver, info, registry, **kw)

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for s in sessions:
            with contextlib.suppress(Exception):
                s.close()
        self.driver.close()
        if self._on_close:
            self._on_close()

    def __enter__(self) -> "Graph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------------------------
    def query(self, name: str) -> NamedQuery:
        return self.registry[name]

    def _q(self, nq: NamedQuery) -> Query:
        if nq.identifiers:
            raise QueryError(f"query {nq.name!r} is a template: run it with write_schema(identifiers=...)")
        return Query(nq.text, metadata={"app": "kgplatform", "query": nq.name}, timeout=self.timeout_s)

    def _check_params(self, nq: NamedQuery, params: dict[str, Any]) -> None:
        missing = [p for p in nq.params if p not in params]
        if missing:
            raise QueryError(f"query {nq.name!r} is missing parameters: {', '.join(missing)}")

    def read(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a read query in a read transaction and return its records as dicts."""
        return [r.data() for r in self.read_records(name, **params)]

    def read_records(self, name: str, /, **params: Any) -> list[neo4j.Record]:
        """Like :meth:`read`, but the driver's records (nodes, relationships and paths stay graph objects)."""
        nq = self.registry[name]
        if nq.mode != "read":
            raise QueryError(f"query {name!r} is declared '{nq.mode}', not 'read'")
        self._check_params(nq, params)
        with translate_errors(f"{self.info.uri} [{name}]"):
            records, _, _ = self.driver.execute_query(
                self._q(nq), params, routing_=RoutingControl.READ, database_=self.info.database
            )
        return list(records)

    def columns(self, name: str) -> list[str]:
        """The columns a read query returns, as the server's EXPLAIN of it names them (cached per Graph)."""
        cached = self._columns.get(name)
        if cached is None:
            nq = self.registry[name]
            with translate_errors(f"{self.info.uri} [{name}]"):
                with self.driver.session(database=self.info.database, default_access_mode=neo4j.READ_ACCESS) as s:
                    result = s.run(Query("EXPLAIN " + nq.text, metadata={"app": "kgplatform", "query": name}),
                                   {p: None for p in nq.params})
                    cached = list(result.keys())
                    result.consume()
            self._columns[name] = cached
        return cached

    def serve(self, name: str | NamedQuery, /, **params: Any) -> list[neo4j.Record]:
        """A read on the serving path (``recommend``, ``explain``): like :meth:`read_records`, but one auto-commit
        transaction in READ access mode (the server refuses writes in it) on a session this thread keeps open.

        :meth:`read_records` goes through ``execute_query``: a new session and a managed transaction per call
        (BEGIN, RUN, PULL, COMMIT: two round trips, about 2 ms more per query on the benchmark machine). Here
        RUN and PULL go out together and the session is reused. ``name`` may also be a :class:`NamedQuery` made
        from registered text (``kgplatform.explain`` wraps its queries so). No automatic retry: a transient error surfaces
        as a :class:`~kgplatform.errors.QueryError` (a serving read is cheap to ask again); after any error the
        thread's session is dropped and the next call opens a fresh one.
        """
        nq = name if isinstance(name, NamedQuery) else self.registry[name]
        name = nq.name
        if nq.mode != "read":
            raise QueryError(f"query {name!r} is declared '{nq.mode}', not 'read'")
        self._check_params(nq, params)
        session = getattr(self._local, "session", None)
        if session is None:
            session = self.driver.session(database=self.info.database, default_access_mode=neo4j.READ_ACCESS)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        ok = False
        try:
            with translate_errors(f"{self.info.uri} [{name}]"):
                records = list(session.run(self._q(nq), params))
            ok = True
            return records
        finally:
            if not ok:
                self._local.session = None
                with self._sessions_lock:
                    if session in self._sessions:
                        self._sessions.remove(session)
                with contextlib.suppress(Exception):
                    session.close()

    def read_one(self, name: str, /, **params: Any) -> dict[str, Any] | None:
        rows = self.read(name, **params)
        return rows[0] if rows else None

    def write(self, name: str, /, **params: Any) -> neo4j.ResultSummary:
        """Run a write query in one write transaction."""
        nq = self.registry[name]
        if nq.mode != "write":
            raise QueryError(f"query {name!r} is declared '{nq.mode}', not 'write'")
        self._check_params(nq, params)
        with translate_errors(f"{self.info.uri} [{name}]"):
            _, summary, _ = self.driver.execute_query(
                self._q(nq), params, routing_=RoutingControl.WRITE, database_=self.info.database
            )
        return summary

    def write_rows(
        self,
        name: str,
        rows: Sequence[dict[str, Any]] | Iterable[dict[str, Any]],
        /,
        *,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
        **params: Any,
    ) -> int:
        """``UNWIND $rows`` a write query over ``rows`` in batches; each batch is one transaction.

        Returns the number of rows written. The query must take ``$rows``; other params are passed as-is.
        """
        nq = self.registry[name]
        if nq.mode != "write" or "rows" not in nq.params:
            raise QueryError(f"query {name!r} must be a write query over $rows")
        total = 0
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal total
            if not batch:
                return
            data = list(batch)

            @unit_of_work(metadata={"app": "kgplatform", "query": nq.name}, timeout=self.timeout_s)
            def work(tx: neo4j.ManagedTransaction) -> None:
                tx.run(nq.text, {**params, "rows": data}).consume()

            with translate_errors(f"{self.info.uri} [{name}]"):
                with self.driver.session(database=self.info.database) as s:
                    s.execute_write(work)
            total += len(data)
            if progress:
                progress(len(data))
            batch.clear()

        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        flush()
        return total

    @contextlib.contextmanager
    def transaction(self, purpose: str = "transaction") -> Iterator["GraphTx"]:
        """One explicit write transaction for several named queries (all or nothing)."""
        with translate_errors(self.info.uri):
            with self.driver.session(database=self.info.database) as s:
                with s.begin_transaction(metadata={"app": "kgplatform", "query": purpose},
                                         timeout=self.timeout_s) as tx:
                    yield GraphTx(self, tx)
                    tx.commit()

    def write_schema(self, name: str, /, identifiers: dict[str, str], **params: Any) -> None:
        """Run a templated schema query whose ``{{slots}}`` take identifiers checked against the schema."""
        nq = self.registry[name]
        self._check_params(nq, params)
        text = nq.render(identifiers)
        with translate_errors(f"{self.info.uri} [{name}]"):
            with self.driver.session(database=self.info.database) as s:
                s.run(Query(text, metadata={"app": "kgplatform", "query": nq.name}), params).consume()

    def run_raw_schema(self, statement: str) -> None:
        """Run one schema statement from a migration file (the migration runner's use only)."""
        with translate_errors(self.info.uri):
            with self.driver.session(database=self.info.database) as s:
                s.run(Query(statement, metadata={"app": "kgplatform", "query": "migration"})).consume()


class GraphTx:
    """Named queries inside one explicit transaction."""

    def __init__(self, graph: Graph, tx: neo4j.Transaction) -> None:
        self.graph = graph
        self.tx = tx

    def run(self, name: str, /, **params: Any) -> list[dict[str, Any]]:
        nq = self.graph.registry[name]
        self.graph._check_params(nq, params)
        return [r.data() for r in self.tx.run(nq.text, params)]
