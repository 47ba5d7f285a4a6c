"""LightGCN: propagation equals the dense closed form, the graph holds training edges only, it trains."""
import pytest
import torch

from kgplatform.data import RecData, leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.eval import FULL
from kgplatform.models import build_model
from kgplatform.models.lightgcn import LightGCN, LightGCNConfig, bipartite_norm_adj
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.samplers import PairSampler

# 3 users, 4 items; leave-one-out keeps the first n - 2 items of each sequence for training:
# u0 [0, 1 | 2, 3], u1 [1, 1 | 2, 0] (a repeat), u2 [3 | 2, 0]; item 2 is only ever held out
SEQS = [[0, 1, 2, 3], [1, 1, 2, 0], [3, 2, 0]]
TRAIN_EDGES = {(0, 0), (0, 1), (1, 1), (2, 3)}


@pytest.fixture()
def data():
    return RecData.from_sequences("toy", ["a", "b", "c"], ["w", "x", "y", "z"], SEQS)


def dense_lightgcn(e_user, e_item, edges, num_layers):
    U, I = e_user.shape[0], e_item.shape[0]
    R = torch.zeros(U, I)
    for u, i in edges:
        R[u, i] = 1.0
    A = torch.zeros(U + I, U + I)
    A[:U, U:] = R
    A[U:, :U] = R.t()
    deg = A.sum(1)
    dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    A_hat = dinv[:, None] * A * dinv[None, :]
    x = torch.cat([e_user, e_item])
    layers = [x]
    for _ in range(num_layers):
        layers.append(A_hat @ layers[-1])
    out = torch.stack(layers).mean(0)
    return out[:U], out[U:]


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_propagation_equals_dense_closed_form(data, num_layers):
    torch.manual_seed(0)
    model = build_model("lightgcn", data, leave_one_out(data), {"embedding_dim": 5, "num_layers": num_layers})
    with torch.no_grad():
        u, i = model.propagate()
        wu, wi = dense_lightgcn(model.user_emb.weight, model.item_emb.weight, TRAIN_EDGES, num_layers)
    assert torch.allclose(u, wu, atol=1e-6)
    assert torch.allclose(i, wi, atol=1e-6)


def test_adjacency_holds_training_edges_only(data):
    split = leave_one_out(data)
    model = build_model("lightgcn", data, split)
    U = data.num_users
    edges = {(int(r), int(c)) for r, c in model.edge_index.t()}
    want = {(u, U + i) for u, i in TRAIN_EDGES}
    assert edges == want | {(c, r) for r, c in want}  # both directions, the repeat once, no held-out pair
    assert not any(r == U + 2 or c == U + 2 for r, c in edges)
    # weights 1 / sqrt(deg_u deg_i): u0 has 2 items, item 1 two users, the rest degree 1
    w = {(int(r), int(c)): float(x) for (r, c), x in zip(model.edge_index.t(), model.edge_weight)}
    assert w[(0, U + 1)] == pytest.approx(0.5)
    assert w[(0, U + 0)] == pytest.approx(2 ** -0.5)
    assert w[(2, U + 3)] == pytest.approx(1.0)
    # the builder sees the training view; the full data would give the held-out edges
    full_edges, _ = bipartite_norm_adj(data.interaction_users(), data.seq_items, U, data.num_items)
    assert full_edges.shape[1] > model.edge_index.shape[1]
    assert torch.equal(build_model("lightgcn", training_view(data, split)).edge_index, model.edge_index)


def test_prepare_eval_caches_and_train_drops_the_cache(data):
    torch.manual_seed(0)
    model = build_model("lightgcn", data, leave_one_out(data)).eval()
    model.prepare_eval()
    assert model._cache is not None
    users = torch.tensor([0, 2])
    with torch.no_grad():
        cached = model.full_scores(users)
        u, i = model.propagate()
    assert torch.allclose(cached, u[users] @ i.t())
    model.train()
    assert model._cache is None
    with torch.no_grad():
        model.item_emb.weight.add_(1.0)
    assert not torch.allclose(model.full_scores(users), cached)


def test_loss_falls_and_reg_is_recboles(data):
    toy = toy_data(num_users=30, num_items=20, seq_len=8, seed=0)
    train = training_view(toy)
    torch.manual_seed(0)
    model = build_model("lightgcn", train, config={"embedding_dim": 8})
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sampler = PairSampler(train, 64, torch.Generator().manual_seed(0))
    first = last = None
    for epoch in range(8):
        tot = 0.0
        for b in sampler:
            losses = model.loss(b)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        first = tot if first is None else first
        last = tot
    assert last < 0.8 * first, (first, last)
    b = next(iter(sampler))
    with torch.no_grad():
        reg = model.loss(b)["reg"]
        ego = [model.user_emb(b["users"]), model.item_emb(b["pos"]), model.item_emb(b["neg"])]
    assert float(reg) == pytest.approx(1e-5 * sum(float(e.norm()) for e in ego) / b["users"].numel(), rel=1e-5)


def test_trains_through_the_trainer():
    toy = toy_data(num_users=80, num_items=40, seq_len=8, seed=1)
    quiet = dict(device="cpu", num_negatives=15, eval_every=1, patience=100)
    res = Trainer(TrainConfig(epochs=15, lr=0.05, batch_size=64, seed=0, **quiet), log=lambda m: None).fit(
        "lightgcn", toy, {"embedding_dim": 16}
    )
    assert sum(res.log[-1].losses.values()) < sum(res.log[0].losses.values())
    assert res.metrics["test"][FULL]["NDCG@10"] > 0.3, res.metrics["test"][FULL]
    assert res.user_embeddings.shape == (80, 16) and res.item_embeddings.shape == (40, 16)


def test_device_move_rebuilds_the_adjacency(data):
    model = LightGCN(3, 4, torch.tensor([0, 1]), torch.tensor([0, 3]), LightGCNConfig(embedding_dim=4))
    a = model.adjacency()
    model.double()
    assert model._adj is None
    assert model.propagate()[0].dtype == torch.float64
    assert a.layout == torch.sparse_csr


def test_one_layer_is_pygs_lgconv_and_the_gradient_is_exact(data):
    from torch_geometric.nn import LGConv

    from kgplatform.models.lightgcn import symmetric_spmm

    torch.manual_seed(0)
    model = build_model("lightgcn", data, leave_one_out(data), {"embedding_dim": 3})
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    adj = model.adjacency().to(torch.float64)
    want = LGConv(normalize=True)(x, model.edge_index)  # gcn_norm without self-loops on both directions
    assert torch.allclose(symmetric_spmm(adj, x), want)
    assert torch.autograd.gradcheck(lambda t: symmetric_spmm(adj, t), (x,))
