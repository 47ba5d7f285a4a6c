"""Fused user knowledge as a model feature (``--user-features knowledge``, rows ``MODEL:knowledge``): the term is
exactly the documented one, starts as the plain model, reaches only the users it belongs to, comes from the
graph's ``(:Knowledge)`` vectors, and the CLI refuses it cleanly when a dataset has none."""
from __future__ import annotations

import json

import pytest
import torch

from kgplatform.data import leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.errors import TrainingError
from kgplatform.experiment.compare import plan_rows
from kgplatform.explain import explain
from kgplatform.graph.export import export_recdata
from kgplatform.ingest import write_dataset
from kgplatform.knowledge import extract_knowledge
from kgplatform.models import build_model
from kgplatform.models.bpr import BPRMF
from kgplatform.nn.user_features import UserFeatureFusion
from kgplatform.train import TrainConfig, Trainer

from .agent.fakes import scripted_backend
from .cli.test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py
from .test_crash import one_error
from .test_knowledge import GOOD

DS = "ml-tiny"


def _with_knowledge(data, every: int = 2, dim: int = 8, seed: int = 0):
    """``data`` with stand-in knowledge vectors for every ``every``-th user (a seam for the model-side tests;
    the graph-side test below uses the knowledge round's own vectors)."""
    import dataclasses

    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(data.num_users) % every == 0
    emb = torch.randn(data.num_users, dim, generator=g) * mask[:, None]
    return dataclasses.replace(data, user_knowledge_emb=emb, user_knowledge_mask=mask)


def test_the_term_is_w_k_for_users_with_knowledge_and_the_fallback_otherwise():
    feats = torch.randn(5, 3)
    mask = torch.tensor([True, False, True, False, False])
    f = UserFeatureFusion(feats, mask, 4)
    assert torch.equal(f(), torch.zeros(5, 4))  # zero at the start: the plain model
    with torch.no_grad():
        f.proj.weight.normal_()
        f.fallback.normal_()
    out = f(torch.tensor([0, 1, 2]))
    assert torch.allclose(out[0], f.proj.weight @ feats[0]) and torch.allclose(out[2], f.proj.weight @ feats[2])
    assert torch.equal(out[1], f.fallback.detach())
    assert f.coverage == pytest.approx(0.4)


@pytest.mark.parametrize("model", ["bpr", "lightgcn", "sasrec", "ikgr"])
def test_models_start_as_the_plain_model_and_score_with_the_term(model):
    data = _with_knowledge(toy_data(num_users=30, num_items=40, seed=3))
    split = leave_one_out(data)
    plain = build_model(model, data, split, {}, torch.Generator().manual_seed(7))
    fused = build_model(model, data, split, {"user_features": "knowledge"}, torch.Generator().manual_seed(7))
    assert fused.user_fusion is not None and plain.state_dict().keys() <= fused.state_dict().keys()
    fused.load_state_dict(plain.state_dict(), strict=False)  # the same learned part; the term is still zero
    users = torch.arange(data.num_users)
    seq = None
    if model == "sasrec":
        seq = torch.randint(0, data.num_items, (data.num_users, 6))
    plain.eval()
    fused.eval()
    with torch.no_grad():
        assert torch.allclose(plain.full_scores(users, seq), fused.full_scores(users, seq), atol=1e-6)
        fused.user_fusion.proj.weight.normal_()
        fused.user_fusion.fallback.normal_()
        term = fused.user_fusion(users)
        got = fused.full_scores(users, seq)
        if model == "bpr":
            want = (plain.user_emb.weight + term) @ plain.item_emb.weight.t()
        elif model == "sasrec":
            want = (plain.last_hidden(seq) + term) @ plain.item_emb.weight[: data.num_items].t()
        elif model == "ikgr":  # the term joins the users' input vectors, before the KG convolution
            plain.transh.node_emb.weight[plain.user_off:plain.user_off + data.num_users] += term
            want = plain.full_scores(users)
        else:  # LightGCN: the term joins the layer-0 user vectors and propagates with them
            plain.user_emb.weight += term
            want = plain.full_scores(users)
        assert torch.allclose(got, want, atol=1e-5)


def test_a_model_asked_for_knowledge_refuses_data_without_it():
    data = toy_data(num_users=10, num_items=12, seed=1)
    with pytest.raises(TrainingError, match="no embedded fused knowledge"):
        build_model("bpr", data, leave_one_out(data), {"user_features": "knowledge"})
    with pytest.raises(TrainingError, match="user_features"):
        build_model("bpr", data, leave_one_out(data), {"user_features": "profile"})


def test_knowledge_rows_and_their_refusals():
    rows = plan_rows(["bpr", "bpr:knowledge", "sasrec:knowledge"])
    assert [r.model_options.get("user_features", "none") for r in rows] == ["none", "knowledge", "knowledge"]
    from kgplatform.errors import ConfigError

    with pytest.raises(ConfigError, match="takes no user features"):
        plan_rows(["kgcn:knowledge"])


def test_the_graphs_knowledge_reaches_the_model_and_the_cli(graph, tiny_parsed, neo4j_server, tmp_path, settings):
    write_dataset(graph, tiny_parsed, progress=False)
    with pytest.raises(TrainingError, match="no user has embedded fused knowledge"):
        export_recdata(graph, DS, knowledge=True, progress=False)
    r = kgp(neo4j_server, tmp_path, "train", "bpr", "-d", DS, "--user-features", "knowledge", "--epochs", "1")
    assert "no user has embedded fused knowledge" in one_error(r)
    r = kgp(neo4j_server, tmp_path, "train", "bpr", "-d", DS, "--user-features", "profile")
    assert "--user-features must be one of none, knowledge" in one_error(r, 2)

    ks = extract_knowledge(graph, settings, DS, limit=6, backend=scripted_backend(lambda p, k: GOOD), use_cache=False)
    assert ks.ok == 6
    data, _ = export_recdata(graph, DS, knowledge=True, progress=False)
    stored = {r["user"]: r["vector"] for r in graph.read("knowledge/user_knowledge", dataset=DS)}
    assert int(data.user_knowledge_mask.sum()) == len(stored) == 6
    for u, vec in stored.items():
        assert torch.allclose(data.user_knowledge_emb[data.user_ids.index(u)], torch.tensor(vec))
    assert not data.user_knowledge_emb[~data.user_knowledge_mask].any()
    # the plain export (and its checksum, the candidates' cache key) is unchanged by knowledge in the graph
    plain, _ = export_recdata(graph, DS, progress=False)
    assert plain.user_knowledge_emb is None
    assert training_view(data, leave_one_out(data)).user_knowledge_mask.equal(data.user_knowledge_mask)
    # training moves the projection: the knowledge is used
    trainer = Trainer(TrainConfig(device="cpu", epochs=2, eval_every=2, batch_size=256))
    run = trainer.prepare("bpr", data, {"user_features": "knowledge"})
    assert isinstance(run.net, BPRMF)
    trainer.train_loop(run)
    assert run.net.user_fusion.proj.weight.abs().sum() > 0

    # explanations: the knowledge phrases that match the item's words, likes first; nothing when none matches
    user = next(iter(stored))
    items = [r["id"] for r in graph.driver.execute_query(
        "MATCH (i:Item {dataset: $ds}) RETURN i.id AS id ORDER BY id LIMIT 3", ds=DS).records]
    for item, title in zip(items, ("Space Adventure Night (1999)", "A Family Evening (1999)", "Zzz (1999)")):
        graph.driver.execute_query("MATCH (i:Item {id: $item}) SET i.title = $title", item=item, title=title)
        graph.driver.execute_query("MATCH (i:Item {id: $item})-[r:FACT|SATISFIES]-() DELETE r", item=item)
    got = [[(e.details["field"], e.details["phrase"], e.details["matched"]) for e in explain(graph, user, item)
            if e.kind == "fused knowledge"] for item in items]
    assert got == [[("likes", "space adventures", ["space", "adventures"])],
                   [("contexts", "family evenings", ["family", "evenings"])], []]
    text = next(e.text for e in explain(graph, user, items[0]) if e.kind == "fused knowledge")
    assert "HAS_KNOWLEDGE" in text and "LLM-generated" in text

    r = kgp(neo4j_server, tmp_path, "evaluate", "-d", DS, "--models", "bpr,bpr:knowledge", "--seeds", "2024",
            "--epochs", "1", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert [m["model"] for m in doc["models"]] == ["bpr", "bpr:knowledge"]
    assert any(d["a"] == "bpr:knowledge" and d["b"] == "bpr" and d["why"] == "with fused knowledge vs without"
               for d in doc["differences"]), doc["differences"]
    # and again on the test users who have knowledge, the rest getting the learned fallback
    test_users = leave_one_out(data).users("test")
    label = f"users with fused knowledge ({int(data.user_knowledge_mask[test_users].sum())} of {len(test_users)})"
    assert any(d["a"] == "bpr:knowledge" and d.get("users") == label for d in doc["differences"]), \
        [d.get("users") for d in doc["differences"]]
