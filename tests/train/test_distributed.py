"""Simulated data-parallel training: 2 gloo processes under DDP, each on a disjoint shard of every batch, end
with the parameters of single-process training on the union batches (same seed)."""
from __future__ import annotations

import pytest
import torch

from kgplatform.data import leave_one_out, training_view
from kgplatform.data.devdata import load_recbole_atomic
from kgplatform.errors import TrainingError
from kgplatform.train.distributed import data_parallel_train, shard, single_process_train


def test_shards_are_disjoint_and_cover_the_batch():
    batch = {"users": torch.arange(10), "pos": torch.arange(10, 20)}
    parts = [shard(batch, r, 3) for r in range(3)]
    assert sorted(torch.cat([p["users"] for p in parts]).tolist()) == list(range(10))
    assert all(torch.equal(p["pos"], p["users"] + 10) for p in parts)


def test_two_process_ddp_equals_single_process_on_the_union(data_dir):
    data = load_recbole_atomic(data_dir / "movielens-100k-tiny" / "test", "ml-tiny", kg=False)
    train = training_view(data, leave_one_out(data))
    # the neighbour loader with every neighbour (exact) and the additive (require_pow) regulariser
    opts = {"embedding_dim": 16, "loader": "neighbor", "num_neighbors": [-1, -1], "require_pow": True,
            "reg_weight": 1e-3}
    ddp = data_parallel_train("lightgcn", train, opts, world_size=2, steps=3, batch_size=256, lr=1e-2, seed=7)
    ref = single_process_train("lightgcn", train, opts, steps=3, batch_size=256, lr=1e-2, seed=7)
    init = single_process_train("lightgcn", train, opts, steps=0, seed=7)["state"]
    for name, want in ref["state"].items():
        assert torch.allclose(ddp["state"][name], want, atol=1e-5), name
        assert not torch.allclose(init[name], want, atol=1e-3), name  # training moved them
    assert ddp["losses"] == pytest.approx(ref["losses"], abs=1e-5)


def test_uneven_shards_are_refused(data_dir):
    data = load_recbole_atomic(data_dir / "movielens-100k-tiny" / "test", "ml-tiny", kg=False)
    train = training_view(data, leave_one_out(data))
    with pytest.raises(TrainingError, match="equal shards"):
        data_parallel_train("lightgcn", train, world_size=2, batch_size=255)
