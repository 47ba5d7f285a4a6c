"""One connection resolver for the CLI and the library (the test suite picks its own database: tests/conftest.py).

``KGP_CONNECTION``:

- ``auto`` (default): ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD`` if ``NEO4J_URI`` is set, else the local
  launcher (started if it is not running). ``auto`` never starts a throwaway container, Docker or not: data
  written by one ``kgp`` command must still be there for the next.
- ``env``: ``NEO4J_URI`` only (an error when it is unset).
- ``local``: the local launcher, even when ``NEO4J_URI`` is set.
- ``testcontainers``: a throwaway ``neo4j`` container for this process only (needs a Docker engine); its
  data is gone when the process ends. For experiments; the test suite starts its own the same way.

:func:`choose` says which database a setting picks and why, without connecting or starting anything
(``kgp db status --json`` prints it); :func:`resolve` then produces the connection.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..config import Settings
from ..errors import ConfigError, DatabaseUnavailable, EnvironmentMissing
from .graph import ConnectionInfo, Graph

NEO4J_IMAGE = "neo4j:5.26-community"


def docker_available(timeout_s: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (the docker client alone is not enough)."""
    try:
        import docker  # testcontainers depends on it
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


def _testcontainers() -> tuple[ConnectionInfo, Callable[[], None]]:
    from testcontainers.neo4j import Neo4jContainer

    container = Neo4jContainer(NEO4J_IMAGE)
    try:
        container.start()
    except Exception as e:  # noqa: BLE001 - docker/testcontainers raise many kinds
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DatabaseUnavailable(f"the throwaway {NEO4J_IMAGE} container did not start: {first}") from e
    info = ConnectionInfo(
        uri=container.get_connection_url(),
        user="neo4j",
        password=container.password,
        source="testcontainers",
    )
    return info, container.stop


def local_server(settings: Settings):
    from .server import LocalServer

    return LocalServer(
        settings.neo4j_home,
        bolt_port=settings.bolt_port,
        http_port=settings.http_port,
        auth=settings.auth,
        password=settings.neo4j_password.get_secret_value() if settings.neo4j_password else None,
        heap=settings.heap,
        pagecache=settings.pagecache,
        start_timeout_s=settings.start_timeout_s,
    )


@dataclass(frozen=True)
class Choice:
    """Which database a setting picks, and why (nothing is connected or started to find out)."""

    mode: str  # the KGP_CONNECTION setting: auto | env | local | testcontainers
    source: str  # what it resolves to: env | local | testcontainers
    uri: str | None  # env: NEO4J_URI; local: the configured Bolt URI; testcontainers: None (a new container)
    database: str
    throwaway: bool  # True: the data is lost when the process ends
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def choose(settings: Settings) -> Choice:
    """The database ``settings`` resolve to, and why. Raises :class:`ConfigError` for ``env`` without a URI."""
    mode = settings.connection
    db = settings.neo4j_database
    if mode in ("auto", "env") and settings.neo4j_uri:
        return Choice(mode, "env", settings.neo4j_uri, db, False,
                      f"NEO4J_URI is set{' (KGP_CONNECTION=env)' if mode == 'env' else ''}")
    if mode == "env":
        raise ConfigError("KGP_CONNECTION=env but NEO4J_URI is not set",
                          hint="set NEO4J_URI (and NEO4J_USER / NEO4J_PASSWORD), or unset KGP_CONNECTION")
    if mode == "testcontainers":
        return Choice(mode, "testcontainers", None, "neo4j", True,
                      f"KGP_CONNECTION=testcontainers: every command starts its own throwaway {NEO4J_IMAGE} "
                      "container (needs Docker); its data is lost when the command ends")
    local_uri = f"bolt://127.0.0.1:{settings.bolt_port}"
    if mode == "local":
        why = "KGP_CONNECTION=local" + (" (NEO4J_URI is ignored)" if settings.neo4j_uri else "")
    else:
        why = (f"NEO4J_URI is not set: the local Neo4j under {settings.neo4j_home} (auto never uses a throwaway "
               "container; KGP_CONNECTION=testcontainers does)")
    return Choice(mode, "local", local_uri, db, False, why)


def resolve(settings: Settings, *, start_local: bool = True, log: Callable[[str], None] | None = None
            ) -> tuple[ConnectionInfo, Callable[[], None] | None]:
    """Pick the database to talk to. Returns the connection and an optional cleanup callback."""
    say = log or (lambda m: print(m, file=sys.stderr))
    choice = choose(settings)
    if choice.source == "env":
        pw = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
        return ConnectionInfo(settings.neo4j_uri or "", settings.neo4j_user, pw, settings.neo4j_database,
                              "env"), None
    if choice.source == "testcontainers":
        try:
            import testcontainers.neo4j  # noqa: F401
        except ImportError:
            raise EnvironmentMissing("KGP_CONNECTION=testcontainers but the testcontainers package is not installed",
                                     hint="pip install 'testcontainers[neo4j]', or unset KGP_CONNECTION") from None
        if not docker_available():
            raise DatabaseUnavailable("KGP_CONNECTION=testcontainers but no Docker engine answers",
                                      hint="start Docker, or unset KGP_CONNECTION to use the local Neo4j")
        say(f"starting a throwaway {NEO4J_IMAGE} container (KGP_CONNECTION=testcontainers): "
            "everything written is lost when this command ends")
        return _testcontainers()
    server = local_server(settings)
    info = server.status()
    if info is None:
        if not start_local:
            raise DatabaseUnavailable(
                f"the local Neo4j under {settings.neo4j_home} is not running",
                hint="start it with 'kgp db start', or set NEO4J_URI",
            )
        say(f"starting the local Neo4j under {settings.neo4j_home} ...")
        info = server.start()
        say(f"Neo4j ready at {info.uri} (Browser: {info.http_url})")
    return ConnectionInfo(info.uri, info.user if info.auth else None, info.password if info.auth else None,
                          settings.neo4j_database, "local"), None


def connect(settings: Settings, *, start_local: bool = True, log: Callable[[str], None] | None = None) -> Graph:
    """Resolve and open a :class:`Graph` (verifies connectivity and credentials)."""
    info, cleanup = resolve(settings, start_local=start_local, log=log)
    try:
        return Graph.open(info, timeout_s=settings.query_timeout_s, on_close=cleanup, retry_s=settings.db_retry_s)
    except BaseException:
        if cleanup:
            cleanup()
        raise
