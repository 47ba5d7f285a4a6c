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
from kgplatform.nn.user_features import UserFeatureFusion, knowledge_penalty
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
    # the control (user_features=fallback): the same users get the same learned f, the knowledge users nothing,
    # and W never moves (no gradient, and no penalty or dropout to apply to it)
    c = UserFeatureFusion(feats, mask, 4, reg=1.0, dropout=0.5, knowledge=False)
    with torch.no_grad():
        c.fallback.normal_()
    out = c(torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out[[0, 2]], torch.zeros(2, 4))
    assert torch.equal(out[[1, 3]], c.fallback.detach().expand(2, 4))
    out.sum().backward()
    assert c.proj.weight.grad is None and not c.proj.weight.requires_grad and c.fallback.grad is not None
    assert c.reg == 0.0 and c.dropout == 0.0 and knowledge_penalty(c, torch.tensor([0, 2])) == {}


def test_the_knowledge_penalty_and_dropout_by_hand():
    feats = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([True, True, False])
    f = UserFeatureFusion(feats, mask, 2, reg=0.5, dropout=0.5)
    with torch.no_grad():
        f.proj.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))  # W k = (1, 0), (2, 2), user 2: none
        f.fallback.fill_(7.0)
    users = torch.tensor([0, 1, 2, 2])
    # (|(1,0)|^2 + |(2,2)|^2) / 4 users of the step; the user without knowledge adds nothing (nor its fallback)
    assert f.penalty(users).item() == pytest.approx((1 + 8) / 4)
    assert knowledge_penalty(f, users)["knowledge_reg"].item() == pytest.approx(0.5 * 9 / 4)
    assert knowledge_penalty(None, users) == {} and knowledge_penalty(UserFeatureFusion(feats, mask, 2), users) == {}
    f.eval()  # no dropout when scoring
    assert torch.equal(f(torch.tensor([0, 1])), torch.tensor([[1.0, 0.0], [2.0, 2.0]]))
    f.train()
    torch.manual_seed(0)
    out = f(torch.tensor([0, 1, 2] * 200))
    kept = out[0::3].ne(0).any(1)  # user 0's whole term is either dropped or kept, and kept ones are doubled
    assert torch.equal(out[0::3][kept], torch.tensor([[2.0, 0.0]]).expand(int(kept.sum()), 2))
    assert torch.equal(out[0::3][~kept], torch.zeros(int((~kept).sum()), 2))
    assert 0.4 < kept.float().mean().item() < 0.6
    assert torch.equal(out[2::3], torch.full((200, 2), 7.0))  # the fallback is never dropped
    with pytest.raises(ValueError):
        UserFeatureFusion(feats, mask, 2, dropout=1.0)
    # without a learned fallback the users without knowledge keep exactly the plain model's vector
    nf = UserFeatureFusion(feats, mask, 2, fallback=False)
    torch.optim.Adam(nf.parameters(), lr=1.0).zero_grad()
    nf(torch.tensor([0, 2])).sum().backward()
    assert nf.fallback.grad is None and nf.proj.weight.grad is not None
    assert not any(p is nf.fallback for p in nf.parameters() if p.requires_grad)


@pytest.mark.parametrize("kind", ["knowledge", "fallback"])
@pytest.mark.parametrize("model", ["bpr", "lightgcn", "sasrec", "ikgr"])
def test_a_knowledge_row_starts_from_the_same_draws_as_its_model(model, kind):
    """Common random numbers: with the same seed, the model with user features gets exactly the plain model's
    initial weights (the knowledge term starts at zero without drawing), so a paired difference between the two
    rows measures the knowledge, not a different initialisation."""
    data = _with_knowledge(toy_data(num_users=30, num_items=40, seed=3))
    split = leave_one_out(data)
    torch.manual_seed(11)
    plain = build_model(model, data, split, {}, torch.Generator().manual_seed(7))
    after_plain = torch.rand(3)
    torch.manual_seed(11)
    fused = build_model(model, data, split, {"user_features": kind}, torch.Generator().manual_seed(7))
    assert torch.equal(torch.rand(3), after_plain)
    got = fused.state_dict()
    for k, v in plain.state_dict().items():
        assert torch.equal(got[k], v), k


@pytest.mark.parametrize("model", ["bpr", "lightgcn", "sasrec", "ikgr"])
def test_each_model_adds_the_knowledge_penalty_to_its_loss(model):
    data = _with_knowledge(toy_data(num_users=30, num_items=40, seed=3))
    split = leave_one_out(data)
    opts = {"user_features": "knowledge", "knowledge_reg": 0.1}
    net = build_model(model, data, split, opts, torch.Generator().manual_seed(7))
    assert net.user_fusion.reg == 0.1
    with torch.no_grad():
        net.user_fusion.proj.weight.normal_()
    users = torch.arange(8)
    if model == "sasrec":
        batch = {"users": users, "seq": torch.randint(0, data.num_items, (8, 5)),
                 "target": torch.randint(0, data.num_items, (8, 5))}
    else:
        batch = {"users": users, "pos": torch.randint(0, data.num_items, (8,)),
                 "neg": torch.randint(0, data.num_items, (8,))}
    out = net.loss(batch)
    assert out["knowledge_reg"].item() == pytest.approx(0.1 * net.user_fusion.penalty(users).item())
    assert out["knowledge_reg"].item() > 0
    out["knowledge_reg"].backward()
    assert net.user_fusion.proj.weight.grad.abs().sum() > 0
    assert "knowledge_reg" not in build_model(model, data, split, {"user_features": "knowledge"}).loss(batch)
    with pytest.raises(TrainingError, match="knowledge_dropout"):
        build_model(model, data, split, opts | {"knowledge_dropout": 1.5})
    with pytest.raises(TrainingError, match="knowledge_reg"):
        build_model(model, data, split, opts | {"knowledge_reg": -1})
    assert not build_model(model, data, split, opts | {"knowledge_fallback": False}).user_fusion.fallback.requires_grad


@pytest.mark.parametrize("kind", ["knowledge", "fallback"])
@pytest.mark.parametrize("model", ["bpr", "lightgcn", "sasrec", "ikgr"])
def test_models_start_as_the_plain_model_and_score_with_the_term(model, kind):
    data = _with_knowledge(toy_data(num_users=30, num_items=40, seed=3))
    split = leave_one_out(data)
    plain = build_model(model, data, split, {}, torch.Generator().manual_seed(7))
    fused = build_model(model, data, split, {"user_features": kind}, torch.Generator().manual_seed(7))
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
    rows = plan_rows(["bpr", "bpr:knowledge", "sasrec:knowledge", "bpr:fallback"])
    assert [r.model_options.get("user_features", "none") for r in rows] == ["none", "knowledge", "knowledge",
                                                                             "fallback"]
    from kgplatform.errors import ConfigError

    with pytest.raises(ConfigError, match="takes no user features"):
        plan_rows(["kgcn:knowledge"])
    with pytest.raises(ConfigError, match="takes no user features"):
        plan_rows(["kgcn:fallback"])
    # the control without its fallback vector would be the plain model
    data = _with_knowledge(toy_data(num_users=10, num_items=12, seed=1))
    with pytest.raises(TrainingError, match="knowledge_fallback"):
        build_model("bpr", data, leave_one_out(data), {"user_features": "fallback", "knowledge_fallback": False})


def test_the_knowledge_rows_are_paired_with_the_model_and_with_the_fallback_control():
    from types import SimpleNamespace

    from kgplatform.experiment.compare import comparison_pairs

    def row(name, ndcg=0.1):
        return SimpleNamespace(model_name=name, stats={"valid": {"full": {"NDCG@10": [ndcg]}}})

    pairs = comparison_pairs([row("lightgcn"), row("lightgcn:knowledge"), row("lightgcn:fallback")])
    assert {(a, b, why) for a, b, why in pairs} >= {
        ("lightgcn:knowledge", "lightgcn", "with fused knowledge vs without"),
        ("lightgcn:knowledge", "lightgcn:fallback", "with fused knowledge vs the fallback vector alone"),
        ("lightgcn:fallback", "lightgcn", "fallback vector alone vs without")}


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

    r = kgp(neo4j_server, tmp_path, "evaluate", "-d", DS, "--models", "bpr,bpr:knowledge,bpr:fallback", "--seeds",
            "2024", "--epochs", "1", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert [m["model"] for m in doc["models"]] == ["bpr", "bpr:knowledge", "bpr:fallback"]
    for a, b, why in (("bpr:knowledge", "bpr", "with fused knowledge vs without"),
                      ("bpr:knowledge", "bpr:fallback", "with fused knowledge vs the fallback vector alone"),
                      ("bpr:fallback", "bpr", "fallback vector alone vs without")):
        assert any((d["a"], d["b"], d["why"]) == (a, b, why) for d in doc["differences"]), doc["differences"]
    # and again on the test users who have knowledge, the rest getting the learned fallback
    test_users = leave_one_out(data).users("test")
    label = f"users with fused knowledge ({int(data.user_knowledge_mask[test_users].sum())} of {len(test_users)})"
    assert any(d["a"] == "bpr:knowledge" and d.get("users") == label and d["phase"] == "test"
               for d in doc["differences"]), [d.get("users") for d in doc["differences"]]
    # and on the validation users who have knowledge, where knowledge_reg / knowledge_dropout are chosen
    valid_users = leave_one_out(data).users("valid")
    vlabel = f"users with fused knowledge ({int(data.user_knowledge_mask[valid_users].sum())} of {len(valid_users)})"
    assert any(d["a"] == "bpr:knowledge" and d.get("users") == vlabel and d["phase"] == "valid"
               for d in doc["differences"]), [(d.get("users"), d["phase"]) for d in doc["differences"]]
