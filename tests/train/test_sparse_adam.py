"""Sparse embedding gradients (BPR-MF ``sparse_grad``): SparseAdam over the tables, cost following the batch."""
import pytest
import torch

from kgplatform.data.devdata import toy_data
from kgplatform.errors import TrainingError
from kgplatform.models.bpr import BPRConfig, BPRMF
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.trainer import Optimizers, make_adam, sparse_parameters

CFG = TrainConfig(device="cpu", lr=0.05, fused_adam=False)


def pair(sparse: bool) -> BPRMF:
    torch.manual_seed(0)
    return BPRMF(12, 9, BPRConfig(embedding_dim=4, sparse_grad=sparse))


def step(net, opt, users, pos, neg):
    loss = sum(net.loss({"users": torch.tensor(users), "pos": torch.tensor(pos), "neg": torch.tensor(neg)}).values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def test_tables_get_sparse_adam_and_rows_not_in_the_batch_stay():
    dense, sparse = pair(False), pair(True)
    assert torch.equal(dense.user_emb.weight, sparse.user_emb.weight)
    od, os_ = make_adam(dense, CFG, torch.device("cpu")), make_adam(sparse, CFG, torch.device("cpu"))
    assert isinstance(od, torch.optim.Adam) and isinstance(os_, Optimizers)
    assert {id(p) for p in sparse_parameters(sparse)} == {id(sparse.user_emb.weight), id(sparse.item_emb.weight)}
    assert isinstance(os_.optimizers[0], torch.optim.SparseAdam)
    before = sparse.user_emb.weight.detach().clone()
    # step 1: Adam's first step is g / (|g| + eps) on every row; rows without gradient do not move in either
    step(dense, od, [0, 1], [2, 3], [4, 5])
    step(sparse, os_, [0, 1], [2, 3], [4, 5])
    assert sparse.user_emb.weight.grad is None or sparse.user_emb.weight.grad.is_sparse
    assert torch.allclose(dense.user_emb.weight, sparse.user_emb.weight, atol=1e-5)
    assert torch.allclose(dense.item_emb.weight, sparse.item_emb.weight, atol=1e-5)
    assert torch.equal(sparse.user_emb.weight[2:], before[2:])
    # step 2 on other users: dense Adam's momentum still moves users 0 and 1; lazy Adam leaves them
    after1 = sparse.user_emb.weight.detach().clone()
    step(dense, od, [6, 7], [2, 3], [4, 5])
    step(sparse, os_, [6, 7], [2, 3], [4, 5])
    assert torch.equal(sparse.user_emb.weight[:2], after1[:2])
    assert not torch.allclose(dense.user_emb.weight[:2], after1[:2])
    assert not torch.equal(sparse.user_emb.weight[6:8], after1[6:8])


def test_weight_decay_and_clipping_are_refused_with_sparse_tables():
    for bad in ({"weight_decay": 1e-4}, {"grad_clip": 1.0}):
        with pytest.raises(TrainingError, match="sparse"):
            make_adam(pair(True), TrainConfig(device="cpu", **bad), torch.device("cpu"))


def test_trainer_fits_sparse_bpr_and_learns():
    toy = toy_data(num_users=40, num_items=30, seq_len=7, seed=4)
    base = dict(device="cpu", num_negatives=10, epochs=6, batch_size=32, lr=0.05, eval_every=6)
    res = Trainer(TrainConfig(**base), log=lambda m: None).fit("bpr", toy, {"embedding_dim": 8, "sparse_grad": True})
    assert res.model_config["sparse_grad"] is True
    losses = [e.losses["bpr"] for e in res.log]
    assert losses[-1] < losses[0]


def test_lightgcn_neighbor_sparse_grads_equal_the_dense_ones():
    from kgplatform.data import leave_one_out
    from kgplatform.models import build_model

    toy = toy_data(num_users=20, num_items=15, seq_len=6, seed=3)
    split = leave_one_out(toy)
    nets = []
    for sparse in (False, True):
        torch.manual_seed(1)
        nets.append(build_model("lightgcn", toy, split, {"embedding_dim": 8, "loader": "neighbor",
                                                         "num_neighbors": "-1,-1", "sparse_grad": sparse}))
    batch = {"users": torch.tensor([0, 3, 3, 7]), "pos": torch.tensor([1, 2, 5, 9]), "neg": torch.tensor([4, 4, 0, 11])}
    for net in nets:
        sum(net.loss(batch).values()).backward()
    dense, sparse = nets
    assert sparse.user_emb.weight.grad.is_sparse and not dense.user_emb.weight.grad.is_sparse
    assert torch.allclose(sparse.user_emb.weight.grad.to_dense(), dense.user_emb.weight.grad, atol=1e-6)
    assert torch.allclose(sparse.item_emb.weight.grad.to_dense(), dense.item_emb.weight.grad, atol=1e-6)
    assert {id(p) for p in sparse_parameters(sparse)} == {id(sparse.user_emb.weight), id(sparse.item_emb.weight)}


def test_lightgcn_sparse_grad_needs_the_neighbour_loader():
    toy = toy_data(num_users=20, num_items=30, seq_len=6, seed=3)
    with pytest.raises(TrainingError, match="sparse_grad"):
        Trainer(TrainConfig(device="cpu", epochs=1, num_negatives=10),
                log=lambda m: None).prepare("lightgcn", toy, {"sparse_grad": True})
    res = Trainer(TrainConfig(device="cpu", num_negatives=10, epochs=2, batch_size=32, lr=0.02, eval_every=2),
                  log=lambda m: None).fit("lightgcn", toy, {"embedding_dim": 8, "loader": "neighbor",
                                                            "num_neighbors": "5,5", "sparse_grad": True})
    assert res.model_config["sparse_grad"] is True and res.metrics["test"]


def test_data_parallel_refuses_sparse_tables():
    from kgplatform.data import leave_one_out, training_view
    from kgplatform.train.distributed import _setup

    toy = toy_data(num_users=20, num_items=30, seq_len=6, seed=3)
    train = training_view(toy, leave_one_out(toy))
    with pytest.raises(TrainingError, match="sparse_grad"):
        _setup("bpr", train, {"sparse_grad": True}, 0, 8)
    net, _ = _setup("bpr", train, {}, 0, 8)
    assert not sparse_parameters(net)
