"""Neo4j access: connection resolver, named-query registry, migrations, local server launcher."""
from .connect import connect, resolve
from .graph import ConnectionInfo, Graph
from .queries import NamedQuery, QueryRegistry, default_registry

__all__ = ["connect", "resolve", "ConnectionInfo", "Graph", "NamedQuery", "QueryRegistry", "default_registry"]
