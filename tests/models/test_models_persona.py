"""The persona-aware session recommender: trains through the one Trainer, the persona reaches the scores, the
re-ranker re-orders exactly the top N by the session's intent, anonymous scoring infers the persona from the
items, and the ablations switch what they say."""
import dataclasses

import pytest
import torch

from kgplatform.data import leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.errors import TrainingError
from kgplatform.models import MODELS, build_model, get_spec
from kgplatform.models.persona_rec import PersonaRecConfig, PersonaSeqRec
from kgplatform.train import TrainConfig, Trainer

SMALL = {"hidden_size": 16, "inner_size": 32, "num_heads": 2, "max_seq_len": 10, "hdgi_hidden": 8,
         "hdgi_epochs": 40, "num_personas": 3, "rerank_n": 10}


def data(seed=0):
    d = toy_data(num_users=60, num_items=30, num_groups=3, seq_len=9, seed=seed, sequential=True)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 16, generator=g) * 3
    return dataclasses.replace(d, item_text_emb=centers[torch.arange(30) % 3] + torch.randn(30, 16, generator=g))


def test_trains_through_the_trainer_and_tunes_the_rerank_weight_on_validation():
    res = Trainer(TrainConfig(epochs=6, batch_size=32, device="cpu", seed=1, eval_every=2, num_negatives=15),
                  log=lambda m: None).fit("persona-sasrec", data(), SMALL)
    losses = [e.losses["ce"] for e in res.log]
    assert losses[-1] < losses[0]
    assert "rerank_mu" in res.eval_params and res.eval_params["rerank_mu"] in PersonaRecConfig().rerank_grid
    assert res.metrics["test"]["full"]["HR@10"] > 10 / 30  # better than random
    assert res.user_embeddings.shape == (60, 16)


def test_the_persona_changes_the_scores_through_the_gate():
    d = data()
    m = build_model("persona-sasrec", d, leave_one_out(d), SMALL).eval()
    seq = torch.tensor([[1, 4, 7], [1, 4, 7]])
    a, b = (int(x) for x in torch.nonzero(m.personas.assignment[:, None] != m.personas.assignment[None, :])[0])
    with torch.no_grad():
        s = m.full_scores(torch.tensor([a, b]), seq=seq)
    assert not torch.allclose(s[0], s[1])


def test_rerank_orders_the_top_n_by_session_similarity_and_keeps_the_rest_below():
    d = data()
    m = build_model("persona-sasrec", d, leave_one_out(d), SMALL | {"persona": "none", "rerank_n": 5}).eval()
    seq = torch.tensor([[2, 5, 8, 11]])
    with torch.no_grad():
        m.set_eval_param("rerank_mu", 0.0)
        base = m.full_scores(torch.tensor([0]), seq=seq)[0]
        m.set_eval_param("rerank_mu", 1.0)
        mixed = m.full_scores(torch.tensor([0]), seq=seq)[0]
        sess = m._session_text(seq[:, -3:])[0]  # rerank_window = 3
    top5 = torch.topk(base, 5).indices
    # the top 5 stay the top 5 ...
    assert set(torch.topk(mixed, 5).indices.tolist()) == set(top5.tolist())
    # ... ordered by cosine with the session's last three items
    sim = m.item_text[top5] @ sess
    assert torch.topk(mixed, 5).indices.tolist() == top5[torch.argsort(sim, descending=True)].tolist()
    # below them the base order is unchanged
    rest_base = [i for i in torch.argsort(base, descending=True).tolist() if i not in set(top5.tolist())]
    rest_mixed = [i for i in torch.argsort(mixed, descending=True).tolist() if i not in set(top5.tolist())]
    assert rest_base == rest_mixed


def test_anonymous_scoring_infers_the_persona_from_the_items():
    d = data()
    split = leave_one_out(d)
    cfg = SMALL | {"anonymous": True}
    m = build_model("persona-sasrec", d, split, cfg).eval()
    assert m.history_scope == "session"
    train = training_view(d, split)
    u = 5
    seq = train.sequence(u)[None, :]
    with torch.no_grad():
        inferred = m.persona_of(torch.tensor([u]), seq)
    # the user's own training items give back the user's persona centroid
    assert torch.allclose(inferred[0], m.user_persona[u], atol=1e-5)
    # training reads the user's persona, never an inferred one
    m.train()
    assert torch.equal(m.persona_of(torch.tensor([u]), torch.tensor([[0, 3]])), m.user_persona[[u]])


def test_gru4rec_backbone_and_mean_personas_train():
    res = Trainer(TrainConfig(epochs=3, batch_size=32, device="cpu", seed=1, eval_every=3, num_negatives=15),
                  log=lambda m: None).fit("persona-sasrec", data(1),
                                          SMALL | {"backbone": "gru4rec", "persona": "mean"})
    assert res.epochs_run == 3 and res.metrics["test"]["full"]["HR@10"] > 0


def test_ablations_switch_their_option():
    base = PersonaRecConfig()
    assert base.ablation("no_persona").persona == "none"
    assert base.ablation("mean_persona").persona == "mean"
    assert base.ablation("no_llm_init").item_init == "random"
    assert base.ablation("no_rerank").rerank is False
    assert base.ablation("anonymous").anonymous is True
    assert set(PersonaRecConfig.ABLATIONS) >= {"no_persona", "mean_persona", "no_llm_init", "no_rerank", "anonymous"}


def test_text_init_starts_items_from_their_text():
    d = data()
    split = leave_one_out(d)
    m = build_model("persona-sasrec", d, split, SMALL)
    r = build_model("persona-sasrec", d, split, SMALL | {"item_init": "random"})
    emb, rnd = m.item_embeddings().detach(), r.item_embeddings().detach()

    def same_group_minus_other(e):
        e = torch.nn.functional.normalize(e, dim=1)
        s = e @ e.t()
        same = (torch.arange(30)[:, None] % 3) == (torch.arange(30)[None, :] % 3)
        return float(s[same & ~torch.eye(30, dtype=torch.bool)].mean() - s[~same].mean())

    assert same_group_minus_other(emb) > 0.5 > abs(same_group_minus_other(rnd))


@pytest.mark.parametrize("bad", [{"backbone": "bert"}, {"num_heads": 3}, {"persona": "x"}, {"rerank_mu": 2},
                                 {"rerank_grid": []}, {"num_personas": 1}, {"anonymous": True, "persona": "none"},
                                 {"metapaths": ["UXU"]}, {"rerank": "yes"}])
def test_bad_options_are_refused_before_training(bad):
    with pytest.raises(TrainingError):
        get_spec("persona-sasrec").make_config(SMALL | bad)


def test_registered_and_needs_text():
    assert "persona-sasrec" in MODELS
    d = dataclasses.replace(data(), item_text_emb=None)
    with pytest.raises(TrainingError, match="text vectors"):
        build_model("persona-sasrec", d, leave_one_out(d), SMALL)
    assert isinstance(build_model("persona-sasrec", d, leave_one_out(d),
                                  SMALL | {"persona": "none", "item_init": "random", "rerank": False}), PersonaSeqRec)


def test_score_agrees_with_full_scores_before_reranking():
    d = data()
    m = build_model("persona-sasrec", d, leave_one_out(d), SMALL).eval()
    users = torch.tensor([0, 5, 9])
    seq = torch.tensor([[1, 4, 7, -1], [2, 5, -1, -1], [3, 6, 9, 12]])
    items = torch.randint(30, (3, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = m.full_scores(users, seq=seq)
        assert torch.allclose(m.score(users, items, seq=seq), full.gather(1, items), atol=1e-5)
