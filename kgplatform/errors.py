"""One exception root for kgplatform.

Library code raises subclasses of :class:`KgpError`; the CLI maps each to one ``Error: ...`` line on
stderr (plus an optional ``Hint: ...``) and the subclass's exit code. ``KGP_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations


class KgpError(Exception):
    """Root of every error kgplatform raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split())


class ConfigError(KgpError):
    """Bad or missing configuration (settings, options, paths)."""

    exit_code = 2


class EnvironmentMissing(KgpError):
    """A required tool (Java, Maven, a model package) is not installed."""

    exit_code = 3


class DatabaseUnavailable(KgpError):
    """Neo4j cannot be reached (down, wrong URI)."""

    exit_code = 4


class AuthenticationFailed(KgpError):
    """Neo4j refused the credentials."""

    exit_code = 5


class ServerError(KgpError):
    """The local Neo4j launcher failed to start or stop."""

    exit_code = 6


class MigrationError(KgpError):
    """A migration is malformed, was edited after being applied, or failed."""

    exit_code = 7


class QueryError(KgpError):
    """A named Cypher query is unknown or failed."""

    exit_code = 8


class DataValidationError(KgpError):
    """An input file is missing or malformed (message starts with ``file:line:``)."""

    exit_code = 9


class NotFound(KgpError):
    """An id given by the user does not exist in the graph."""

    exit_code = 10


class ExtractionError(KgpError):
    """The LLM backend is misconfigured or cannot be loaded."""

    exit_code = 11


class TrainingError(KgpError):
    """Export, training or evaluation cannot proceed."""

    exit_code = 12


def interrupt_behind(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The interrupt (Ctrl-C, or ``SIGTERM`` as the CLI raises it) that ``exc`` is, or that it was raised while
    handling (its ``__cause__`` / ``__context__`` chain); None when there is none.

    An interrupt can land anywhere, including inside the Neo4j driver while it reads a reply; the driver's own
    clean-up (rolling back, resetting the connection) then fails with an error of its own (``BufferError``,
    ``ServiceUnavailable``, …) that hides the interrupt. Such an error is the interrupt's consequence, so a run is
    recorded, and the command ends, as interrupted.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt):
            return e
        todo.extend((e.__context__, e.__cause__))
    return None
