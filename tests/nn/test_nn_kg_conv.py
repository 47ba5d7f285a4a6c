"""KG convolution (IKGR eq. 3) against a hand computation."""
import pytest
import torch

from kgplatform.nn import KGConv


def layer(aggr):
    conv = KGConv(2, 2, num_relations=2, aggr=aggr, act="none")
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(2))
        conv.lin.bias.zero_()
        conv.rel_emb.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return conv


x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
# edges 1 -> 0 (relation 0), 2 -> 0 (relation 1); node 1 and 2 receive nothing
edge_index = torch.tensor([[1, 2], [0, 0]])
edge_type = torch.tensor([0, 1])


def test_mean_aggregation():
    out = layer("mean")(x, edge_index, edge_type)
    # node 0: 0 + mean((1,2)+(1,0), (3,4)+(0,1)) = mean((2,2), (3,5)) = (2.5, 3.5)
    assert out[0].tolist() == pytest.approx([2.5, 3.5])
    assert out[1].tolist() == pytest.approx([1.0, 2.0])  # no neighbours: W h_v + b


def test_sum_aggregation():
    out = layer("sum")(x, edge_index, edge_type)
    assert out[0].tolist() == pytest.approx([5.0, 7.0])


def test_activation_weight_and_bias():
    conv = layer("mean")
    conv.act_name = "tanh"
    with torch.no_grad():
        conv.lin.weight.mul_(0.1)
        conv.lin.bias.fill_(0.5)
    out = conv(x, edge_index, edge_type)
    assert out[0].tolist() == pytest.approx(torch.tanh(torch.tensor([0.75, 0.85])).tolist())


def test_shapes_and_gradients():
    conv = KGConv(8, 4, num_relations=3)
    xx = torch.randn(10, 8, requires_grad=True)
    ei = torch.randint(0, 10, (2, 30))
    et = torch.randint(0, 3, (30,))
    out = conv(xx, ei, et)
    assert out.shape == (10, 4)
    out.sum().backward()
    assert xx.grad is not None and conv.rel_emb.weight.grad is not None


@pytest.mark.parametrize("aggr", ["mean", "sum"])
def test_prepared_sparse_path_matches_message_passing(aggr):
    torch.manual_seed(0)
    conv = KGConv(8, 8, num_relations=4, aggr=aggr)
    xx = torch.randn(50, 8)
    ei = torch.randint(0, 50, (2, 300))
    et = torch.randint(0, 4, (300,))
    ref = conv(xx, ei, et)
    fast = conv(xx, prepared=KGConv.prepare(ei, et, 50, 4, aggr))
    assert torch.allclose(ref, fast, atol=1e-5)
