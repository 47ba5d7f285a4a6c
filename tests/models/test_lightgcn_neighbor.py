"""Neighbour-sampled LightGCN training (``loader=neighbor``) and its PyG-compatible sampler.

Exact in the limit (every neighbour taken: the batch's embeddings and the loss gradient equal full-graph
propagation's), bounded by the fan-out with sampling on, trains, plugs into PyG's loaders, refuses bad options.
"""
from __future__ import annotations

import sys

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput

from kgplatform.data import leave_one_out
from kgplatform.data.devdata import load_recbole_atomic
from kgplatform.data.neighbor import CSRNeighborSampler, fanout_bound
from kgplatform.models import build_model, get_spec
from kgplatform.errors import TrainingError
from kgplatform.train.samplers import PairSampler


@pytest.fixture(scope="module")
def tiny(data_dir):
    """RecBole's MovieLens test subset (171 users, 200 items), interactions only."""
    data = load_recbole_atomic(data_dir / "movielens-100k-tiny" / "test", "ml-tiny", kg=False)
    return data, leave_one_out(data)


def _batch(data, split, n=64, seed=0):
    from kgplatform.data import training_view

    sampler = PairSampler(training_view(data, split), n, torch.Generator().manual_seed(seed))
    return next(iter(sampler))


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_all_neighbours_equal_full_propagation(tiny, num_layers):
    data, split = tiny
    torch.manual_seed(0)
    model = build_model("lightgcn", data, split, {"embedding_dim": 8, "num_layers": num_layers,
                                                  "loader": "neighbor", "num_neighbors": [-1] * num_layers})
    users, items = torch.tensor([0, 7, 42, 150]), torch.tensor([3, 0, 99, 120, 11])
    with torch.no_grad():
        full_u, full_i = model.propagate()
        u, i = model.propagate_batch(users, items)
    assert torch.allclose(u, full_u[users], atol=1e-5) and torch.allclose(i, full_i[items], atol=1e-5)


def test_all_neighbours_give_the_full_graph_gradient(tiny):
    data, split = tiny
    batch = _batch(data, split)
    torch.manual_seed(0)
    sampled = build_model("lightgcn", data, split, {"embedding_dim": 8, "loader": "neighbor",
                                                    "num_neighbors": "-1,-1"})
    full = build_model("lightgcn", data, split, {"embedding_dim": 8})
    full.load_state_dict(sampled.state_dict())
    grads = []
    for m in (sampled, full):
        losses = m.loss(batch)
        sum(losses.values()).backward()
        grads.append((float(sum(losses.values()).detach()), m.user_emb.weight.grad, m.item_emb.weight.grad))
    (l_s, gu_s, gi_s), (l_f, gu_f, gi_f) = grads
    assert abs(l_s - l_f) < 1e-6
    assert torch.allclose(gu_s, gu_f, atol=1e-6) and torch.allclose(gi_s, gi_f, atol=1e-6)
    assert gu_s.abs().sum() > 0


def test_subgraph_never_exceeds_the_fanout_bound(tiny):
    data, split = tiny
    model = build_model("lightgcn", data, split, {"loader": "neighbor", "num_neighbors": [3, 2]})
    sampler = model.neighbor_sampler()
    n = data.num_users + data.num_items
    edges = {(int(a), int(b)) for a, b in model.edge_index.t()}
    torch.manual_seed(1)
    for size in (1, 5, 40):
        seeds = torch.randperm(n)[:size]
        out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
        assert out.node.numel() <= min(fanout_bound(size, [3, 2]), n)
        assert torch.equal(out.node[:size], seeds) and out.node.unique().numel() == out.node.numel()
        assert sum(out.num_sampled_nodes) == out.node.numel()
        assert int(torch.bincount(out.col).max()) <= 3  # no node drew more than the largest fan-out
        # every sampled edge is a graph edge, and `edge` names it in the model's edge_index
        src, dst = out.node[out.row], out.node[out.col]
        assert all((int(d), int(s)) in edges for s, d in zip(src, dst))
        assert torch.equal(model.edge_index[1, out.edge], src) and torch.equal(model.edge_index[0, out.edge], dst)
    # a hub with more neighbours than its fan-out draws exactly the fan-out
    deg = sampler.in_degree
    hub = int(torch.argmax(deg))
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=torch.tensor([hub])))
    assert out.num_sampled_edges[0] == 3 < int(deg[hub])


@pytest.fixture()
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads can make these tiny steps 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sampled_training_lowers_the_loss(tiny, one_thread):
    """The Trainer's step (pair sampler, named losses, Adam) with 5,5 sampled neighbourhoods."""
    from kgplatform.data import training_view

    data, split = tiny
    torch.manual_seed(0)
    model = build_model("lightgcn", data, split, {"loader": "neighbor", "num_neighbors": "5,5"})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    pairs = PairSampler(training_view(data, split), 1024, torch.Generator().manual_seed(0))
    epoch_loss = []
    for _ in range(4):
        total = []
        for batch in pairs:
            loss = sum(model.loss(batch).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.append(float(loss.detach()))
        epoch_loss.append(sum(total) / len(total))
    assert epoch_loss[-1] < epoch_loss[0] - 0.05, epoch_loss


def test_sampler_plugs_into_pyg_loaders():
    # a path 0-1-2-3-4 (both directions): NeighborLoader / LinkNeighborLoader semantics through PyG's loaders
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    data = Data(edge_index=ei, num_nodes=5, x=torch.arange(5.0).view(-1, 1))
    sampler = CSRNeighborSampler(ei, 5, [-1, -1])
    batch = next(iter(NodeLoader(data, node_sampler=sampler, input_nodes=torch.tensor([0]), batch_size=1)))
    assert batch.n_id.tolist() == [0, 1, 2] and batch.batch_size == 1
    assert torch.equal(batch.x.view(-1), batch.n_id.float())
    links = LinkLoader(data, link_sampler=sampler, edge_label_index=ei[:, :2], batch_size=2,
                       neg_sampling=NegativeSampling("binary"))
    b = next(iter(links))
    assert b.edge_label.tolist() == [1.0, 1.0, 0.0, 0.0] and b.edge_label_index.shape == (2, 4)
    with pytest.raises(ValueError, match="distinct"):
        sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=torch.tensor([1, 1])))


@pytest.mark.parametrize("options, message", [
    ({"loader": "minibatch"}, "LightGCN option loader must be one of full, neighbor, got 'minibatch'"),
    ({"loader": "neighbor", "num_neighbors": "10,0"}, "LightGCN option num_neighbors must be a non-empty list"),
    ({"loader": "neighbor", "num_neighbors": "ten"}, "LightGCN option num_neighbors must be a non-empty list"),
    ({"loader": "neighbor", "num_neighbors": [10, 10, 10]},
     "LightGCN option num_neighbors: needs one fan-out per layer (num_layers=2), got 3"),
    ({"loader": "neighbor", "num_layers": 0}, "LightGCN option loader: neighbor sampling needs num_layers >= 1"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(TrainingError) as e:
        get_spec("lightgcn").make_config(options)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_cli_bad_fanout_is_one_error_line(monkeypatch, capsys):
    from kgplatform.cli.main import main

    monkeypatch.setattr(sys, "argv", ["kgp", "train", "lightgcn", "-d", "nope", "--set", "loader=neighbor",
                                      "--set", "num_neighbors=10,-2"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.splitlines()
    assert e.value.code != 0
    assert [l for l in err if l.startswith("Error:")] == [
        "Error: LightGCN option num_neighbors must be a non-empty list of fan-outs, each -1 (all neighbours) or "
        ">= 1, e.g. 10,10, got '10,-2'"]


def test_fanout_strings_and_lists_parse_alike():
    spec = get_spec("lightgcn")
    assert spec.make_config({"loader": "neighbor", "num_neighbors": "10,5"}).num_neighbors == (10, 5)
    assert spec.make_config({"loader": "neighbor", "num_neighbors": [10.0, -1]}).num_neighbors == (10, -1)
    assert spec.make_config({"num_layers": 1, "loader": "neighbor", "num_neighbors": 7}).num_neighbors == (7,)
