"""Bounded answer schemas and answer normalisation."""
from __future__ import annotations

import json
import re

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from kgplatform.agent.prompts import example_keys, round1_prompts, round2_prompts
from kgplatform.agent.schemas import (
    MAX_EXACT,
    PHRASE_PATTERN,
    IntentList,
    InvalidAnswer,
    intent_key,
    normalize_phrases,
    related_schema,
    validate_selection,
)


def test_keys_merge_case_and_spacing():
    assert intent_key("  Space   Travel. ") == intent_key("space travel") == "space travel"


def test_normalize_dedupes_and_drops_generic_and_title():
    n = normalize_phrases(["Space Travel", "space travel", "movie", "GoldenEye", "the goldeneye", "spy action"],
                          title="GoldenEye")
    assert [i.key for i in n.intents] == ["space travel", "spy action"]
    assert n.intents[0].name == "Space Travel"
    assert {r for _, r in n.dropped} == {"duplicate", "generic", "the node's own title"}


def test_normalize_drops_movielens_style_title_variants():
    n = normalize_phrases(["the birdcage", "drag comedy"], title="Birdcage, The (1996)")
    assert [i.key for i in n.intents] == ["drag comedy"]


def test_normalize_rejects_parroted_examples():
    ex = example_keys()
    with pytest.raises(InvalidAnswer, match="repeat the few-shot examples"):
        normalize_phrases(["home cooking", "holiday baking", "space travel"], example_keys=ex)
    # one copied phrase among several real ones is only dropped
    n = normalize_phrases(["home cooking", "space travel", "robot uprising"], example_keys=ex)
    assert [i.key for i in n.intents] == ["space travel", "robot uprising"] and n.copied == 1


def test_example_phrase_kept_when_the_input_says_it():
    n = normalize_phrases(["home cooking", "recipes"], source_text="A show about home cooking.",
                          example_keys=example_keys())
    assert [i.key for i in n.intents] == ["home cooking", "recipes"]


def test_nothing_usable_is_invalid():
    with pytest.raises(InvalidAnswer, match="no usable intent"):
        normalize_phrases(["1995", "film", ""])


def test_selection_must_be_a_subset_of_the_options():
    opts = {"space travel": 0.9, "robots": 0.8}
    assert [p.key for p in validate_selection(["Robots", "robots"], opts)] == ["robots"]
    with pytest.raises(InvalidAnswer, match="not offered"):
        validate_selection(["robots", "time travel"], opts)
    with pytest.raises(InvalidAnswer, match="no option"):
        validate_selection([], opts)


def test_phrase_pattern_bounds_words_and_length():
    rx = re.compile(PHRASE_PATTERN)
    assert rx.match("space travel") and rx.match("children's films")
    assert not rx.match("one two three four five")
    assert not rx.match("a" * 17)
    assert not rx.match('quote"inside')


def test_schemas_are_bounded_and_compile_to_llama_grammars():
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    params = convert_to_openai_tool(IntentList)["function"]["parameters"]
    assert params["properties"]["intents"]["maxItems"] == MAX_EXACT
    assert params["properties"]["intents"]["items"]["pattern"] == PHRASE_PATTERN
    rel = convert_to_openai_tool(related_schema(["space travel", "robots"]))["function"]["parameters"]
    assert rel["properties"]["intents"]["items"]["enum"] == ["space travel", "robots"]
    for schema in (params, rel):
        # llama.cpp silently falls back to an unbounded JSON grammar when conversion fails: make sure it doesn't
        converter = llama_grammar.SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        converter.visit(schema, "")
        assert "intents" in converter.format_grammar()


def test_prompt_versions_are_stable_and_distinct():
    assert round1_prompts().version == round1_prompts().version
    assert round1_prompts().version.startswith("r1-") and round2_prompts().version.startswith("r2-")
    msgs = round1_prompts().templates["Item"].format_messages(description="### Item Description:\nX")
    assert json.loads(msgs[2].content)["intents"]  # the few-shot answers are valid JSON
