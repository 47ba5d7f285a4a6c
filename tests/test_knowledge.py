"""Fused user knowledge (``kgp extract --round knowledge``): training behaviours only, validated answers, stored
with provenance, resumable; the real GGUF on a few users."""
from __future__ import annotations

import json

import pytest

from kgplatform.agent.knowledge import (BehaviorItem, UserBehaviors, check_profile, fuse_knowledge,
                                        knowledge_prompt, render)
from kgplatform.agent.llm import load_backend
from kgplatform.agent.quality import content_words
from kgplatform.agent.schemas import InvalidAnswer
from kgplatform.data import leave_one_out
from kgplatform.errors import ConfigError
from kgplatform.graph.export import export_recdata, item_titles
from kgplatform.graph.instructions import user_knowledge_texts
from kgplatform.ingest import write_dataset
from kgplatform.knowledge import entity_name, extract_knowledge, knowledge_report, user_behaviors

from .agent.fakes import scripted_backend

DS = "ml-tiny"
GOOD = json.dumps({"profile": {"likes": ["animated comedies", "space adventures", "Toy Story"],
                               "dislikes": ["slow dramas"], "contexts": ["family evenings"],
                               "leanings": ["1990s films"]}})


@pytest.fixture
def tiny(graph, tiny_parsed):
    write_dataset(graph, tiny_parsed, progress=False)
    return graph


def test_prompts_hold_training_behaviours_only(tiny):
    data, _ = export_recdata(tiny, DS, intents=False, text=False, progress=False)
    split = leave_one_out(data)
    titles = item_titles(tiny, DS)
    behaviors = user_behaviors(data, split, titles)
    assert len(behaviors) == data.num_users
    checked = 0
    for u, b in enumerate(behaviors):
        lo, n_train = int(data.seq_indptr[u]), int(split.train_len[u])
        seq = data.seq_items[lo:int(data.seq_indptr[u + 1])].tolist()
        train_titles = {titles[data.item_ids[i]] for i in seq[:n_train]}
        held = [titles[data.item_ids[i]] for i in seq[n_train:]]
        assert b.total == n_train and sorted(b.titles) == sorted(titles[data.item_ids[i]] for i in seq[:n_train])
        block = render(b)
        for t in held:
            if t not in train_titles:
                assert t not in block, (b.user, t)
                checked += 1
        # grouped by the typed feedback, most recent first
        assert set(b.groups) <= {"loved", "liked", "watched", "disliked"}
    assert checked > 100


def test_tuning_scope_prompts_stop_before_the_last_training_item(tiny):
    """The tuning-scope profile of a user is fused from the training prefix before the last training item (the
    target of the user's instruction-tuning example), so it cannot name that answer."""
    data, _ = export_recdata(tiny, DS, intents=False, text=False, progress=False)
    split = leave_one_out(data)
    titles = item_titles(tiny, DS)
    full = {b.user: b for b in user_behaviors(data, split, titles)}
    tuning = user_behaviors(data, split, titles, scope="tuning")
    n_train = {data.user_ids[u]: int(split.train_len[u]) for u in range(data.num_users)}
    assert {b.user for b in tuning} == {u for u, n in n_train.items() if n >= 2}
    checked = 0
    for b in tuning:
        u = data.user_ids.index(b.user)
        seq = data.sequence(u).tolist()
        n = n_train[b.user]
        assert b.total == n - 1 and sorted(b.titles) == sorted(titles[data.item_ids[i]] for i in seq[:n - 1])
        answer = titles[data.item_ids[seq[n - 1]]]
        if answer not in {titles[data.item_ids[i]] for i in seq[:n - 1]}:
            assert answer not in render(b) and answer in render(full[b.user]), b.user
            checked += 1
    assert checked > 50
    with pytest.raises(ConfigError, match="scope"):
        user_behaviors(data, split, titles, scope="everything")


def test_tuning_scope_knowledge_is_stored_apart(tiny, settings):
    """Both scopes of one user live side by side: the tuning one never replaces or shadows what models read."""
    be = scripted_backend(lambda prompt, k: GOOD)
    first = extract_knowledge(tiny, settings, DS, limit=4, backend=be, use_cache=False)
    tuned = extract_knowledge(tiny, settings, DS, limit=4, backend=be, use_cache=False, scope="tuning")
    assert first.ok == 4 and tuned.ok == tuned.considered >= 3 and tuned.scope == "tuning"
    assert len(tiny.read("knowledge/user_knowledge", dataset=DS)) == 4  # the training scope is unchanged
    rows = tiny.driver.execute_query(
        "MATCH (u:User)-[:HAS_TUNING_KNOWLEDGE]->(k:Knowledge) RETURN u.id AS u, k.id AS id, k.scope AS scope"
    ).records
    assert len(rows) == tuned.ok and all(r["id"] == f"{r['u']}#tuning" and r["scope"] == "tuning" for r in rows)
    assert set(user_knowledge_texts(tiny, DS, "tuning")) == {r["u"] for r in rows}
    # each scope resumes on its own
    again = extract_knowledge(tiny, settings, DS, limit=4, backend=be, use_cache=False, scope="tuning")
    assert (again.skipped, again.ok) == (tuned.ok, 0)
    rep = knowledge_report(tiny, DS, sample=2)
    assert (rep["users_ok"], rep["users_failed"]) == (4, 0)  # the report counts the training scope


def test_entity_names_are_readable_or_left_out():
    assert entity_name("http://dbpedia.org/resource/John_Lasseter") == "John Lasseter"
    assert entity_name("http://dbpedia.org/resource/Category:Pixar_films") == "Pixar films"
    assert entity_name("http://rdf.freebase.com/ns/m.0abc1") is None


def test_answers_are_validated():
    b = UserBehaviors("u", {"loved": [BehaviorItem("Toy Story (1995)")]})
    fields, dropped = check_profile(json.loads(GOOD)["profile"], b)
    assert fields["likes"] == ["animated comedies", "space adventures"] and dropped == 1  # the title is dropped
    with pytest.raises(InvalidAnswer, match="no usable like"):
        check_profile({"likes": ["toy story"], "dislikes": [], "contexts": [], "leanings": []}, b)
    with pytest.raises(InvalidAnswer, match="no usable like"):
        check_profile({"likes": ["fantasy adventures"], "dislikes": [], "contexts": [], "leanings": []}, b)
    with pytest.raises(InvalidAnswer):
        check_profile(["not", "an", "object"], b)


def test_knowledge_is_stored_resumable_and_garbage_is_recorded(tiny, settings):
    calls: list[str] = []

    def script(prompt: str, k: int) -> str:
        calls.append(prompt)
        return "I cannot answer that." if "(no behaviour" in prompt or len(calls) % 7 == 0 else GOOD

    be = scripted_backend(script)
    first = extract_knowledge(tiny, settings, DS, limit=6, backend=be, use_cache=False)
    assert first.considered == 6 and first.ok + first.failed == 6 and first.ok >= 4
    rows = tiny.read("knowledge/user_knowledge", dataset=DS)
    assert len(rows) == first.ok
    for r in rows:
        assert r["likes"][:2] == ["animated comedies", "space adventures"] and r["model"] == "fake-llm"
        assert r["promptVersion"] == knowledge_prompt()[1] and len(r["vector"]) == 384
    failed = tiny.driver.execute_query("MATCH (k:Knowledge {status: 'failed'}) RETURN k.error AS e").records
    assert len(failed) == first.failed and all("attempt" in f["e"] for f in failed)
    # a re-run asks nothing: done users are skipped, failed ones too unless asked
    n = len(calls)
    again = extract_knowledge(tiny, settings, DS, limit=6, backend=be, use_cache=False)
    assert (again.skipped, again.skipped_failed, again.ok, len(calls)) == (first.ok, first.failed, 0, n)
    assert tiny.driver.execute_query("MATCH (:User)-[r:HAS_KNOWLEDGE]->() RETURN count(r) AS n"
                                     ).records[0]["n"] == 6
    # the report reads it back: counts, and the measures against each user's training genres
    rep = knowledge_report(tiny, DS, sample=3)
    assert (rep["users_ok"], rep["users_failed"], rep["users_with_likes"]) == (first.ok, first.failed, first.ok)
    # a user whose training items carry no genre has no reference words (how many depends on the fixture)
    assert rep["reference"] == "genres" and 1 <= rep["users_with_reference"] <= first.ok and len(rep["sample"]) == 3
    genre_words = {w for r in tiny.driver.execute_query(
        "MATCH (i:Item {dataset: $ds}) UNWIND coalesce(i.genres, []) AS g RETURN DISTINCT g", ds=DS).records
        for w in content_words(r["g"])}
    assert all(len(x["top_reference"]) <= 3 and set(x["top_reference"]) <= genre_words for x in rep["sample"])
    assert 0 <= rep["like_agreement_chance"] <= 1 and 0 <= rep["like_agreement_share"] <= 1
    assert rep["models"] == ["fake-llm"]


@pytest.mark.llm
def test_real_gguf_fuses_knowledge_for_a_few_users(tiny, settings):
    be = load_backend(settings)
    ks = extract_knowledge(tiny, settings, DS, limit=3, backend=be, use_cache=False)
    assert ks.ok + ks.failed == 3 and ks.llm_calls >= 3
    for r in tiny.read("knowledge/user_knowledge", dataset=DS):
        assert r["likes"] and r["model"] == be.model_id and len(r["vector"]) == 384
        assert all(len(p) <= 40 for p in r["likes"] + r["dislikes"] + r["contexts"] + r["leanings"])
    # the few-shot example is never passed off as knowledge
    ok = fuse_knowledge(be, [UserBehaviors("x", {"liked": [BehaviorItem("Heat (1995)", ["crime film"])]})])[0]
    assert ok.error or "fantasy adventures" not in ok.likes
