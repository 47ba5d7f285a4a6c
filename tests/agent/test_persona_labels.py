"""Persona labels: the real GGUF through llama.cpp, a scripted seam for garbage answers, validation, cache,
provenance, and fallback labels that say they are fallbacks."""
from __future__ import annotations

import json

import pytest

from kgplatform.agent import load_backend
from kgplatform.agent.cache import ResultCache
from kgplatform.agent.personas import PersonaDescription, check_label, fallback_label, label_personas
from kgplatform.agent.schemas import InvalidAnswer

from .fakes import scripted_backend

NOIR = PersonaDescription(["Vertigo (1958)", "Rear Window (1954)", "Psycho (1960)"],
                          ["Alfred Hitchcock", "Film noir", "Bernard Herrmann"], ["suspense", "murder mystery"])
KIDS = PersonaDescription(["Toy Story (1995)", "Aladdin (1992)", "The Lion King (1994)"],
                          ["Walt Disney Pictures", "Animated films"], ["family fun"])


def test_check_label_rejects_titles_examples_generic_and_long_answers():
    assert check_label("Hitchcock suspense fans", NOIR) == "Hitchcock suspense fans"
    for bad in ("Vertigo", "Rear Window", "home baking enthusiasts", "users", "one two three four five six seven",
                "fans", 42):
        with pytest.raises(InvalidAnswer):
            check_label(bad, NOIR)


def test_check_label_rejects_a_piece_of_a_title_but_not_a_shared_word():
    cats = PersonaDescription(["Truth About Cats & Dogs, The (1996)", "Sgt. Bilko (1996)"], ["1996 films"], [])
    for bad in ("The Truth About Cats", "truth about cats", "About Cats"):
        with pytest.raises(InvalidAnswer, match="piece of the title"):
            check_label(bad, cats)
    assert check_label("1990s romantic comedy fans", cats) == "1990s romantic comedy fans"
    assert check_label("Sgt Bilko fans", cats) == "Sgt Bilko fans"  # a title's words plus a word of its own


def test_fallback_label_is_built_from_the_data():
    assert fallback_label(NOIR, 0) == "Alfred Hitchcock · Film noir · Bernard Herrmann"
    assert fallback_label(PersonaDescription(["Psycho (1960)"]), 3) == "Psycho"
    assert fallback_label(PersonaDescription([]), 3) == "persona 3"


def test_garbage_answers_fall_back_with_the_reason_recorded(tmp_path):
    calls = []

    def script(prompt, i):
        calls.append(prompt)
        return "I think these people like movies" if "Vertigo" in prompt else json.dumps({"label": "family film fans"})

    be = scripted_backend(script)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        out = label_personas(be, [NOIR, KIDS], cache=cache, retries=1)
        assert out[0].source == "fallback" and "no JSON object" in out[0].error
        assert out[0].text == fallback_label(NOIR, 0)
        assert (out[1].text, out[1].source, out[1].model) == ("family film fans", "llm", "fake-llm")
        assert out[1].prompt_version.startswith("persona-label-v1.")
        n = len(calls)
        again = label_personas(be, [KIDS], cache=cache)  # cached: no model call
        assert again[0].cached and again[0].text == "family film fans" and len(calls) == n
    assert label_personas(None, [KIDS])[0].source == "fallback"


@pytest.mark.llm
def test_real_gguf_labels_are_valid_or_honest_fallbacks(settings, tmp_path):
    be = load_backend(settings)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        out = label_personas(be, [NOIR, KIDS], cache=cache, retries=1)
    for lb, d in zip(out, (NOIR, KIDS)):
        assert lb.source in ("llm", "fallback")
        if lb.source == "llm":
            assert check_label(lb.text, d) == lb.text and lb.model == be.model_id
        else:
            assert lb.error
