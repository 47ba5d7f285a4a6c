"""One connection resolver for the CLI, the library and the tests.

Order: ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD`` if set → a testcontainers Neo4j container when a
Docker engine answers a ping → the local launcher (started if it is not running).
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from ..config import Settings
from ..errors import ConfigError, DatabaseUnavailable
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
    container.start()
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


def resolve(settings: Settings, *, start_local: bool = True, log: Callable[[str], None] | None = None
            ) -> tuple[ConnectionInfo, Callable[[], None] | None]:
    """Pick the database to talk to. Returns the connection and an optional cleanup callback."""
    say = log or (lambda m: print(m, file=sys.stderr))
    mode = settings.connection
    if mode in ("auto", "env") and settings.neo4j_uri:
        pw = settings.neo4j_password.get_secret_value() if settings.neo4j_password else None
        return ConnectionInfo(settings.neo4j_uri, settings.neo4j_user, pw, settings.neo4j_database, "env"), None
    if mode == "env":
        raise ConfigError("KGP_CONNECTION=env but NEO4J_URI is not set")
    if mode == "testcontainers" or (mode == "auto" and docker_available()):
        say(f"starting a throwaway {NEO4J_IMAGE} container (testcontainers)")
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
        return Graph.open(info, timeout_s=settings.query_timeout_s, on_close=cleanup)
    except BaseException:
        if cleanup:
            cleanup()
        raise
