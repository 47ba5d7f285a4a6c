"""Persona runs: learn HDGI personas from a dataset's training graph, label them with the LLM agent, write them
back (``kgp personas``); also the persona write-back of a trained persona-aware recommender.

The library calls the CLI wraps::

    run_personas(graph, settings, dataset, config=HDGIConfig(...), seed=2024, label=True) -> PersonaReport
    persona_run(personas, data, graph, settings, run_id=..., model=..., label=True) -> PersonaRun
"""
from __future__ import annotations

import dataclasses
import re
import resource
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kgplatform.config import Settings
from kgplatform.data import RecData, leave_one_out, training_view
from kgplatform.db.graph import Graph
from kgplatform.graph.personas import (PersonaRow, PersonaRun, PersonaWriteReport, entity_labels, intent_names,
                                       write_personas)
from kgplatform.models.personas import HDGIConfig, Personas, learn_personas


@dataclass
class PersonaReport:
    run: PersonaRun
    written: PersonaWriteReport | None
    seconds: dict[str, float]
    hdgi_seconds_per_epoch: float | None
    peak_rss_mb: float
    labels: dict[str, int] = field(default_factory=dict)  # label source -> count

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.run_id, "dataset": self.run.dataset, "model": self.run.model,
            "k": len(self.run.personas), "summary": self.run.summary, "seconds": self.seconds,
            "hdgi_seconds_per_epoch": self.hdgi_seconds_per_epoch, "peak_rss_mb": round(self.peak_rss_mb, 1),
            "labels": self.labels,
            "personas": [dataclasses.asdict(p) | {"centroid": None} for p in self.run.personas],
        }


def _names(graph: Graph, data: RecData, personas: Personas, titles: dict[str, str]
           ) -> tuple[list[list[str]], list[list[str]], list[list[str]], list[list[str]], list[list[str]]]:
    """Display strings of each persona's top items, entities and intents (plus the ids behind them)."""
    I = data.num_items
    ent_uris = sorted({data.entity_ids[e - I] for tops in personas.top_entities for e, _ in tops
                       if e >= I and data.entity_ids})
    labels = entity_labels(graph, ent_uris) if ent_uris else {}
    keys = sorted({data.intent_keys[t] for tops in personas.top_intents for t, _ in tops})
    names = intent_names(graph, keys) if keys else {}

    def entity(e: int) -> tuple[str, str]:
        if e < I:  # an item acting as a KG entity (item-item fact)
            iid = data.item_ids[e]
            return iid, titles.get(iid) or iid
        uri = data.entity_ids[e - I]
        return uri, _pretty_uri(labels.get(uri) or uri)

    item_ids = [[data.item_ids[i] for i, _ in tops] for tops in personas.top_items]
    item_names = [[titles.get(i) or i for i in ids] for ids in item_ids]
    # entities without a readable name (Freebase m.… ids, which carry no label here) tell a person nothing
    ents = [[x for x in (entity(e) for e, _ in tops) if not _FREEBASE_ID.match(x[1])][:10]
            for tops in personas.top_entities]
    intents = [[names.get(data.intent_keys[t], data.intent_keys[t]) for t, _ in tops] for tops in personas.top_intents]
    return item_names, item_ids, [[n for _, n in e] for e in ents], [[i for i, _ in e] for e in ents], intents


_FREEBASE_ID = re.compile(r"^(http://rdf\.freebase\.com/ns/)?m\.[0-9a-z_]+$")


def _pretty_uri(s: str) -> str:
    """``http://dbpedia.org/resource/Category:Film_noir`` → ``Film noir`` (labels are often missing)."""
    tail = s.rsplit("/", 1)[-1]
    if tail.startswith("Category:"):
        tail = tail[len("Category:"):]
    return tail.replace("_", " ") if s.startswith("http") else s


def persona_run(personas: Personas, data: RecData, graph: Graph, settings: Settings, *, run_id: str, model: str,
                label: bool = True, llm_model: str | None = None, endpoint: str | None = None,
                params: dict | None = None, summary: dict | None = None, log: Callable[[str], None] | None = None,
                user_vectors: bool = True, record_id: str | None = None) -> PersonaRun:
    """Turn learned :class:`Personas` (training-view indices of ``data``) into a :class:`PersonaRun` with
    labels (LLM, cached; fallback labels when ``label`` is false or the model gives none)."""
    from kgplatform.agent.cache import ResultCache
    from kgplatform.agent.extract import default_cache_path
    from kgplatform.agent.personas import PersonaDescription, label_personas
    from kgplatform.graph.export import item_titles

    titles = item_titles(graph, data.dataset)
    item_names, item_ids, ent_names, ent_ids, intents = _names(graph, data, personas, titles)
    descriptions = [PersonaDescription(item_names[j], ent_names[j], intents[j]) for j in range(personas.k)]
    backend = None
    if label:
        from kgplatform.agent.llm import load_backend

        try:
            backend = load_backend(settings, llm_model, endpoint)
        except Exception as e:  # noqa: BLE001 - no model here: fallback labels, said in the record
            if log:
                log(f"[personas] no LLM for labels ({e}); using data-derived labels")
    with ResultCache(default_cache_path(settings)) as cache:
        labels = label_personas(backend, descriptions, cache=cache, retries=settings.llm_retries, log=None)
    rows = [PersonaRow(index=j, size=int(personas.sizes[j]), centroid=personas.centroids[j].tolist(),
                       label=labels[j].text, label_source=labels[j].source, label_model=labels[j].model,
                       label_prompt_version=labels[j].prompt_version, top_items=item_names[j][:10],
                       top_item_ids=item_ids[j][:10], top_entities=ent_names[j][:10], top_entity_ids=ent_ids[j][:10],
                       top_intents=intents[j][:10]) for j in range(personas.k)]
    members = [(data.user_ids[u], int(a), float(w)) for u, (a, w) in
               enumerate(zip(personas.assignment.tolist(), personas.weight.tolist()))]
    # a user without training items has no persona and no meaningful vector: neither is written
    vectors = ([(data.user_ids[u], v) for u, (v, a) in
                enumerate(zip(personas.user_emb.float().tolist(), personas.assignment.tolist())) if a >= 0]
               if user_vectors and personas.user_vectors == "hdgi" else [])
    return PersonaRun(run_id, data.dataset, model, rows, members, vectors, params or {},
                      (summary or {}) | personas.summary()
                      | {"label_errors": [lb.error for lb in labels if lb.error]}, record_id)


def run_personas(graph: Graph, settings: Settings, dataset: str, *, config: HDGIConfig | None = None,
                 seed: int = 2024, label: bool = True, llm_model: str | None = None, endpoint: str | None = None,
                 write: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
                 ) -> PersonaReport:
    """Export ``dataset``, learn personas from its training view, label and write them (``kgp personas``)."""
    from kgplatform.graph.export import export_recdata

    cfg = (config or HDGIConfig()).validate()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    data, _ = export_recdata(graph, dataset)
    seconds["export"] = time.perf_counter() - t0
    split = leave_one_out(data)
    train = training_view(data, split)  # the leakage boundary: personas see training interactions only
    t1 = time.perf_counter()
    from kgplatform.train.trainer import seed_everything

    gen = seed_everything(seed)
    personas = learn_personas(train, cfg, gen, log=log)
    seconds["learn"] = time.perf_counter() - t1
    epochs = len(personas.losses)
    run_id = f"personas-{dataset}-s{seed}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
    t2 = time.perf_counter()
    run = persona_run(personas, data, graph, settings, run_id=run_id, model=cfg.user_vectors, label=label,
                      llm_model=llm_model, endpoint=endpoint, log=log,
                      params={"hdgi": dataclasses.asdict(cfg), "seed": seed, "split": "leave-one-out (training view)"},
                      summary={"data_checksum": data.checksum(), "users": data.num_users, "items": data.num_items})
    seconds["label"] = time.perf_counter() - t2
    written = None
    if write:
        t3 = time.perf_counter()
        written = write_personas(graph, run)
        seconds["write"] = time.perf_counter() - t3
    seconds["total"] = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    counts: dict[str, int] = {}
    for p in run.personas:
        counts[p.label_source] = counts.get(p.label_source, 0) + 1
    hdgi_spe = personas.fit_seconds / epochs if epochs else None
    return PersonaReport(run, written, {k: round(v, 2) for k, v in seconds.items()}, hdgi_spe, peak, counts)


__all__ = ["PersonaReport", "persona_run", "run_personas"]
