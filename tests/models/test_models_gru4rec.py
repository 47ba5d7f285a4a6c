"""GRU4Rec: causal (no peeking at later items), padding-invariant, trains on SASRec's batches."""
import torch

from kgplatform.data import leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.eval import FULL
from kgplatform.models import build_model
from kgplatform.models.gru4rec import GRU4Rec, GRU4RecConfig
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.samplers import SequenceSampler


def model():
    torch.manual_seed(0)
    m = GRU4Rec(5, 30, GRU4RecConfig(embedding_dim=16, hidden_size=24, max_seq_len=8))
    return m.eval()


def test_outputs_do_not_depend_on_later_items():
    m = model()
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 3, 9, 9]])
    with torch.no_grad():
        ha, hb = m.encode(a), m.encode(b)
    assert torch.allclose(ha[0, :3], hb[0, :3], atol=1e-6)
    assert not torch.allclose(ha[0, 3], hb[0, 3])


def test_right_padding_does_not_change_scores():
    m = model()
    with torch.no_grad():
        short = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2]]))
        padded = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2, -1, -1]]))
        batch = m.full_scores(torch.tensor([0, 1]), seq=torch.tensor([[4, 7, 2, -1, -1], [1, 2, 3, 4, 5]]))
    assert torch.allclose(short, padded, atol=1e-6)
    assert torch.allclose(batch[0], short[0], atol=1e-6)


def test_recbole_shape():
    m = GRU4Rec(1, 10)
    assert (m.item_emb.embedding_dim, m.gru.hidden_size, m.gru.num_layers, m.gru.bias) == (64, 128, 1, False)
    assert m.emb_dropout.p == 0.3 and m.max_seq_len == 50
    assert torch.count_nonzero(m.item_emb.weight[10]) == 0  # padding row


def test_loss_falls_on_sequence_batches():
    data = toy_data(num_users=40, num_items=30, seq_len=10, seed=0, sequential=True, kg=False, intents=False)
    train = training_view(data)
    torch.manual_seed(0)
    m = build_model("gru4rec", train, config={"embedding_dim": 16, "hidden_size": 32, "max_seq_len": 6})
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    sampler = SequenceSampler(train, m.max_seq_len, 8, torch.Generator().manual_seed(0))
    means = []
    for _ in range(6):
        losses = []
        for b in sampler:
            loss = m.loss(b)["ce"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        means.append(sum(losses) / len(losses))
    assert means[-1] < 0.8 * means[0], means


def test_trains_through_the_trainer():
    data = toy_data(num_users=80, num_items=40, seq_len=8, seed=1, sequential=True, kg=False, intents=False)
    quiet = dict(device="cpu", num_negatives=15, eval_every=1, patience=100)
    res = Trainer(TrainConfig(epochs=15, lr=0.01, batch_size=16, seed=0, **quiet), log=lambda m: None).fit(
        "gru4rec", data, {"embedding_dim": 16, "hidden_size": 32, "dropout": 0.1, "max_seq_len": 10}
    )
    assert sum(res.log[-1].losses.values()) < sum(res.log[0].losses.values())
    assert res.metrics["test"][FULL]["NDCG@10"] > 0.3, res.metrics["test"][FULL]
    assert res.user_embeddings.shape == (80, 16)


def test_score_agrees_with_full_scores():
    data = toy_data(num_users=20, num_items=40, seq_len=8, seed=1)
    s = leave_one_out(data)
    m = model().__class__(20, 40, GRU4RecConfig(embedding_dim=8, hidden_size=8, max_seq_len=5)).eval()
    users = torch.tensor([0, 3, 7])
    seq = s.history_sequences("test", users, m.max_seq_len)[0]
    items = torch.tensor([[0, 5, 9], [1, 2, 3], [39, 20, 10]])
    with torch.no_grad():
        assert torch.allclose(m.full_scores(users, seq=seq).gather(1, items), m.score(users, items, seq=seq), atol=1e-5)
