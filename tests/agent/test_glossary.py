"""Glossary file format, matching and the bundled movie glossary."""
from __future__ import annotations

import pytest

from kgplatform.agent.glossary import GLOSSARY_TAG, bundled_glossaries, load_glossary, parse_glossary
from kgplatform.errors import ConfigError, DataValidationError

TEXT = "# comment\n\nfilm noir|noir\tDark crime drama.\nneo-noir\tModern noir.\nsci-fi\tScience fiction.\n"


def test_parse_skips_comments_and_splits_variants():
    g = parse_glossary(TEXT)
    assert len(g) == 3
    assert g.entries[0].terms == ("film noir", "noir")


def test_match_is_case_insensitive_whole_word_and_longest_first():
    g = parse_glossary(TEXT)
    assert [e.key for e in g.match("A NEO-NOIR thriller with Sci-Fi touches")] == ["neo-noir", "sci-fi"]
    assert g.match("noirish films") == []


def test_variants_share_one_entry():
    g = parse_glossary(TEXT)
    assert [e.key for e in g.match("Film Noir classic; pure noir")] == ["film noir"]


def test_context_block_has_tag_and_explanations():
    block = parse_glossary(TEXT).context("a sci-fi film")
    assert block == f"{GLOSSARY_TAG}\n- sci-fi: Science fiction."
    assert parse_glossary(TEXT).context("nothing here") == ""


def test_bad_line_names_file_and_line():
    with pytest.raises(DataValidationError, match="g.tsv:2"):
        parse_glossary("ok\tfine\nno tab here\n", "g.tsv")


def test_bundled_movies_glossary_loads_by_name():
    assert "movies" in bundled_glossaries()
    g = load_glossary("movies")
    assert len(g) >= 40
    assert [e.key for e in g.match("Genres: Film-Noir, Thriller.")][:1] == ["film noir"]


def test_unknown_glossary_is_a_config_error():
    with pytest.raises(ConfigError, match="not found"):
        load_glossary("no-such-glossary")
