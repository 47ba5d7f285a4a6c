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


@contextmanager
def recorded_run(graph: "Graph", summary: Any, props: Callable[[], dict[str, Any]], *,
                 cache: "ResultCache | None" = None, started: float | None = None) -> Iterator[None]:
    """Record run ``summary.run_id`` (``agent/record_run``) when the block ends, however it ends.

    First, whatever happened: ``summary.cached`` gets the ``cache``'s hits and the cache is closed, and
    ``summary.seconds`` the time since ``started`` (``time.perf_counter()``). Then ``props()`` gives the
    record's properties (so the counts are the final ones). An exception from the block is re-raised unchanged
    after the record; if writing the record fails too (the database may be what failed), that second error is
    dropped so the user sees the first.
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
        try:
            graph.write("agent/record_run", id=summary.run_id, props={**props(), "status": status, "error": error})
        except Exception:  # noqa: BLE001 - keep the original error
            pass
        raise
    graph.write("agent/record_run", id=summary.run_id, props={**props(), "status": DONE, "error": None})


__all__ = ["DONE", "FAILED", "INTERRUPTED", "recorded_run"]
