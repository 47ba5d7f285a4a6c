"""An interrupt inside the Neo4j driver's socket read or write drops the connection instead of leaving it out of step.

The official driver (5.x and 6.x) reads a reply message in two steps: a chunk's 2-byte size, then its bytes. When
an ``OSError`` stops a read it marks the connection defunct and closes it. An interrupt (Ctrl-C's
``KeyboardInterrupt``, or ``SIGTERM`` as ``kgp`` raises it) is not an ``OSError``: the connection stays in use with
its read position somewhere inside a message. The driver's own clean-up (the session's rollback, the pool's reset)
then reads from the wrong place, and either fails with an error that hides the interrupt (``BufferError``), or
takes a message's bytes as a chunk size and waits for data that never comes: about 120 s on the local server
before ``kgp`` could exit. The async driver already treats its cancellation that way; the sync one does not.

:func:`install` wraps the connection's one-message read (``Bolt.fetch_message``) so that an interrupt in it
marks the connection defunct through the driver's own error path (it closes the socket and re-raises the
interrupt unchanged), the same thing an ``OSError`` there does. The rollback and reset then skip the dead
connection, the interrupt reaches the caller at once, and the pool opens a fresh connection for the next query.

Writes have the same gap: an interrupt can stop ``sendall`` part way through a message; the server then waits for
the rest and the driver's rollback for the server (~120 s as well). The send of the queued messages
(``Bolt._send_all``) is wrapped the same way.

The driver logs a dropped connection at ERROR; for an interrupt that line (on stderr when no logging is set up) is
left out, since ``kgp`` says "interrupted" itself. Idempotent; a driver without these methods (a layout this was
not written for) is left as it is.
"""
from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

_MARK = "_kgp_interrupt_drops_connection"
_DRIVER_IO_LOG = "neo4j.io"


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    """Logging filter: False for the driver's "<CONNECTION> error" record about a connection an interrupt dropped."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not any(isinstance(a, (KeyboardInterrupt, SystemExit)) for a in args)


def _dropping(method, set_defunct: str):
    """``method`` of a Bolt connection, wrapped: an interrupt in it marks the connection defunct with
    ``set_defunct`` (the driver's own path for a failed read or write)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (KeyboardInterrupt, SystemExit) as interrupt:
            if not (self.defunct() or self.closed()):
                # closes the connection and re-raises the interrupt itself (not an OSError: no error rewrite)
                getattr(self, set_defunct)(interrupt)
            raise

    setattr(wrapper, _MARK, True)
    return wrapper


#: the connection's one-message read and its send of the queued messages, with the driver's handler for each
_WRAPPED = (("fetch_message", "_set_defunct_read"), ("_send_all", "_set_defunct_write"))


def install() -> bool:
    """Wrap the connection's read and send once; True when the wraps are (now) in place."""
    try:
        from neo4j._sync.io import Bolt  # both 5.x (io/_bolt.py) and 6.x (io/_bolt/_base.py) export it here
    except ImportError:  # pragma: no cover - a driver layout this module was not written for
        log.debug("neo4j driver without neo4j._sync.io.Bolt: interrupt handling left to the driver")
        return False
    if not all(hasattr(Bolt, m) and hasattr(Bolt, h) for m, h in _WRAPPED):  # pragma: no cover
        log.debug("neo4j Bolt without %s: interrupt handling left to the driver", _WRAPPED)
        return False
    for method, handler in _WRAPPED:
        if not getattr(getattr(Bolt, method), _MARK, False):
            setattr(Bolt, method, _dropping(getattr(Bolt, method), handler))
    log_ = logging.getLogger(_DRIVER_IO_LOG)
    if _not_an_interrupt not in log_.filters:
        log_.addFilter(_not_an_interrupt)
    return True
