"""``kgp explain``'s score decomposition: from what write-back stored, the terms sum to the score the run ranked
by (real Neo4j, real PyG, the tiny MovieLens graph with a toy intent layer)."""
from __future__ import annotations

import json

import pytest
from kgplatform.explain import recommend, score_explanation
from kgplatform.graph.export import export_recdata
from kgplatform.graph.writeback import write_back
from kgplatform.train import TrainConfig, Trainer

from ..cli.test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py
from ..conftest import TINY_NAME
from .test_export_columnar import _add_intents_and_vectors


def _train(graph, data, model, tmp_path, config=None):
    cfg = TrainConfig(epochs=1, eval_every=1, device="cpu", cache_dir=tmp_path / "cands")
    result = Trainer(cfg, log=lambda m: None).fit(model, data, config)
    write_back(graph, result, data, k=5)
    return result


def _count(graph) -> int:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("MATCH ()-[e:INTENT_EMBEDDING]->() RETURN count(e) AS n").single()["n"]


@pytest.fixture
def ikgr_run(tiny_graph, tmp_path):
    _add_intents_and_vectors(tiny_graph)
    data, _ = export_recdata(tiny_graph, TINY_NAME, progress=False)
    assert data.num_intents > 0
    result = _train(tiny_graph, data, "ikgr", tmp_path, {"lam": 0.3, "tune_lambda": False, "embedding_dim": 16})
    return tiny_graph, data, result


def test_ikgr_terms_sum_to_the_materialised_score(ikgr_run):
    graph, data, result = ikgr_run
    assert result.eval_params["lam"] == pytest.approx(0.3)
    users_with_intent_terms = 0
    for u in range(0, data.num_users, 9):
        uid = data.user_ids[u]
        run, recs = recommend(graph, uid, k=5, model="ikgr")
        assert run == result.run_id and recs
        for r in recs:
            se = score_explanation(graph, uid, r.item, dataset=TINY_NAME, model="ikgr")
            assert se.run == result.run_id and se.recommended_rank == r.rank
            assert se.score == pytest.approx(r.score, abs=1e-5)
            assert sum(t["value"] for t in se.terms) == pytest.approx(r.score, abs=1e-5)
            assert [t["value"] for t in se.terms] == sorted((t["value"] for t in se.terms), reverse=True)
            assert se.lam == pytest.approx(0.3) and se.terms[-1]["value"] <= se.terms[0]["value"]
            named = [t for t in se.terms if t["name"] == "intent match" and t.get("user_intent")]
            users_with_intent_terms += bool(named)
            assert all(t["user_intent"].startswith(("intent ", "profile-")) for t in named)
    assert users_with_intent_terms > 0
    # a pair outside the top-k is decomposed too, and agrees with the model's own score
    u = 0
    seen = set(data.sequence(u).tolist())
    item = next(i for i in range(data.num_items) if i not in seen)
    se = score_explanation(graph, data.user_ids[u], data.item_ids[item], dataset=TINY_NAME)
    import torch

    want = float(result.model.score(torch.tensor([u]), torch.tensor([[item]]))[0, 0])
    assert se.score == pytest.approx(want, abs=1e-5)


def test_a_new_run_replaces_the_intent_vectors_and_lambda_zero_is_said(ikgr_run, tmp_path):
    graph, data, first = ikgr_run
    n_first = _count(graph)
    assert n_first > 0
    second = _train(graph, data, "ikgr", tmp_path, {"lam": 0.0, "tune_lambda": False, "embedding_dim": 16})
    assert _count(graph) == n_first  # the first run's vectors are gone, the second's written
    with graph.driver.session(database=graph.info.database) as s:
        runs = {r["id"] for r in s.run("MATCH (r:Run)-[:INTENT_EMBEDDING]->() RETURN DISTINCT r.id AS id")}
    assert runs == {second.run_id}
    uid = data.user_ids[3]
    _, recs = recommend(graph, uid, k=3, model="ikgr")
    se = score_explanation(graph, uid, recs[0].item, dataset=TINY_NAME, model="ikgr")
    assert [t["name"] for t in se.terms] == ["embedding"] and "λ = 0" in se.note
    assert se.score == pytest.approx(recs[0].score, abs=1e-5)


def test_dot_models_and_models_without_a_decomposition(tiny_graph, tmp_path):
    data, _ = export_recdata(tiny_graph, TINY_NAME, progress=False)
    _train(tiny_graph, data, "bpr", tmp_path)
    uid = data.user_ids[5]
    _, recs = recommend(tiny_graph, uid, k=3, model="bpr")
    se = score_explanation(tiny_graph, uid, recs[1].item, dataset=TINY_NAME, model="bpr")
    assert se.terms[0]["name"] == "embedding" and se.score == pytest.approx(recs[1].score, abs=1e-5)
    _train(tiny_graph, data, "pop", tmp_path)
    _, recs = recommend(tiny_graph, uid, k=3, model="pop")
    se = score_explanation(tiny_graph, uid, recs[0].item, dataset=TINY_NAME, model="pop")
    assert se.terms == [] and "not the model's reason" in se.note and se.score == pytest.approx(recs[0].score)


def test_cli_explain_json_has_score_and_terms(ikgr_run, neo4j_server, tmp_path):
    graph, data, result = ikgr_run
    uid = data.user_ids[0]
    _, recs = recommend(graph, uid, k=2, model="ikgr")
    res = kgp(neo4j_server, tmp_path, "explain", uid, recs[0].item, "--json", "--model", "ikgr")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["run"] == result.run_id and out["model"] == "ikgr" and out["recommended_rank"] == 1
    assert sum(t["value"] for t in out["terms"]) == pytest.approx(out["score"], abs=1e-9)
    assert out["score"] == pytest.approx(recs[0].score, abs=1e-5)
    text = kgp(neo4j_server, tmp_path, "explain", uid, recs[0].item, "--model", "ikgr")
    assert text.returncode == 0 and "the score is the sum of" in text.stdout and "embedding: cos" in text.stdout
    bad = kgp(neo4j_server, tmp_path, "explain", uid, recs[0].item, "--model", "lightgcn")
    assert bad.returncode != 0 and bad.stderr.strip().startswith("Error:") and "lightgcn" in bad.stderr
