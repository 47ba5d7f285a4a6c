"""An interrupt (Ctrl-C, or SIGTERM as `kgp` raises it) that lands inside the Neo4j driver while it reads a reply
or sends a message.

Left to itself, the driver keeps using the connection with its read position inside a message: its clean-up then
fails on its own (the read buffer is still exported to the interrupted ``recv_into``, so the rollback's read raises
``BufferError``, which hides the interrupt; seen once in CI as a traceback and exit 1 from a SIGTERM'd
`kgp extract`), or reads a message's bytes as a chunk size and waits ~120 s for data that never comes.
:mod:`kgplatform.db.interrupts` makes such an interrupt drop the connection instead. These tests put the
interrupt exactly there, at each of the first reads of a query (on a connection the pool already holds, so the
reads are the reply's chunk sizes and bodies, not the handshake's), or part way through a write, instead of waiting
for a signal to hit it by chance."""
from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from neo4j._async_compat.network._bolt_socket import BoltSocketBase

from kgplatform.agent.runlog import recorded_run
from kgplatform.errors import DatabaseUnavailable, interrupt_behind

from .cli.test_cli import kgp_here

READS = range(1, 9)  # the interrupt at the 1st … 8th socket read after it is armed
#: an interrupted query gives up at once; the out-of-step read this guards against waited ~120 s
PROMPT_S = 10.0
#: `kgp stats` first connects (its first reads), so its queries' reads come later
CLI_READS = range(1, 9)


@contextlib.contextmanager
def _at_call(method: str, k: int, on_kth):
    """From now on, the ``k``-th call of ``BoltSocketBase.<method>`` runs ``on_kth(original, self, *args)`` instead."""
    original = getattr(BoltSocketBase, method)
    calls = [0]

    def patched(self, *args):
        calls[0] += 1
        if calls[0] == k:
            return on_kth(original, self, *args)
        return original(self, *args)

    setattr(BoltSocketBase, method, patched)
    try:
        yield
    finally:
        setattr(BoltSocketBase, method, original)


def interrupt_at_read(k: int, raise_it):
    """From now on, the ``k``-th socket read of the driver runs ``raise_it()`` instead (as a signal handler that
    raises would, from inside ``recv_into``)."""
    return _at_call("recv_into", k, lambda original, sock, *args: raise_it())


def interrupt_at_write(k: int):
    """From now on, the ``k``-th socket write of the driver sends half its bytes and then raises the interrupt (as
    a signal that lands while ``sendall`` is part way through a message would)."""

    def half_then_interrupt(original, sock, data):
        original(sock, bytes(data)[: len(data) // 2])
        raise KeyboardInterrupt

    return _at_call("sendall", k, half_then_interrupt)


def _interrupt():
    raise KeyboardInterrupt


def _queries(graph):
    for _ in range(3):
        graph.read("stats/list_datasets")
        with graph.transaction() as tx:
            tx.run("stats/list_datasets")


def test_interrupt_behind_follows_cause_and_context():
    assert interrupt_behind(None) is None and interrupt_behind(ValueError("x")) is None
    ki = KeyboardInterrupt()
    assert interrupt_behind(ki) is ki
    try:
        try:
            raise ki
        except KeyboardInterrupt:
            try:
                raise BufferError("exports")  # the driver's clean-up, while the interrupt is handled
            except BufferError as e:
                raise DatabaseUnavailable("cannot reach Neo4j") from e
    except DatabaseUnavailable as e:
        assert interrupt_behind(e) is ki
    loop = ValueError("a")  # a cycle in the chain ends
    loop.__context__ = loop
    assert interrupt_behind(loop) is None


@pytest.mark.parametrize("k", READS)
def test_an_interrupt_in_a_driver_read_stays_an_interrupt_in_the_run_record(graph, k):
    """The interrupt itself comes out, at once (no clean-up error in its place, no wait on an out-of-step read);
    the Run node says 'interrupted' with the interrupt as its error; the connection pool still answers."""
    graph.read("stats/list_datasets")  # the pool holds a connection: the armed reads are a reply's, whatever ran before
    summary = SimpleNamespace(run_id=f"interrupted-read-{k}")
    t0 = time.monotonic()
    with pytest.raises(BaseException) as raised:
        with recorded_run(graph, summary, lambda: {"dataset": "none", "ok": 0}):
            with interrupt_at_read(k, _interrupt):
                _queries(graph)
    assert type(raised.value) is KeyboardInterrupt, repr(raised.value)
    assert time.monotonic() - t0 < PROMPT_S
    assert isinstance(graph.read("stats/list_datasets"), list)  # the pool still answers
    run = _run(graph, summary.run_id)
    assert (run["status"], run["error"]) == ("interrupted", "KeyboardInterrupt")


@pytest.mark.parametrize("k", range(1, 5))
def test_an_interrupt_in_a_half_sent_message_comes_out_at_once(graph, k):
    """An interrupt that stops a write part way (the server waits for the rest of the message) also comes out at
    once and unchanged (left to the driver, its rollback waited ~120 s for the server), and the pool answers."""
    graph.read("stats/list_datasets")
    t0 = time.monotonic()
    with pytest.raises(BaseException) as raised:
        with interrupt_at_write(k):
            _queries(graph)
    assert type(raised.value) is KeyboardInterrupt, repr(raised.value)
    assert time.monotonic() - t0 < PROMPT_S
    assert isinstance(graph.read("stats/list_datasets"), list)


def test_the_run_record_is_tried_twice_and_a_lost_one_is_noted_on_the_first_error(graph):
    """After an error, a failed record write (a connection the interrupt broke) is tried once more; if that fails
    too, the user's error is the first one, with the lost record in its notes."""
    real_write = graph.write
    fails = [1]

    def flaky(name, **params):
        if name == "agent/record_run" and fails[0] > 0:
            fails[0] -= 1
            raise BufferError("Existing exports of data: object cannot be re-sized")
        return real_write(name, **params)

    summary = SimpleNamespace(run_id="record-retried")
    with mock.patch.object(graph, "write", side_effect=flaky):
        with pytest.raises(KeyboardInterrupt):
            with recorded_run(graph, summary, lambda: {"dataset": "none", "ok": 0}):
                raise KeyboardInterrupt
    assert fails[0] == 0 and _run(graph, "record-retried")["status"] == "interrupted"
    fails[0] = 2
    summary = SimpleNamespace(run_id="record-lost")
    with mock.patch.object(graph, "write", side_effect=flaky):
        with pytest.raises(ValueError, match="the block's own") as raised:
            with recorded_run(graph, summary, lambda: {"dataset": "none", "ok": 0}):
                raise ValueError("the block's own error")
    assert any("record-lost was not written: BufferError" in n for n in raised.value.__notes__)


def _run(graph, run_id: str) -> dict:
    with graph.driver.session(database=graph.info.database, default_access_mode="READ") as s:
        return s.execute_read(lambda tx: tx.run("MATCH (r:Run {id: $id}) RETURN r {.*} AS r", id=run_id).single()[0])


@pytest.mark.parametrize("k", CLI_READS)
def test_sigterm_in_a_driver_read_is_one_error_line_and_exit_143(graph, neo4j_server, tmp_path, k):
    import kgplatform.cli.main as cli_main

    def sigterm():
        cli_main._on_sigterm(15, None)  # what the signal does when it lands in recv_into

    try:
        with interrupt_at_read(k, sigterm):
            r = kgp_here(neo4j_server, tmp_path, "stats", "--json")
    finally:
        cli_main._terminated[0] = False
    assert r.returncode == 143, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert [line for line in r.stderr.splitlines() if line.startswith("Error:")] == ["Error: terminated (SIGTERM)"]
    assert r.stdout == ""


def test_the_driver_fix_is_installed_once_and_its_log_filter_drops_only_interrupts(graph):
    import logging

    from neo4j._sync.io import Bolt

    from kgplatform.db import interrupts

    wrapped = Bolt.fetch_message, Bolt._send_all
    assert interrupts.install() and (Bolt.fetch_message, Bolt._send_all) == wrapped  # Graph.open did; again: no-op
    assert all(getattr(w, "__wrapped__", None) is not None for w in wrapped)
    assert logging.getLogger("neo4j.io").filters.count(interrupts._not_an_interrupt) == 1
    record = lambda *args: logging.LogRecord("neo4j.io", logging.ERROR, __file__, 1,  # noqa: E731
                                             "[#%04X]  _: <CONNECTION> error: %s: %r", args, None)
    assert not interrupts._not_an_interrupt(record(1, "Failed to read", KeyboardInterrupt()))
    assert interrupts._not_an_interrupt(record(1, "Failed to read", OSError("reset by peer")))
