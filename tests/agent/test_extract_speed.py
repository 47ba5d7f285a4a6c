"""The fast llama.cpp engine (:class:`ParallelLlama`: shared prefix, several sequences decoded together, lazy
grammar) gives the plain LangChain chain's greedy answers — with the real SmolLM2 GGUF on the first six items of
the tiny MovieLens fixture, round 1 and round 2, through ``extract`` into the real Neo4j, and prompt by prompt.
"""
from __future__ import annotations

import pytest

from kgplatform import schema
from kgplatform.agent import extract, load_backend
from kgplatform.agent.glossary import load_glossary
from kgplatform.agent.llm import GreedySampler, ParallelLlama
from kgplatform.agent.prompts import describe, format_options, round1_prompts, round2_prompts
from kgplatform.agent.schemas import IntentList, related_schema
from kgplatform.embed import item_text
from kgplatform.errors import ConfigError

from .test_extract_llm import fresh, snapshot

pytestmark = pytest.mark.llm
pytest.importorskip("llama_cpp")

LIMIT = 6
LIMIT_GRAPH = 4  # the end-to-end comparison runs both rounds four times: fewer items keep it cheap


@pytest.fixture(scope="module")
def speed_settings(settings, tmp_path_factory):
    return settings.model_copy(update={"home": tmp_path_factory.mktemp("speed-home"), "glossary": "movies",
                                       "related_k": 100})


@pytest.fixture(scope="module")
def descriptions(tiny_parsed):
    gloss = load_glossary("movies")
    texts = [item_text(it) for it in tiny_parsed.items[:LIMIT]]
    return [describe(schema.ITEM, t, gloss.context(t)) for t in texts]


def run_both_rounds(graph, settings, parallel):
    r1 = extract(graph, settings, round=1, limit=LIMIT_GRAPH, items_only=True, use_cache=False, progress=False,
                 parallel=parallel)
    r2 = extract(graph, settings, round=2, limit=LIMIT_GRAPH, items_only=True, use_cache=False, progress=False,
                 parallel=parallel)
    return r1, r2, snapshot(graph)


def test_fast_extraction_writes_the_plain_paths_graph(session_graph, tiny_parsed, speed_settings):
    plain = run_both_rounds(fresh(session_graph, tiny_parsed), speed_settings, 0)
    fast = run_both_rounds(fresh(session_graph, tiny_parsed), speed_settings, 4)
    assert plain[0].ok >= LIMIT_GRAPH // 2 and plain[1].processed == LIMIT_GRAPH  # the comparison is not vacuous
    assert {e for e in plain[2]["edges"] if e[2] == "related"}  # round 2 linked something
    assert fast[2] == plain[2]  # same edges, intents, statuses and keys
    for p, f in zip(plain[:2], fast[:2]):
        assert (f.ok, f.failed, f.links, f.llm_calls, f.retries) == (p.ok, p.failed, p.links, p.llm_calls,
                                                                      p.retries)


def test_round1_answers_equal_prompt_by_prompt(speed_settings, descriptions):
    """Two sequences for four prompts: nodes reuse a sequence within one call."""
    be = load_backend(speed_settings, parallel=2)
    plain = load_backend(speed_settings, parallel=0)
    tpl = round1_prompts().templates[schema.ITEM]
    variables = [{"description": d} for d in descriptions[:4]]
    expected = [_try(plain.ask, tpl, v, IntentList) for v in variables]
    # twice: the second time every sequence starts from the prompt it kept from the first
    for _ in range(2):
        got = be.ask_many(tpl, variables, IntentList)
        assert [_norm(x) for x in got] == [_norm(x) for x in expected]
    assert be.fallbacks == 0
    assert sum(isinstance(x, list) for x in expected) >= 2


def test_round2_answers_equal_at_k100(speed_settings, descriptions):
    """K = 100 options (the paper's setting; invented phrases here, the test graph's pool is small)."""
    be = load_backend(speed_settings, parallel=3)
    plain = load_backend(speed_settings, parallel=0)
    tpl = round2_prompts().templates[schema.ITEM]
    pool = [f"{a} {b}" for a in ("family", "space", "crime", "romantic", "war", "school", "music", "horror",
                                 "sports", "road")
            for b in ("adventure", "drama", "comedy", "story", "night", "trip", "mystery", "history", "heroes",
                      "friendship")]
    variables, schemas = [], []
    for i, d in enumerate(descriptions[:2]):
        names = pool[i:] + pool[:i]  # a different order per node
        variables.append({"description": d, "options": format_options(names)})
        schemas.append(related_schema(names))
    expected = [_try(plain.ask, tpl, v, s) for v, s in zip(variables, schemas)]
    got = be.ask_many(tpl, variables, schemas)
    assert [_norm(x) for x in got] == [_norm(x) for x in expected]
    assert sum(isinstance(x, list) for x in expected) >= 1


def test_lazy_grammar_picks_the_chains_tokens(speed_settings, descriptions):
    """The whole-vocabulary grammar mask at every step (the chain's order) and the lazy check agree, and the
    lazy one needs the mask on few steps."""
    be = load_backend(speed_settings, parallel=0)
    tpl = round1_prompts().templates[schema.ITEM]
    variables = [{"description": d} for d in descriptions[:3]]
    answers, masks = {}, {}
    for lazy in (False, True):
        engine = ParallelLlama(be.llama, 2, be.llama.n_ctx(), lazy_grammar=lazy)
        seen: list[GreedySampler] = []
        original = GreedySampler.close

        def keep(self, seen=seen):
            seen.append((self.full_masks, self.steps))
            original(self)

        GreedySampler.close = keep
        try:
            answers[lazy] = [_norm(x) for x in engine.structured(be.chat, tpl, variables, [IntentList] * 3)]
        finally:
            GreedySampler.close = original
        masks[lazy] = (sum(m for m, _ in seen), sum(s for _, s in seen))
    assert answers[True] == answers[False]
    assert masks[False][0] == masks[False][1] > 0  # every step masked
    assert masks[True][0] < masks[True][1] / 2


def test_parallel_is_validated(speed_settings):
    for bad in (-1, 65, 2.5, True):
        with pytest.raises(ConfigError, match="parallel must be an integer from 0 to 64"):
            load_backend(speed_settings, parallel=bad)


def _try(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001
        return e


def _norm(x):
    """An answer, or the failure's type and first line (what the extraction loop records)."""
    if isinstance(x, BaseException):
        return (type(x).__name__, str(x).splitlines()[0][:120])
    if isinstance(x, dict):  # structured() output
        parsed = x.get("parsed")
        return parsed.model_dump() if hasattr(parsed, "model_dump") else (parsed, str(x.get("parsing_error")))
    return x
