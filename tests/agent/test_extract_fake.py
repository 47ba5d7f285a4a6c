"""Extraction against the real Neo4j with a deterministic scripted chat model (an extra seam: the real
model runs in test_extract_llm.py). Answers are known, so graph contents can be asserted exactly."""
from __future__ import annotations

import json

import pytest

from kgplatform.agent import extract, intent_stats, node_intents
from kgplatform.agent.prompts import example_keys
from kgplatform.errors import ExtractionError
from kgplatform.ingest.writer import write_dataset

from .conftest import toy_dataset
from .fakes import options_of, scripted_backend, title_of

ANSWERS = {
    "Star Voyage (1990)": ["Space Travel", "distant planets"],
    "Robot Dawn (1991)": ["space travel", "robot uprising"],
    "Love Letters (1992)": ["romance", "letter writing"],
    "A 30-year-old female engineer.": ["engineering", "space travel"],
}


def round1_script(prompt: str, i: int) -> str:
    t = title_of(prompt)
    return json.dumps({"intents": ANSWERS[t]}) if t in ANSWERS else "I am not sure, sorry!"


def first_option(prompt: str, i: int) -> str:
    return json.dumps({"intents": options_of(prompt)[:1]})


def edges(graph) -> set[tuple[str, str, str]]:
    out = set()
    for nid in ("toy:i1", "toy:i2", "toy:i3", "toy:i4"):
        out |= {(nid, r["key"], r["kind"]) for r in node_intents(graph, nid)}
    out |= {("toy:u1", r["key"], r["kind"]) for r in node_intents(graph, "toy:u1", user=True)}
    return out


def node(graph, nid: str) -> dict:
    with graph.driver.session() as s:  # test-only inspection
        return dict(s.run("MATCH (n {id: $id}) RETURN n", id=nid).single()["n"])


def test_round1_writes_merged_intents_with_provenance(toy_graph, agent_settings):
    s = extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    assert (s.ok, s.failed, s.no_text, s.considered) == (4, 1, 1, 6)  # i4 fails, u2 has no profile
    assert edges(toy_graph) == {
        ("toy:i1", "space travel", "exact"), ("toy:i1", "distant planets", "exact"),
        ("toy:i2", "space travel", "exact"), ("toy:i2", "robot uprising", "exact"),
        ("toy:i3", "romance", "exact"), ("toy:i3", "letter writing", "exact"),
        ("toy:u1", "engineering", "exact"), ("toy:u1", "space travel", "exact"),
    }
    e = node_intents(toy_graph, "toy:i1")[0]
    assert e["model"] == "fake-llm" and e["promptVersion"] == s.prompt_version and e["runId"] == s.run_id
    st = intent_stats(toy_graph)
    assert (st["intents"], st["int_edges"], st["exact_edges"], st["related_edges"]) == (6, 8, 8, 0)
    assert st["avg_intent_degree"] == round(8 / 6, 3)


def test_case_insensitive_merge_keeps_first_surface_form(toy_graph, agent_settings):
    extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    names = {r["key"]: r["name"] for r in node_intents(toy_graph, "toy:i2")}
    assert names["space travel"] == "Space Travel"  # i1 ("Space Travel") came first


def test_garbage_is_retried_then_marked_failed_and_the_run_goes_on(toy_graph, agent_settings):
    s = extract(toy_graph, agent_settings, round=1, items_only=True, backend=scripted_backend(round1_script),
                progress=False)
    assert (s.ok, s.failed) == (3, 1)
    assert s.llm_calls == 3 + (1 + agent_settings.llm_retries) and s.retries == agent_settings.llm_retries
    bad = node(toy_graph, "toy:i4")
    assert bad["extractStatus"] == "failed" and "no JSON object" in bad["extractError"]
    assert s.failures == [{"id": "toy:i4", "reason": bad["extractError"]}]


def test_a_retry_can_recover(toy_graph, agent_settings):
    def flaky(prompt, i):
        return "{not json" if i == 0 else round1_script(prompt, i)

    s = extract(toy_graph, agent_settings, round=1, limit=1, items_only=True, backend=scripted_backend(flaky),
                progress=False)
    assert (s.ok, s.failed, s.retries) == (1, 0, 1)


def test_parroted_few_shot_answers_are_rejected(toy_graph, agent_settings):
    parrot = sorted(example_keys())[:3]
    s = extract(toy_graph, agent_settings, round=1, limit=1, items_only=True, progress=False,
                backend=scripted_backend(lambda p, i: json.dumps({"intents": parrot})))
    assert s.failed == 1 and s.rejected_copies == 1 + agent_settings.llm_retries
    assert "few-shot" in node(toy_graph, "toy:i1")["extractError"]


def test_rerun_skips_done_and_failed_nodes_unless_asked(toy_graph, agent_settings):
    be = scripted_backend(round1_script)
    extract(toy_graph, agent_settings, round=1, backend=be, progress=False)
    before = edges(toy_graph)
    again = extract(toy_graph, agent_settings, round=1, backend=be, progress=False)
    assert (again.skipped, again.skipped_failed, again.llm_calls) == (4, 1, 0)
    assert edges(toy_graph) == before
    retry = extract(toy_graph, agent_settings, round=1, backend=be, retry_failed=True, progress=False)
    assert (retry.skipped, retry.failed, retry.llm_calls) == (4, 1, 1 + agent_settings.llm_retries)
    # --redo without the cache asks the model again for the done nodes too, and lands on the same graph
    redo = extract(toy_graph, agent_settings, round=1, backend=be, redo=True, use_cache=False, progress=False)
    assert (redo.skipped, redo.ok, redo.cached) == (0, 4, 0) and redo.llm_calls >= 4
    assert edges(toy_graph) == before
    # every dropped phrase is counted under its reason (failed attempts' drops too)
    assert redo.phrases >= redo.ok and sum(redo.dropped_reasons.values()) >= redo.dropped_phrases


def test_result_cache_replays_answers_after_the_graph_is_rebuilt(graph, agent_settings):
    be = scripted_backend(round1_script)
    write_dataset(graph, toy_dataset(), progress=False)
    extract(graph, agent_settings, round=1, backend=be, progress=False)
    before = edges(graph)
    from kgplatform.stats import wipe

    wipe(graph)
    write_dataset(graph, toy_dataset(), progress=False)
    s = extract(graph, agent_settings, round=1, backend=be, progress=False)
    assert s.cached == 4 and s.llm_calls == 1 + agent_settings.llm_retries  # only the failing node asks again
    assert edges(graph) == before


def test_changed_text_redoes_the_node_and_replaces_its_edges(toy_graph, agent_settings):
    be = scripted_backend(round1_script)
    extract(toy_graph, agent_settings, round=1, backend=be, progress=False)
    write_dataset(toy_graph, toy_dataset({"i3": "Love Letters (1992)\nGenres: Romance, War.\nLetters from the front."}),
                  progress=False)
    s = extract(toy_graph, agent_settings, round=1, backend=be, progress=False)
    assert (s.ok, s.skipped) == (1, 3)
    assert {r["key"] for r in node_intents(toy_graph, "toy:i3")} == {"romance", "letter writing"}
    assert len(node_intents(toy_graph, "toy:i3")) == 2  # replaced, not duplicated


def test_backend_errors_abort_and_leave_nodes_pending(toy_graph, agent_settings):
    def down(prompt, i):
        raise ConnectionError("connection refused")

    with pytest.raises(ExtractionError, match="failed 5 times in a row"):
        extract(toy_graph, agent_settings, round=1, backend=scripted_backend(down), progress=False)
    assert "extractStatus" not in node(toy_graph, "toy:i1")  # nothing recorded: the next run retries it


def test_glossary_terms_are_appended_under_the_tag(toy_graph, agent_settings):
    be = scripted_backend(round1_script)
    extract(toy_graph, agent_settings, round=1, items_only=True, glossary="movies", backend=be, progress=False)
    robot = next(p for p in be.chat.prompts if "Robot Dawn" in p)
    assert "\n### Knowledge Context:\n- sci-fi: Stories built on imagined science" in robot
    assert "\n- film noir: A crime drama style" in robot
    assert "Knowledge Context" not in next(p for p in be.chat.prompts if "Love Letters" in p)


def test_round2_needs_an_intent_pool(toy_graph, agent_settings):
    with pytest.raises(ExtractionError, match="no intents yet"):
        extract(toy_graph, agent_settings, round=2, backend=scripted_backend(first_option), progress=False)


def test_round2_offers_only_intents_the_node_lacks_and_links_the_pick(toy_graph, agent_settings):
    extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    be = scripted_backend(first_option)
    s = extract(toy_graph, agent_settings, round=2, backend=be, progress=False)
    assert (s.ok, s.pending_round1, s.no_text) == (5, 0, 1)  # i4 failed round 1 but still gets options
    for prompt in be.chat.prompts:
        offered = set(options_of(prompt))
        own = {"Star Voyage": {"Space Travel", "distant planets"}, "Robot Dawn": {"space travel", "robot uprising"},
               "Love Letters": {"romance", "letter writing"}}.get(title_of(prompt).split(" (")[0], set())
        assert offered and not offered & own
    related = {(n, k) for n, k, kind in edges(toy_graph) if kind == "related"}
    exact = {(n, k) for n, k, kind in edges(toy_graph) if kind == "exact"}
    assert len(related) == 5 and not related & exact
    scores = [r["score"] for r in node_intents(toy_graph, "toy:i1") if r["kind"] == "related"]
    assert scores and all(0.0 < x <= 1.0 for x in scores)


def test_round2_rejects_picks_that_were_not_offered(toy_graph, agent_settings):
    extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    s = extract(toy_graph, agent_settings, round=2, limit=1, items_only=True, progress=False,
                backend=scripted_backend(lambda p, i: json.dumps({"intents": ["time travel"]})))
    assert s.failed == 1 and "not offered" in node(toy_graph, "toy:i1")["relatedError"]
    assert not [r for r in node_intents(toy_graph, "toy:i1") if r["kind"] == "related"]
    assert intent_stats(toy_graph)["intents"] == 6  # no intent invented


def test_round2_rerun_adds_nothing_and_round1_redo_voids_related(toy_graph, agent_settings):
    extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    be = scripted_backend(first_option)
    extract(toy_graph, agent_settings, round=2, backend=be, progress=False)
    before = edges(toy_graph)
    again = extract(toy_graph, agent_settings, round=2, backend=be, progress=False)
    assert (again.skipped, again.llm_calls) == (5, 0) and edges(toy_graph) == before
    write_dataset(toy_graph, toy_dataset({"i1": "Star Voyage (1990)\nA new cut of the film."}), progress=False)
    extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    assert "relatedStatus" not in node(toy_graph, "toy:i1")
    redo = extract(toy_graph, agent_settings, round=2, backend=be, progress=False)
    assert (redo.ok, redo.skipped) == (1, 4)


def test_round2_offers_only_the_node_datasets_pool(toy_graph, agent_settings):
    from kgplatform.ingest.model import ParsedDataset

    other = ParsedDataset(name="sea", kind="generic", path="-", items=[
        {"id": "sea:s1", "rawId": "s1", "dataset": "sea", "title": "Deep",
         "text": "Deep (1999)\nCities under the sea."}])
    write_dataset(toy_graph, other, progress=False)
    ANSWERS["Deep (1999)"] = ["underwater cities"]
    try:
        extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    finally:
        del ANSWERS["Deep (1999)"]
    be = scripted_backend(first_option)
    extract(toy_graph, agent_settings, round=2, dataset="toy", backend=be, progress=False)
    offered = {o for p in be.chat.prompts for o in options_of(p)}
    assert offered and "underwater cities" not in offered


def test_shards_split_the_nodes_without_overlap(toy_graph, agent_settings):
    parts = [extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False,
                     shard=(i, 2), use_cache=False) for i in (0, 1)]
    assert sum(p.considered - p.no_text for p in parts) == 5 and sum(p.ok + p.failed for p in parts) == 5
    whole = extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False)
    assert whole.ok == 0 and whole.skipped == 4 and whole.skipped_failed == 1  # the shards did everything once
    st = intent_stats(toy_graph)
    assert (st["intents"], st["exact_edges"]) == (6, 8)
    with pytest.raises(Exception, match="shard must be I/N"):
        extract(toy_graph, agent_settings, round=1, backend=scripted_backend(round1_script), shard=(2, 2))


def test_popular_order_visits_items_by_training_interactions_only(graph, agent_settings):
    import dataclasses

    from kgplatform.agent.extract import _pages

    # leave-one-out holds out each user's last two interactions: i1 is the most taken item overall (3) but
    # only ever held out, so it counts 0; training counts: i2 2, i3 2, i4 1, i1 0
    seqs = {"u1": ["i3", "i2", "i1", "i4"], "u2": ["i3", "i4", "i2", "i1"], "u3": ["i2", "i1", "i4"]}
    toy = toy_dataset()
    users = toy.users + [{"id": "toy:u3", "rawId": "u3", "dataset": "toy"}]
    rows = [{"user": f"toy:{u}", "item": f"toy:{i}", "pos": p, "ts": 1000.0 * p, "rating": 4.0, "behavior": "bought"}
            for u, seq in seqs.items() for p, i in enumerate(seq)]
    write_dataset(graph, dataclasses.replace(toy, users=users, interactions=rows), progress=False)
    order = [r["id"] for r in _pages(graph, "Item", "toy", order="popular")]
    assert order == ["toy:i2", "toy:i3", "toy:i4", "toy:i1"]
    assert [r["id"] for r in _pages(graph, "Item", "toy")] == ["toy:i1", "toy:i2", "toy:i3", "toy:i4"]
    # users by their own training interactions (u1 2, u2 2, u3 1)
    assert [r["id"] for r in _pages(graph, "User", "toy", order="popular")] == ["toy:u1", "toy:u2", "toy:u3"]
    # a budget of two items goes to the two most taken in training
    s = extract(graph, agent_settings, round=1, backend=scripted_backend(round1_script), progress=False,
                items_only=True, limit=2, order="popular")
    assert s.considered == 2 and s.ok == 2
    assert {e[0] for e in edges(graph)} == {"toy:i2", "toy:i3"}
    with pytest.raises(Exception, match="order must be one of id, popular"):
        extract(graph, agent_settings, round=1, backend=scripted_backend(round1_script), order="random")
