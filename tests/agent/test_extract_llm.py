"""The real thing: SmolLM2-135M through llama.cpp (LangChain ChatLlamaCpp), the real MiniLM encoder and the
real Neo4j, on the first four items and users of the tiny MovieLens fixture.

One clean two-round run is shared by the module (the LLM dominates the time); the last test rebuilds the
graph and checks that a round 1 killed half-way and resumed ends with the clean run's round-1 graph.
"""
from __future__ import annotations

import dataclasses

import pytest

from kgplatform.agent import extract, intent_stats, load_backend, node_intents
from kgplatform.db.migrations import migrate
from kgplatform.ingest import write_dataset
from kgplatform.stats import wipe

pytestmark = pytest.mark.llm
pytest.importorskip("llama_cpp")

LIMIT = 4
K = 6  # fewer options than the pool, so "only offered options are linked" is a real constraint


def snapshot(graph) -> dict:
    """Everything extraction owns, without run ids/timestamps."""
    with graph.driver.session() as s:  # test-only inspection
        edges = {(r["n"], r["k"], r["kind"], r["model"], r["pv"]) for r in s.run(
            "MATCH (n)-[r:SATISFIES|HAS_INTENT]->(i:Intent) "
            "RETURN labels(n)[0] + '/' + n.id AS n, i.key AS k, r.kind AS kind, r.model AS model, "
            "r.promptVersion AS pv")}
        intents = {(r["k"], r["name"]) for r in s.run("MATCH (i:Intent) RETURN i.key AS k, i.name AS name")}
        status = {(r["id"], r["a"], r["b"]) for r in s.run(
            "MATCH (n) WHERE n.extractStatus IS NOT NULL "
            "RETURN labels(n)[0] + '/' + n.id AS id, n.extractStatus + '|' + n.extractKey AS a, "
            "coalesce(n.relatedStatus + '|' + n.relatedKey, '') AS b")}
    return {"edges": edges, "intents": intents, "status": status}


def fresh(session_graph, tiny_parsed):
    """The tiny fixture's real items and users (its ratings and KG play no part here: skipped for speed)."""
    wipe(session_graph)
    migrate(session_graph)
    nodes_only = dataclasses.replace(tiny_parsed, interactions=[], sessions=[], session_items=[], entities=[],
                                     facts=[])
    write_dataset(session_graph, nodes_only, progress=False)
    return session_graph


@pytest.fixture(scope="module")
def llm_settings(settings, tmp_path_factory):
    return settings.model_copy(update={"home": tmp_path_factory.mktemp("llm-home"), "glossary": "movies",
                                       "related_k": K})


@pytest.fixture(scope="module")
def clean(session_graph, tiny_parsed, llm_settings):
    g = fresh(session_graph, tiny_parsed)
    r1 = extract(g, llm_settings, round=1, limit=LIMIT, progress=False)
    r2 = extract(g, llm_settings, round=2, limit=LIMIT, progress=False)
    return {"graph": g, "r1": r1, "r2": r2, "snapshot": snapshot(g)}


def test_round1_extracts_exact_intents_with_provenance(clean):
    r1, g = clean["r1"], clean["graph"]
    assert r1.considered == 2 * LIMIT and r1.ok + r1.failed == 2 * LIMIT
    assert r1.ok >= LIMIT  # a 135M model still answers most nodes usefully
    assert r1.model == "smollm2-135m-instruct-q4_1" and r1.prompt_version.startswith("r1-")
    exact = [e for e in clean["snapshot"]["edges"] if e[2] == "exact"]
    assert exact and all(e[3] == r1.model and e[4] == r1.prompt_version for e in exact)
    assert {e[0].split("/")[1].split(":")[0] for e in exact} == {"ml-tiny"}
    assert {e[0].split("/")[0] for e in exact} == {"Item", "User"}
    for e in node_intents(g, "ml-tiny:1"):
        assert 3 <= len(e["key"]) <= 48 and e["key"] == e["key"].lower() and e["runId"]


def test_intents_merge_case_insensitively(clean):
    keys = [k for k, _ in clean["snapshot"]["intents"]]
    assert len(keys) == len(set(keys)) and all(k == k.lower().strip() for k in keys)


def test_round2_links_only_offered_options_never_own_intents(clean):
    g, r2 = clean["graph"], clean["r2"]
    assert r2.ok + r2.failed == 2 * LIMIT and r2.ok >= LIMIT
    related = [e for e in clean["snapshot"]["edges"] if e[2] == "related"]
    assert related and all(e[4] == r2.prompt_version for e in related)
    for node in sorted({e[0] for e in related}):
        label, nid = node.split("/")
        user = label == "User"
        rows = node_intents(g, nid, user=user)
        own = {r["key"] for r in rows if r["kind"] == "exact"}
        rel = {r["key"] for r in rows if r["kind"] == "related"}
        # the same retrieval the run made (exact intents are unchanged since): the offered options
        offered = {o["key"] for o in g.read(f"agent/retrieve_{label.lower()}_options", id=nid, k=K)}
        assert rel and not rel & own and rel <= offered
        assert all(0.0 < r["score"] <= 1.0 for r in rows if r["kind"] == "related")


def test_rerun_adds_nothing(clean, llm_settings):
    g = clean["graph"]
    for rnd in (1, 2):
        again = extract(g, llm_settings, round=rnd, limit=LIMIT, progress=False)
        assert again.llm_calls == 0 and again.ok == 0 and again.skipped + again.skipped_failed == 2 * LIMIT
    assert snapshot(g) == clean["snapshot"]
    st = intent_stats(g)
    assert st["int_edges"] == len(clean["snapshot"]["edges"]) and st["intents"] == len(clean["snapshot"]["intents"])
    assert st["avg_intent_degree"] == round(st["int_edges"] / st["intents"], 3)


class Killed(BaseException):
    """Stands for SIGKILL/Ctrl-C: not an Exception, so nothing in the agent may swallow it."""


def test_interrupted_run_resumed_matches_clean_run(clean, session_graph, tiny_parsed, llm_settings, tmp_path):
    g = fresh(session_graph, tiny_parsed)
    fresh_settings = llm_settings.model_copy(update={"home": tmp_path / "other-home"})  # its own, empty cache
    real = load_backend(fresh_settings)
    calls = {"n": 0}
    original = g.write_rows

    def dying_write_rows(name, rows, **kw):  # killed after the model answered, before the node is written
        if name.startswith("agent/write_"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Killed()
        return original(name, rows, **kw)

    g.write_rows = dying_write_rows
    try:
        with pytest.raises(Killed):
            extract(g, fresh_settings, round=1, limit=LIMIT, backend=real, progress=False)
    finally:
        g.write_rows = original
    resumed = extract(g, fresh_settings, round=1, limit=LIMIT, backend=real, progress=False)
    assert resumed.skipped + resumed.skipped_failed == 2  # two nodes were written before the kill
    assert resumed.cached <= 1  # the third was answered (and cached, if valid) but never written
    # the resumed round 1 wrote the clean run's round 1: its intents, exact edges, statuses and keys (round 2
    # reads only these, and adds no intents; a round 2 killed and resumed: tests/test_crash_extract.py)
    got, want = snapshot(g), clean["snapshot"]
    assert got["intents"] == want["intents"]
    assert got["edges"] == {e for e in want["edges"] if e[2] == "exact"}
    assert got["status"] == {(n, a, "") for n, a, _ in want["status"]}
