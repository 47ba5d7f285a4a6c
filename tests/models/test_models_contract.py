"""Every registry model: trains on a toy set with a planted signal, beats random, keeps the contract."""
import pytest
import torch

from kgplatform.errors import TrainingError
from kgplatform.data import leave_one_out
from kgplatform.eval import FULL
from kgplatform.models import MODELS, build_model, get_spec
from kgplatform.train import TrainConfig, Trainer
from kgplatform.data.devdata import toy_data

QUIET = dict(device="cpu", num_negatives=15, eval_every=1, patience=100)
SMALL = {
    "bpr": {"embedding_dim": 16},
    "sasrec": {"hidden_size": 16, "inner_size": 32, "dropout": 0.1, "max_seq_len": 10},
    "kgcn": {"embedding_dim": 16},
    "ikgr": {"embedding_dim": 16, "kg_batch_size": 64},
    "lightgcn": {"embedding_dim": 16},
    "gru4rec": {"embedding_dim": 16, "hidden_size": 32, "dropout": 0.1, "max_seq_len": 10},
    "srgnn": {"embedding_dim": 16, "max_seq_len": 10},
}
# (epochs, lr, batch size) small enough for the whole file to take seconds
TRAIN = {"bpr": (15, 0.05, 64), "sasrec": (15, 0.01, 16), "kgcn": (15, 0.05, 64), "ikgr": (10, 0.02, 128),
         "lightgcn": (15, 0.05, 64), "gru4rec": (15, 0.01, 16), "srgnn": (10, 0.01, 16)}


def test_registry_keys():
    assert set(MODELS) == {"pop", "bpr", "lightgcn", "gru4rec", "sasrec", "kgcn", "ikgr", "persona-sasrec",
                           "srgnn", "llm4sbr"}
    with pytest.raises(TrainingError) as e:
        get_spec("nope")
    assert "pop" in e.value.hint


def test_unknown_config_option_is_refused():
    with pytest.raises(TrainingError):
        get_spec("bpr").make_config({"embedding_size": 3})


@pytest.fixture(scope="module")
def toy():
    return toy_data(num_users=80, num_items=40, seq_len=8, seed=1)


@pytest.fixture(scope="module")
def seq_toy():
    return toy_data(num_users=80, num_items=40, seq_len=8, seed=1, sequential=True, kg=False, intents=False)


@pytest.mark.parametrize("name", ["bpr", "lightgcn", "sasrec", "gru4rec", "srgnn", "kgcn", "ikgr"])
def test_loss_decreases_and_beats_random(name, toy, seq_toy):
    data = seq_toy if name in ("sasrec", "gru4rec", "srgnn") else toy
    epochs, lr, bs = TRAIN[name]
    res = Trainer(TrainConfig(epochs=epochs, lr=lr, batch_size=bs, seed=0, **QUIET), log=lambda m: None).fit(
        name, data, SMALL[name]
    )
    first = sum(res.log[0].losses.values())
    last = sum(res.log[-1].losses.values())
    assert last < first, (first, last)
    # random ranking of 40 items with ~7 masked: NDCG@10 is about 0.14
    assert res.metrics["test"][FULL]["NDCG@10"] > 0.3, res.metrics["test"][FULL]


def test_pop_counts_training_interactions(toy):
    s = leave_one_out(toy)
    pop = build_model("pop", toy, s)
    assert torch.equal(pop.counts, s.item_counts().float())
    assert not pop.trainable


def test_pop_recbole_mode_counts_batches(toy):
    s = leave_one_out(toy)
    pop = build_model("pop", toy, s, {"count": "recbole", "recbole_batch_size": 64, "recbole_neg": 0})
    n_batches = -(-s.num_train // 64)
    assert pop.counts.max() <= n_batches
    assert pop.counts.sum() <= s.item_counts().sum()


@pytest.mark.parametrize("name", ["pop", "bpr", "lightgcn", "sasrec", "gru4rec", "srgnn", "kgcn", "ikgr"])
def test_score_agrees_with_full_scores(name, toy):
    s = leave_one_out(toy)
    torch.manual_seed(0)
    model = build_model(name, toy, s, SMALL.get(name))
    model.eval()
    model.prepare_eval()
    users = torch.tensor([0, 3, 7])
    seq = s.history_sequences("test", users, model.max_seq_len)[0] if model.needs_sequence else None
    items = torch.tensor([[0, 5, 9], [1, 2, 3], [39, 20, 10]])
    with torch.no_grad():
        full = model.full_scores(users, seq=seq)
        part = model.score(users, items, seq=seq)
    assert full.shape == (3, toy.num_items)
    assert torch.allclose(full.gather(1, items), part, atol=1e-5)
