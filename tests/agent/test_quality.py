"""Intent quality measures on hand-labelled intents (pure), on the graph (real Neo4j) and through the CLI."""
from __future__ import annotations

import json

import pytest

from kgplatform.agent.quality import ItemIntents, has_code, intent_quality, is_echo, quality
from kgplatform.agent.schemas import InvalidAnswer, normalize_phrases
from kgplatform.errors import NotFound

from ..cli.test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py
from ..conftest import TINY_NAME

# (intent, title, is an echo?, holds a code?) — labelled by hand
LABELLED = [
    ("B&C Eagle", "B&C Eagle 9018 Hammer", True, False),
    ("B&C Eagle 9018", "B&C Eagle 9018 Hammer", True, True),
    ("toy story", "Toy Story (1995)", True, False),
    ("Toys", "Toy Story (1995)", True, False),
    ("buddy comedy", "Toy Story (1995)", False, False),
    ("refinish a deck", "Deck stain, cedar, 1 gallon", False, False),
    ("1950s noir", "Kiss Me Deadly", False, False),
    ("4k gaming", "Monitor", False, False),
    ("xj-900 spare", "Lawn mower blade", False, True),
    ("the 1970", "Aristocats, The", False, True),
    ("19th century romance", "Persuasion", False, False),
    ("the film", "The Film", False, False),  # only stopwords: not counted as an echo
]


@pytest.mark.parametrize("intent, title, echo, code", LABELLED)
def test_echo_and_code_on_hand_labelled_intents(intent, title, echo, code):
    assert is_echo(intent, title) is echo
    assert has_code(intent) is code


def test_quality_known_answers():
    items = [
        ItemIntents("a", "Heat", ["heist thriller", "heat"], ["Crime", "Thriller"]),
        ItemIntents("b", "Casino", ["mob drama", "las vegas"], ["Crime", "Drama"]),
        ItemIntents("c", "Toy Story", ["buddy comedy", "toy story"], ["Animation", "Comedy"]),
        ItemIntents("d", "Widget 3000", ["widget 3000", "heist thriller"], []),
        ItemIntents("e", "No intents", [], ["Drama"]),
    ]
    q = quality(items, sample=2, seed=1)
    assert (q["items"], q["items_with_intents"], q["edges"], q["intents"]) == (5, 4, 8, 7)
    assert q["echo_share"] == pytest.approx(3 / 8, abs=1e-4)  # heat, toy story, widget 3000
    assert q["code_share"] == pytest.approx(1 / 8, abs=1e-4)  # widget 3000
    assert q["shared_intent_share"] == pytest.approx(1 / 7, abs=1e-4)  # heist thriller (a, d)
    # a, b, c have reference labels: each has an intent sharing a word with them ("thriller", "drama", "comedy")
    assert q["items_with_reference"] == 3 and q["agreement_share"] == 1.0
    assert 0.0 <= q["agreement_chance"] < 1.0
    assert len(q["sample"]) == 2 and all(s["intents"] for s in q["sample"])
    assert quality(items, sample=2, seed=1) == q  # seeded: the same sample again
    none = quality([ItemIntents("x", "T", [], [])])
    assert none["echo_share"] is None and none["agreement_share"] is None and none["sample"] == []


def test_round1_post_processing_drops_echoes_and_codes():
    n = normalize_phrases(["B&C Eagle", "9018 head", "framing a house", "1950s noir"],
                          title="B&C Eagle 9018 Hammer")
    assert [i.key for i in n.intents] == ["framing a house", "1950s noir"]
    assert {r for _, r in n.dropped} == {"echoes the title", "a model number or year"}
    with pytest.raises(InvalidAnswer, match="echoes the title"):
        normalize_phrases(["eagle hammer"], title="B&C Eagle 9018 Hammer")


def _tiny_intents(graph) -> None:
    """Three items with hand-written intents: an echo, a code, a shared intent and genre agreement."""
    with graph.driver.session(database=graph.info.database) as s:
        s.run("""
            MATCH (i:Item {dataset: $d}) WITH i ORDER BY i.id LIMIT 3
            WITH collect(i) AS items
            WITH items, items[0] AS first, items[1] AS second
            SET first.genres = ['Thriller'], second.genres = ['Comedy']
            WITH items
            UNWIND [[0, 'tense thrillers'], [0, 'late night'], [1, 'late night'], [1, items[1].title],
                    [2, 'model 9018']] AS pair
            WITH items[pair[0]] AS i, pair[1] AS name
            MERGE (n:Intent {key: toLower(name)}) ON CREATE SET n.name = name
            MERGE (i)-[:SATISFIES {kind: 'exact'}]->(n)
            """, d=TINY_NAME).consume()


def test_intent_quality_from_the_graph(tiny_graph):
    _tiny_intents(tiny_graph)
    q = intent_quality(tiny_graph, TINY_NAME, sample=5)
    assert q["dataset"] == TINY_NAME and q["items"] == 300 and q["items_with_intents"] == 3
    assert q["edges"] == 5 and q["echo_share"] == pytest.approx(1 / 5) and q["code_share"] == pytest.approx(1 / 5)
    assert q["shared_intent_share"] == pytest.approx(1 / 4)  # 'late night' of the four intents
    assert q["items_with_reference"] >= 2 and q["agreement_share"] is not None
    with pytest.raises(NotFound):
        intent_quality(tiny_graph, "no-such-dataset")


def test_cli_intents_quality(tiny_graph, neo4j_server, tmp_path):
    _tiny_intents(tiny_graph)
    r = kgp(neo4j_server, tmp_path, "intents", "--quality", "-d", TINY_NAME, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["echo_share"] == pytest.approx(0.2) and len(doc["sample"]) == 3
    text = kgp(neo4j_server, tmp_path, "intents", "--quality", "-d", TINY_NAME)
    assert text.returncode == 0 and "echo_share" in text.stdout and "sample (exact intents):" in text.stdout
    for args, msg in ((["intents", "--quality"], "--quality needs --dataset"),
                      (["intents", "--quality", "-d", TINY_NAME, "--sample", "500"], "--sample must be between"),
                      (["intents", "--quality", "-d", "nope"], "has no items")):
        bad = kgp(neo4j_server, tmp_path, *args)
        assert bad.returncode != 0 and bad.stderr.strip().startswith("Error:") and msg in bad.stderr, bad.stderr


def test_the_glossary_follows_the_dataset_domain(tiny_graph):
    from kgplatform.agent.extract import DOMAIN_GLOSSARIES, domain_glossary
    from kgplatform.agent.glossary import load_glossary

    assert domain_glossary(tiny_graph, TINY_NAME) == "movies"  # ingested by the MovieLens loader
    assert domain_glossary(tiny_graph, None) is None and domain_glossary(tiny_graph, "no-such") is None
    for name in set(DOMAIN_GLOSSARIES.values()):  # every bundled domain glossary parses
        assert load_glossary(name).entries
    terms = {e.key for e in load_glossary("beauty").match("retinol night serum with SPF 30")}
    assert terms == {"retinol", "serum", "spf"}


def test_knowledge_measures_on_hand_made_users():
    from kgplatform.agent.quality import UserKnowledge, knowledge_quality, top_reference_words

    # each item counts a word once; ties broken by the word
    assert top_reference_words([["Comedy", "Animation"], ["Comedy"], ["Drama", "Comedy", "comedy"]], 2) == \
        ["comedy", "animation"]
    assert top_reference_words([], 3) == []
    users = [UserKnowledge("a", ["animated comedies"], ["slow dramas"], ["comedy", "animation"], ["Heat (1995)"]),
             UserKnowledge("b", ["slow dramas", "noir"], [], ["action"], []),
             UserKnowledge("c", ["Toy Story"], [], [], ["Toy Story (1995)"]),
             UserKnowledge("d", [], ["horror"], ["horror"], [])]  # no like: not a usable profile
    q = knowledge_quality(users, sample=2)
    assert (q["users"], q["users_with_likes"], q["users_with_reference"], q["users_with_dislikes"]) == (4, 3, 2, 1)
    assert q["like_agreement_share"] == 0.5  # a's "comedies" is a top word of a; b's likes are not action
    assert q["like_echo_share"] == 0.25  # "Toy Story" of four like phrases
    assert q["likes_per_user"] == round(4 / 3, 4) and len(q["sample"]) == 2
    # chance: the likes shuffled over a and b, five times: unshuffled 0.5, swapped 0 (a's words and b's likes, b's
    # words and a's likes share nothing), so the mean of five is a tenth from 0 to 0.5
    assert q["like_agreement_chance"] in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def test_cli_knowledge_report(tiny_graph, neo4j_server, tmp_path, settings):
    from kgplatform.knowledge import extract_knowledge

    from .fakes import scripted_backend

    answer = json.dumps({"profile": {"likes": ["dramas", "space adventures"], "dislikes": ["horror"],
                                     "contexts": [], "leanings": []}})
    ks = extract_knowledge(tiny_graph, settings, TINY_NAME, limit=4, backend=scripted_backend(lambda p, k: answer),
                           use_cache=False)
    r = kgp(neo4j_server, tmp_path, "extract", "--round", "knowledge", "-d", TINY_NAME, "--report", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["users_ok"], doc["users_with_likes"], doc["models"]) == (ks.ok, ks.ok, ["fake-llm"])
    assert doc["likes_per_user"] == 2 and doc["dislikes_per_user"] == 1 and doc["reference"] == "genres"
    text = kgp(neo4j_server, tmp_path, "extract", "--round", "knowledge", "-d", TINY_NAME, "--report")
    assert text.returncode == 0 and f"{ks.ok} of 200 users ok" in text.stdout and "training genres" in text.stdout
    for args, msg in ((["extract", "--round", "knowledge", "--report"], "needs --dataset"),
                      (["extract", "--round", "knowledge", "-d", "nope", "--report"], "nope")):
        bad = kgp(neo4j_server, tmp_path, *args)
        assert bad.returncode != 0 and bad.stderr.strip().startswith("Error:") and msg in bad.stderr, bad.stderr
