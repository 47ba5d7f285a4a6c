"""The graph ``benchmarks/serve.py`` measures on: a dataset, one trained run written back, and stand-ins for what
needs an LLM or an encoder (see :func:`build`). Kept apart so a profiling session can build it once and reuse it."""
from __future__ import annotations

import hashlib
import re
import time
from collections import Counter

import numpy as np
from _common import data_dir

from kgplatform.data import serving_graph
from kgplatform.db.graph import Graph
from kgplatform.graph.export import export_recdata
from kgplatform.graph.personas import PersonaRow, PersonaRun, write_personas
from kgplatform.graph.writeback import write_back
from kgplatform.ingest import LOADERS, load_dataset, write_dataset
from kgplatform.train import TrainConfig, Trainer

_WORD = re.compile(r"[a-z][a-z0-9']+")
_STOP = {"the", "and", "of", "a", "an", "in", "on", "for", "to", "with", "by", "from", "at", "or", "is", "s", "ii"}


def stand_in_intents(graph: Graph, parsed, *, max_per_item: int = 6) -> dict[str, int]:
    """Stand-in intents written through the extraction's own write queries: per item its genres (MovieLens) or
    frequent title words (others) as *exact* intents and, as a *related* one, the intent each of its first
    three most often co-occurs with; per user the two intents most frequent among their items."""
    per_item: dict[str, list[str]] = {}
    if any(it.get("genres") for it in parsed.items):
        for it in parsed.items:
            per_item[it["id"]] = [f"{parsed.name}:{g.lower()}" for g in (it.get("genres") or [])][:max_per_item]
    else:
        words = {it["id"]: list(dict.fromkeys(w for w in _WORD.findall((it.get("title") or "").lower())
                                              if w not in _STOP)) for it in parsed.items}
        df = Counter(w for ws in words.values() for w in ws)
        n = max(len(parsed.items), 1)
        for iid, ws in words.items():
            per_item[iid] = [f"{parsed.name}:{w}" for w in ws if 5 <= df[w] <= 0.05 * n][:max_per_item]
    co: Counter = Counter()
    for keys in per_item.values():
        for a in keys:
            for b in keys:
                if a != b:
                    co[(a, b)] += 1
    best: dict[str, str] = {}
    for (a, b), _ in sorted(co.items(), key=lambda kv: (-kv[1], kv[0])):
        best.setdefault(a, b)
    meta = {"model": "stand-in", "promptVersion": "bench", "runId": "serve-bench"}
    name = lambda k: k.split(":", 1)[1]  # noqa: E731
    exact = [{"id": iid, "status": "done", "error": None, "key": "bench",
              "intents": [{"key": k, "name": name(k)} for k in keys]} for iid, keys in per_item.items() if keys]
    graph.write_rows("agent/write_item_exact", exact, **meta)
    related = []
    for iid, keys in per_item.items():
        rel = [best[k] for k in keys[:3] if k in best and best[k] not in keys]
        if rel:
            related.append({"id": iid, "status": "done", "error": None, "key": "bench",
                            "intents": [{"key": k, "score": 0.5} for k in dict.fromkeys(rel)]})
    graph.write_rows("agent/write_item_related", related, **meta)
    taken: dict[str, Counter] = {}
    for r in parsed.interactions:
        taken.setdefault(r["user"], Counter()).update(per_item.get(r["item"], []))
    users = [{"id": u, "status": "done", "error": None, "key": "bench",
              "intents": [{"key": k, "name": name(k)} for k, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]}
             for u, c in taken.items() if c]
    graph.write_rows("agent/write_user_exact", users, **meta)
    return {"item exact": sum(len(r["intents"]) for r in exact),
            "item related": sum(len(r["intents"]) for r in related), "user": sum(len(r["intents"]) for r in users)}


def stand_in_personas(graph: Graph, parsed, k: int) -> int:
    """``k`` personas, users assigned round-robin, written by :func:`write_personas`."""
    users = sorted({r["user"] for r in parsed.interactions})
    personas = [PersonaRow(index=j, size=len(users[j::k]), centroid=[1.0, 0.0], label=f"stand-in persona {j}",
                           label_source="fallback", top_entities=["a", "b", "c"]) for j in range(k)]
    run = PersonaRun(run_id="serve-bench-personas", dataset=parsed.name, model="stand-in", personas=personas,
                     memberships=[(u, n % k, 1.0) for n, u in enumerate(users)], user_vectors=[])
    return write_personas(graph, run).memberships


def stand_in_text_vectors(graph: Graph, parsed, dim: int = 384) -> int:
    """Seeded random unit vectors as the items' text embeddings (``kgp embed`` needs the encoder; the
    similar-content query's cost does not depend on the values)."""
    rng = np.random.default_rng(0)
    rows = []
    for it in parsed.items:
        v = rng.standard_normal(dim).astype(np.float32)
        v /= np.linalg.norm(v)
        rows.append({"key": it["id"], "hash": hashlib.sha1(it["id"].encode()).hexdigest(), "embedding": v.tolist()})
    return graph.write_rows("embed/set_item_embeddings", rows, batch_size=1000)


def build(graph: Graph, dataset: str, *, model: str = "bpr", epochs: int = 2, personas: int = 8,
          stand_ins: bool = True, log=print):
    """Ingest ``dataset`` (with its KG), export it, train ``model`` and write its top-10 back, then the stand-ins.
    Returns the exported :class:`RecData`."""
    parsed = load_dataset(dataset, data_dir() / LOADERS[dataset][2])
    write_dataset(graph, parsed, progress=False)
    rec, rep = export_recdata(graph, parsed.name, progress=False)
    log(f"export {parsed.name}: {rep.edges:,} edges in {rep.seconds:.1f} s = {rep.edges_per_s:,.0f} edges/s")
    t = time.perf_counter()
    hetero = serving_graph(rec)
    log(f"to HeteroData: {time.perf_counter() - t:.2f} s ({hetero.num_edges:,} edges)")
    result = Trainer(TrainConfig(device="cpu", epochs=epochs, eval_every=epochs), log=lambda m: None).fit(model, rec)
    wb = write_back(graph, result, rec, k=10)
    log(f"write-back ({model}, {epochs} epochs): {wb.recommendations:,} RECOMMENDED edges in {wb.seconds:.1f} s")
    if stand_ins:
        log(f"stand-in intents: {stand_in_intents(graph, parsed)}; persona memberships: "
            f"{stand_in_personas(graph, parsed, personas)}; text vectors: {stand_in_text_vectors(graph, parsed)}")
    return rec
