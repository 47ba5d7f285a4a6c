"""SR-GNN: local/global readout, padding and batch invariance, prefix batches with no leakage, training."""
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from kgplatform.data import LeakageError, leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.eval import FULL
from kgplatform.models import build_model
from kgplatform.models.srgnn import SRGNN, SRGNNConfig
from kgplatform.nn import session_graph
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.samplers import PrefixSampler


def model(steps=1, max_seq_len=8):
    torch.manual_seed(0)
    return SRGNN(5, 30, SRGNNConfig(embedding_dim=16, steps=steps, max_seq_len=max_seq_len)).eval()


@pytest.fixture(scope="module")
def seq_toy():
    return toy_data(num_users=40, num_items=30, seq_len=10, seed=0, sequential=True, kg=False, intents=False)


def test_local_is_the_last_click_and_global_the_attention_sum():
    m = model()
    seq = torch.tensor([[3, 7, 3, 9], [4, 4, -1, -1]])
    with torch.no_grad():
        local, glob = m.encode(seq)
        g = session_graph(seq, 30)
        h = m.gnn(m.item_emb(g.items), g.edge_index, g.w_in, g.w_out)
        for b, n in enumerate([4, 2]):
            v = h[g.alias[b, :n]]  # one state per click (item 3 twice in row 0: its node counts twice)
            assert torch.allclose(local[b], v[-1], atol=1e-6)
            alpha = m.q(torch.sigmoid(m.w1(v[-1]) + m.w2(v)))  # [n, 1]
            assert torch.allclose(glob[b], (alpha * v).sum(0), atol=1e-6)
        fused = m.w3(torch.cat([local, glob], -1))
        assert torch.allclose(m.session_embedding(seq), fused, atol=1e-6)
        assert torch.allclose(m.full_scores(None, seq), fused @ m.item_emb.weight.t(), atol=1e-5)


def test_graph_and_not_order_alone_decide_the_nodes():
    # the later click changes the earlier nodes' states (out-neighbours), unlike a causal encoder
    m = model()
    with torch.no_grad():
        a = m.click_states(torch.tensor([[1, 2, 3]]))[0]
        b = m.click_states(torch.tensor([[1, 2, 4]]))[0]
    assert not torch.allclose(a[0, 1], b[0, 1])


def test_right_padding_and_batch_neighbours_do_not_change_scores():
    m = model()
    with torch.no_grad():
        short = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2]]))
        padded = m.full_scores(torch.tensor([0]), seq=torch.tensor([[4, 7, 2, -1, -1]]))
        batch = m.full_scores(torch.tensor([0, 1]), seq=torch.tensor([[4, 7, 2, -1, -1], [2, 7, 4, 4, 1]]))
    assert torch.allclose(short, padded, atol=1e-6)
    assert torch.allclose(batch[0], short[0], atol=1e-5)


def test_empty_history_and_long_history():
    m = model(max_seq_len=3)
    with torch.no_grad():
        local, glob = m.encode(torch.tensor([[-1, -1], [5, -1]]))
        assert torch.count_nonzero(local[0]) == 0 and torch.count_nonzero(glob[0]) == 0
        # a history longer than max_seq_len reads its last max_seq_len items
        long = m.full_scores(None, torch.tensor([[1, 2, 3, 4, 5, -1]]))
        assert torch.allclose(long, m.full_scores(None, torch.tensor([[3, 4, 5]])), atol=1e-6)
    with pytest.raises(ValueError):
        m.full_scores(torch.tensor([0]))


def test_recbole_shape():
    m = SRGNN(1, 10)
    assert m.item_emb.weight.shape == (10, 64) and m.gnn.steps == 1 and m.max_seq_len == 50
    assert float(m.item_emb.weight.detach().abs().max()) <= 1 / 8  # uniform(+-1/sqrt(64))


def test_loss_is_the_row_sum_over_the_batch_norm():
    m = model()
    seq = torch.tensor([[1, 2, 3], [5, 6, -1]])
    tgt = torch.tensor([4, 7])
    with torch.no_grad():
        ce = F.cross_entropy(m.full_scores(None, seq), tgt, reduction="none")
        assert torch.allclose(m.loss({"seq": seq, "target": tgt, "norm": torch.tensor(4.0)})["ce"], ce.sum() / 4)
        assert torch.allclose(m.loss({"seq": seq, "target": tgt})["ce"], ce.mean())


def test_prefix_sampler_gives_every_training_target_once_with_its_history(seq_toy):
    split = leave_one_out(seq_toy)
    train = training_view(seq_toy, split)
    L = 4
    sampler = PrefixSampler(train, L, 7, torch.Generator().manual_seed(0))
    got = Counter()
    for b in sampler:
        assert b["seq"].shape[0] == b["target"].shape[0] <= 7
        assert float(b["norm"]) == pytest.approx(sampler.norm)
        for u, s, t in zip(b["users"].tolist(), b["seq"].tolist(), b["target"].tolist()):
            got[(u, tuple(i for i in s if i >= 0), t)] += 1
    want = Counter()
    for u in range(seq_toy.num_users):
        full = seq_toy.sequence(u).tolist()
        s = full[: int(split.train_len[u])]  # training prefix only: valid/test targets never appear
        for t in range(1, len(s)):
            want[(u, tuple(s[max(0, t - L):t]), s[t])] += 1
        held_out = full[int(split.train_len[u]):]
        assert len(held_out) >= 1
    assert got == want
    assert sampler.num_targets == sum(want.values())


def test_no_leakage_the_builder_and_sampler_refuse_the_full_data(seq_toy):
    with pytest.raises(LeakageError):
        PrefixSampler(seq_toy, 4, 8, torch.Generator())
    from kgplatform.models import get_spec

    spec = get_spec("srgnn")
    with pytest.raises(LeakageError):
        spec.build(seq_toy, spec.make_config(), torch.Generator())


def test_loss_finite_and_falling_on_prefix_batches(seq_toy):
    train = training_view(seq_toy)
    torch.manual_seed(0)
    m = build_model("srgnn", train, config={"embedding_dim": 16, "max_seq_len": 6})
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    sampler = PrefixSampler(train, m.max_seq_len, 16, torch.Generator().manual_seed(0))
    means = []
    for _ in range(6):
        losses = []
        for b in sampler:
            loss = m.loss(b)["ce"]
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        means.append(sum(losses) / len(losses))
    assert means[-1] < 0.8 * means[0], means


def test_trains_through_the_trainer_under_both_conventions():
    data = toy_data(num_users=80, num_items=40, seq_len=8, seed=1, sequential=True, kg=False, intents=False)
    quiet = dict(device="cpu", num_negatives=15, eval_every=1, patience=100)
    for convention in ("kgp", "recbole"):
        res = Trainer(TrainConfig(epochs=10, lr=0.01, batch_size=16, seed=0, convention=convention, **quiet),
                      log=lambda m: None).fit("srgnn", data, {"embedding_dim": 16, "max_seq_len": 10})
        assert sum(res.log[-1].losses.values()) < sum(res.log[0].losses.values())
        assert res.metrics["test"][FULL]["NDCG@10"] > 0.3, (convention, res.metrics["test"][FULL])
        assert "sampled15" in res.metrics["test"]
        assert res.user_embeddings.shape == (80, 16) and res.item_embeddings.shape == (40, 16)
        assert res.recommend([0, 1], k=5)[0].shape == (2, 5)


@pytest.mark.slow
def test_recbole_srgnn_runs_through_the_worker(tmp_path, data_dir):
    """``--with-recbole srgnn`` maps to RecBole 1.2.1's SRGNN, which the worker runs as a sequential model
    (tested on users with >= 3 interactions, see :mod:`kgplatform.eval.recbole`)."""
    from kgplatform.eval import recbole as rb
    from kgplatform.experiment import RECBOLE_NAMES

    venv = rb.default_venv()
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"no RecBole venv at {venv}")
    rows = [ln.split("\t") for ln in (data_dir / "movielens-100k-tiny" / "test.inter").read_text().splitlines()[1:]
            if ln.strip()]
    per_user = Counter(r[0] for r in rows)
    rows = [r for r in rows if per_user[r[0]] < 150]  # RecBole refuses a user who rated every item
    folder = tmp_path / "atomic" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       + "".join("\t".join(r) + "\n" for r in rows))
    res = rb.run_recbole(tmp_path / "atomic", "tiny", RECBOLE_NAMES["srgnn"], mode="full", seed=2020, epochs=1,
                         timeout_s=500, venv=venv, also_modes=("uni99",))
    counts = Counter(r[0] for r in rows)
    assert res.model == "SRGNN" and res.epochs_run == 1
    assert set(res.per_user["test"]["users"]) == {u for u, n in counts.items() if n >= 3}
    for r in (res, res.extra["uni99"]):
        assert 0.0 <= r.metrics["test"]["NDCG@10"] <= r.metrics["test"]["HR@10"] <= 1.0
