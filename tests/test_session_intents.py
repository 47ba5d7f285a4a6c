"""Session intents (``kgp extract --round sessions``, LLM4SBR stage 1): prompts hold only items before the target,
answers are localised to catalogue items through the item vector index, stored with provenance, resumable, read
back for the data contract; the real GGUF on a few prefixes."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from kgplatform.agent.llm import load_backend
from kgplatform.agent.sessions import SHORT_ITEMS, render
from kgplatform.data import leave_one_out
from kgplatform.embed import load_encoder, switch_encoder
from kgplatform.graph.export import export_recdata, item_titles
from kgplatform.graph.session_intents import read_session_intents
from kgplatform.ingest import write_dataset
from kgplatform.session_intents import (Localizer, extract_session_intents, prefix_ends, prefix_views,
                                        session_intents_report)
from kgplatform.stats import wipe

from .agent.fakes import scripted_backend

DS = "ml-tiny"
DOWN = {"NEO4J_URI": "bolt://127.0.0.1:1"}  # a refused option never needs the database


@pytest.fixture(scope="module")
def embedded(session_graph, tiny_parsed, settings):
    """The tiny MovieLens fixture with item text vectors, ingested once for this module. The vectors encode
    "title (year)" only (``kgp embed`` encodes the long item text; short texts keep the test fast)."""
    from kgplatform.db.migrations import migrate

    wipe(session_graph)
    migrate(session_graph)
    write_dataset(session_graph, tiny_parsed, progress=False)
    enc = load_encoder(settings)
    switch_encoder(session_graph, enc.name, enc.dimensions, str(enc.path))
    rows = session_graph.driver.execute_query(
        "MATCH (i:Item {dataset: $ds}) RETURN i.id AS id, i.title + coalesce(' (' + toString(i.year) + ')', '') AS text",
        ds=DS).records
    vectors = enc.encode([r["text"] for r in rows])
    session_graph.write("embed/set_item_embeddings", rows=[
        {"key": r["id"], "hash": "test", "embedding": [float(x) for x in v]} for r, v in zip(rows, vectors)])
    return session_graph


@pytest.fixture
def tiny(embedded):
    embedded.driver.execute_query("MATCH ()-[r:INFERRED]->() DELETE r")
    embedded.driver.execute_query("MATCH (r:Run) DETACH DELETE r")
    return embedded


def _sequences(graph):
    data, _ = export_recdata(graph, DS, kg=False, intents=False, text=False, progress=False)
    return data, leave_one_out(data), item_titles(graph, DS)


def _assert_only_earlier(data, titles, prompts_by_prefix) -> int:
    """Every prompt of a prefix names items before its end only; the target and later items never appear."""
    index = {uid: u for u, uid in enumerate(data.user_ids)}
    checked = 0
    for (user, end), prompts in prompts_by_prefix.items():
        u = index[user]
        lo, hi = int(data.seq_indptr[u]), int(data.seq_indptr[u + 1])
        seq = [data.item_ids[i] for i in data.seq_items[lo:hi].tolist()]
        before = {titles[i] for i in seq[:end]}
        for later in seq[end:]:
            t = titles[later]
            if t not in before and not any(t in b for b in before):
                for prompt in prompts:
                    assert f". {t}\n" not in prompt + "\n", (user, end, t)
                checked += 1
    return checked


def test_prefixes_show_only_items_before_their_target(tiny):
    data, split, titles = _sequences(tiny)
    per_user = prefix_views(data, split, titles, train_prefixes=3)
    by_prefix: dict = {}
    for u, prefixes in enumerate(per_user):
        n, tl = int(data.seq_lengths[u]), int(split.train_len[u])
        lo = int(data.seq_indptr[u])
        seq = data.seq_items[lo:lo + n].tolist()
        ends = {(p.prefix_end, p.phase) for p in prefixes}
        assert ends == set(prefix_ends(n, tl, 3))
        if n >= 3:
            assert (tl, "valid") in ends and (n - 1, "test") in ends
        for p in prefixes:
            shown = [data.item_ids.index(i) for i in p.items]
            assert set(shown) <= set(seq[:p.prefix_end]) and p.prefix_end >= 1
            if p.phase == "train":
                assert p.prefix_end < tl  # a training prefix's target is a training interaction
            if p.view == "short":
                assert len(shown) <= SHORT_ITEMS and shown == seq[p.prefix_end - len(shown):p.prefix_end]
                assert p.anchor.startswith(p.user + "#")
            by_prefix.setdefault((p.user, p.prefix_end), []).append(render(p))
    assert _assert_only_earlier(data, titles, by_prefix) > 1000


def test_an_answer_naming_an_item_localizes_to_it_first(tiny, settings):
    titles = item_titles(tiny, DS)
    loc = Localizer(tiny, settings, DS, titles, top_r=5)
    toy = f"{DS}:1"
    assert titles[toy] == "Toy Story"
    for answer in ("Toy Story", "toy story (1995)"):
        out = loc.localize(answer)
        assert out[0].item == toy and out[0].rank == 1 and out[0].score == 1.0
        assert [x.rank for x in out] == [1, 2, 3, 4, 5] and abs(sum(x.weight for x in out) - 1) < 1e-5
        assert len({x.item for x in out}) == 5 and all(x.item.startswith(DS + ":") for x in out)
    # not a title: found through the vector index alone
    assert not loc.exact("Toy Story 1995 film") and loc.localize("Toy Story 1995 film")[0].item == toy
    # items the prompt showed are never the guess
    assert toy not in {x.item for x in loc.localize("Toy Story", exclude={toy})}


GOOD = json.dumps({"item": "Star Wars"})


def test_guesses_are_stored_resumable_and_read_back(tiny, settings):
    calls: list[str] = []
    broken = [True]

    def script(prompt: str, k: int) -> str:
        calls.append(prompt)
        return "no idea" if broken[0] and "current session" in prompt else GOOD  # short views fail at first

    be = scripted_backend(script)
    first = extract_session_intents(tiny, settings, DS, limit=3, train_prefixes=1, backend=be, use_cache=False)
    assert first.users == 3 and first.considered == 3 * 3 * 2
    assert (first.ok, first.failed, first.ungrounded) == (9, 9, 0)  # "Star Wars" is a catalogue title
    assert first.llm_calls == 9 + 9 * 3 and all("attempt 3" in f["reason"] for f in first.failures)
    assert tiny.driver.execute_query("MATCH ()-[r:INFERRED]->() RETURN count(r) AS n").records[0]["n"] == 5 * 9
    # a re-run asks only what failed
    broken[0] = False
    n_calls = len(calls)
    again = extract_session_intents(tiny, settings, DS, limit=3, train_prefixes=1, backend=be, use_cache=False)
    assert (again.skipped, again.ok, again.llm_calls, len(calls) - n_calls) == (9, 9, 9, 9)
    # short guesses hang off the target's session, long ones off the user
    anchors = tiny.driver.execute_query(
        "MATCH (n)-[r:INFERRED]->() RETURN DISTINCT r.view AS view, labels(n)[0] AS label").records
    assert {(a["view"], a["label"]) for a in anchors} == {("long", "User"), ("short", "Session")}
    # once everything is stored, a re-run asks nothing and writes nothing
    edges = "MATCH ()-[r:INFERRED]->() RETURN count(r) AS n, collect(DISTINCT r.run) AS runs"
    before = tiny.driver.execute_query(edges).records[0].data()
    third = extract_session_intents(tiny, settings, DS, limit=3, train_prefixes=1, backend=be, use_cache=False)
    assert (third.skipped, third.ok + third.failed, third.llm_calls) == (18, 0, 0) and len(calls) == n_calls + 9
    assert tiny.driver.execute_query(edges).records[0].data() == before and before["n"] == 5 * 18
    # the data contract reads (user, prefixEnd, view) -> localised items and weights
    data, split, titles = _sequences(tiny)
    si = read_session_intents(tiny, DS, data.user_ids, data.item_ids)
    assert len(si) == 18 and si.items.shape[1] == 5
    star = data.item_ids.index(f"{DS}:50")
    assert titles[f"{DS}:50"] == "Star Wars"
    for k in range(len(si)):
        seq_lo = int(data.seq_indptr[si.user[k]])
        before = set(data.seq_items[seq_lo:seq_lo + int(si.prefix_end[k])].tolist())
        assert int(si.items[k, 0]) == star or star in before  # the title, unless the user saw it already
        assert abs(float(si.weights[k].sum()) - 1) < 1e-5 and not set(si.items[k].tolist()) & before
    tr = si.training(split.train_len)
    assert 0 < len(tr) < len(si) and bool((tr.prefix_end < split.train_len[tr.user]).all())
    rep = session_intents_report(tiny, DS, floor=0.7)
    assert rep["guesses"] == len(si) and rep["ungrounded_rate"] == 0.0
    first_star = sum(1 for k in range(len(si)) if int(si.items[k, 0]) == star)
    assert rep["kinds"]["new_title"] == first_star and rep["kinds"]["seen_title"] == 18 - first_star
    assert all(ex["grounding"] == 1.0 for exs in rep["examples"].values() for ex in exs)
    # an answer naming a localised title first is grounded; the floor splits the rest by their best item
    strict = session_intents_report(tiny, DS, floor=1.0)
    assert strict["hallucinated"] == sum(1 for k in range(len(si)) if int(si.items[k, 0]) != star)


@pytest.mark.parametrize("args, first", [
    (["--views", "long,middle"], "Error: views must be a comma-separated subset of long,short"),
    (["--top-r", "0"], "Error: top-r must be an integer from 1 to 100, got 0"),
    (["--floor", "1.5"], "Error: floor must be a cosine similarity from -1 to 1"),
    (["--train-prefixes", "-1"], "Error: train prefixes must be an integer >= 0, got -1"),
    (["--shard", "2/2"], "Error: shard must be I/N with 0 <= I < N, got 2/2"),
])
def test_bad_options_give_one_error_line(monkeypatch, capsys, tmp_path, args, first):
    from kgplatform.cli.main import main

    monkeypatch.setattr(sys, "argv", ["kgp", "extract", "--round", "sessions", "-d", DS, *args])
    for k, v in {**DOWN, "KGP_HOME": str(tmp_path)}.items():  # a refused option never needs the database
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("Error:")]
    assert e.value.code == 2 and "Traceback" not in out.err and len(errors) == 1, out.err
    assert errors[0].startswith(first) and out.out == ""


@pytest.mark.llm
def test_real_gguf_prompts_never_see_the_target(tiny, settings):
    be = load_backend(settings)
    seen: list[tuple[str, int, str]] = []
    ask = be.ask

    class Recording:  # the real backend, recording every rendered prompt
        model_id = be.model_id

        def ask(self, template, variables, schema, attempt=0, field="intents"):
            seen.append("\n".join(m.content for m in template.format_messages(**variables)))
            return ask(template, variables, schema, attempt, field)

    data, split, titles = _sequences(tiny)
    users = [u for u in range(data.num_users) if int(data.seq_lengths[u]) >= 5]
    uid = sorted(data.user_ids[u] for u in users)[0]
    s = extract_session_intents(tiny, settings, DS, ids=[uid], train_prefixes=0, backend=Recording(),
                                use_cache=False)
    assert s.considered == 4 and s.ok + s.failed == 4 and s.llm_calls == len(seen) >= 4
    rows = tiny.read("sessions/read_inferred", dataset=DS, run=s.run_id)
    assert {r["model"] for r in rows} == {be.model_id} and len(rows) == 5 * s.ok
    assert all(len(r["text"]) <= 60 for r in rows)
    # every prompt is one of the user's planned prefix views, and names only items before its prefix end
    plan = prefix_views(data, split, titles, train_prefixes=0, users=[data.user_ids.index(uid)])[0]
    assert {p.phase for p in plan} == {"valid", "test"}
    by_prefix: dict = {}
    for prompt in seen:
        owner = [p for p in plan if f":\n{render(p)}\nPlease guess" in prompt
                 and (p.view == "short") == ("current session" in prompt)]
        assert len(owner) == 1, prompt
        by_prefix.setdefault((uid, owner[0].prefix_end), []).append(prompt)
    assert {e for _, e in by_prefix} == {p.prefix_end for p in plan}
    assert _assert_only_earlier(data, titles, by_prefix) > 0


def test_stored_intents_reach_llm4sbr_its_cli_and_explanations(tiny, settings, neo4j_server, tmp_path):
    """Stage 1 → stage 2 through the graph: the export carries the stored rows, LLM4SBR trains on them (its
    semantic projection moves), `kgp train llm4sbr` runs, and `explain` shows the localised guess."""
    from kgplatform.explain import explain
    from kgplatform.models.llm4sbr import LLM4SBR
    from kgplatform.train import TrainConfig, Trainer

    from .cli.test_cli import kgp

    with pytest.raises(Exception, match="no session intents"):
        export_recdata(tiny, DS, kg=False, intents=False, progress=False, session_intents=True)
    done = extract_session_intents(tiny, settings, DS, limit=4, train_prefixes=2,
                                   backend=scripted_backend(lambda p, k: GOOD), use_cache=False)
    assert done.ok == 4 * 4 * 2
    data, _ = export_recdata(tiny, DS, kg=False, intents=False, progress=False, session_intents=True,
                             encode_answers=load_encoder(settings).encode)
    si = data.session_intents
    assert len(si) == done.ok and si.answer_emb.shape == (len(si), 384)
    assert torch.allclose(si.answer_emb[0], si.answer_emb[-1])  # every answer was "Star Wars"
    plain, _ = export_recdata(tiny, DS, kg=False, intents=False, progress=False)
    assert plain.session_intents is None and plain.checksum() != data.checksum()
    trainer = Trainer(TrainConfig(device="cpu", epochs=1, eval_every=1, batch_size=256), log=lambda m: None)
    run = trainer.prepare("llm4sbr", data, {"embedding_dim": 8, "max_seq_len": 10})
    assert isinstance(run.net, LLM4SBR) and int(run.net.has.any(1).sum()) == 4 * 4
    before = run.net.semantic["long"].proj.weight.detach().clone()
    trainer.train_loop(run)
    assert not torch.equal(before, run.net.semantic["long"].proj.weight)

    r = kgp(neo4j_server, tmp_path, "train", "llm4sbr", "-d", DS, "--epochs", "1", "--backbone", "sasrec",
            "--set", "embedding_dim=8", "--set", "max_seq_len=10", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    r = kgp(neo4j_server, tmp_path, "train", "sasrec", "-d", DS, "--backbone", "srgnn")
    assert r.returncode != 0 and "Error: --backbone is an llm4sbr option" in r.stderr

    u = int(si.user[0])
    latest = int(si.prefix_end[si.user == u].max())
    first = int(si.items[(si.user == u) & (si.prefix_end == latest)][0, 0])  # a guess localised at the latest prefix
    got = [e for e in explain(tiny, data.user_ids[u], data.item_ids[first]) if e.kind == "session intents"]
    assert got and got[0].details["similarity"] == 1.0 and got[0].details["answer"] == "Star Wars"
    assert got[0].details["prefixEnd"] == latest
    assert "INFERRED" in got[0].text and "generated text" in got[0].text
