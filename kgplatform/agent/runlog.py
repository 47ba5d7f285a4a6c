"""The ``Run`` node every LLM run leaves behind (round 1/2, knowledge, session intents), also when it stops early.

A run's graph writes are committed node by node as it goes, so one that is interrupted (Ctrl-C, or ``SIGTERM``,
which the ``kgp`` entry point turns into the same interrupt) or that fails has done real work: its ``Run`` node
records that work with ``status`` ``'interrupted'`` or ``'failed'`` and the ``error``, instead of leaving edges
that name a run nobody can list. Only ``SIGKILL`` (or a machine going down) leaves no ``Run`` node; the next
run resumes all the same.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..errors import interrupt_behind

if TYPE_CHECKING:  # pragma: no cover
    from ..db.graph import Graph
    from .cache import ResultCache

#: ``Run.status`` values
DONE, INTERRUPTED, FAILED = "done", "interrupted", "failed"
#: tries at writing the record of a run that ended with an error (the write is idempotent: a MERGE on the id)
RECORD_ATTEMPTS = 2


@contextmanager
def recorded_run(graph: "Graph", summary: Any, props: Callable[[], dict[str, Any]], *,
                 cache: "ResultCache | None" = None, started: float | None = None) -> Iterator[None]:
    """Record run ``summary.run_id`` (``agent/record_run``) when the block ends, however it ends.

    First, whatever happened: ``summary.cached`` gets the ``cache``'s hits and the cache is closed, and
    ``summary.seconds`` the time since ``started`` (``time.perf_counter()``). Then ``props()`` gives the
    record's properties (so the counts are the final ones). An exception from the block is re-raised unchanged
    after the record; writing the record is tried twice (an interrupt inside the driver can leave one connection
    broken), and if both fail (the database may be what failed) that second error is only added to the first
    one's notes, so the user sees the first.
    """
    try:
        try:
            yield
        finally:
            if cache is not None:
                summary.cached = cache.hits
                cache.close()
            if started is not None:
                summary.seconds = time.perf_counter() - started
    except BaseException as e:
        # an error the driver raised while cleaning up after an interrupt is recorded as that interrupt
        interrupt = interrupt_behind(e)
        status = INTERRUPTED if interrupt is not None else FAILED
        first = interrupt if interrupt is not None else e
        error = (f"{type(first).__name__}: {first}" if str(first) else type(first).__name__)[:500]
        record = {**props(), "status": status, "error": error}
        for attempt in range(RECORD_ATTEMPTS):  # the connection the interrupt hit may be broken: a second one
            try:
                graph.write("agent/record_run", id=summary.run_id, props=record)
                break
            except Exception as w:  # noqa: BLE001 - keep the original error; say why in its notes (KGP_DEBUG)
                if attempt == RECORD_ATTEMPTS - 1:
                    e.add_note(f"the Run record {summary.run_id} was not written: {type(w).__name__}: {w}")
        raise
    graph.write("agent/record_run", id=summary.run_id, props={**props(), "status": DONE, "error": None})


__all__ = ["DONE", "FAILED", "INTERRUPTED", "recorded_run"]
