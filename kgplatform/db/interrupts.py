"""An interrupt inside the Neo4j driver's reply read drops the connection instead of leaving it out of step.

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
Idempotent; a driver without the method (a layout this was not written for) is left as it is.
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


def install() -> bool:
    """Wrap ``Bolt.fetch_message`` once; True when the wrap is (now) in place."""
    try:
        from neo4j._sync.io import Bolt  # both 5.x (io/_bolt.py) and 6.x (io/_bolt/_base.py) export it here
    except ImportError:  # pragma: no cover - a driver layout this module was not written for
        log.debug("neo4j driver without neo4j._sync.io.Bolt: interrupt handling left to the driver")
        return False
    fetch = getattr(Bolt, "fetch_message", None)
    if fetch is None or not hasattr(Bolt, "_set_defunct_read"):  # pragma: no cover
        log.debug("neo4j Bolt without fetch_message/_set_defunct_read: interrupt handling left to the driver")
        return False
    if getattr(fetch, _MARK, False):
        return True

    @functools.wraps(fetch)
    def fetch_message(self, *args, **kwargs):
        try:
            return fetch(self, *args, **kwargs)
        except (KeyboardInterrupt, SystemExit) as interrupt:
            if not (self._defunct or self._closed):
                # closes the connection and re-raises the interrupt itself (not an OSError: no error rewrite)
                self._set_defunct_read(interrupt)
            raise

    setattr(fetch_message, _MARK, True)
    Bolt.fetch_message = fetch_message
    logging.getLogger(_DRIVER_IO_LOG).addFilter(_not_an_interrupt)
    return True
