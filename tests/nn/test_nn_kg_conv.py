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


@pytest.mark.parametrize("aggr", ["mean", "sum"])
@pytest.mark.parametrize("prepared", [False, True])
def test_index_gives_the_full_output_rows_and_gradients(aggr, prepared):
    """``index``: the rows of the full output, and (with prepared operators: cut rows of A and C, the
    transpose of the cut for the backward pass) the gradients of a loss on those rows."""
    torch.manual_seed(3)
    conv = KGConv(8, 4, num_relations=3, aggr=aggr)
    ei = torch.randint(0, 40, (2, 200))
    et = torch.randint(0, 3, (200,))
    kw = {"prepared": KGConv.prepare(ei, et, 40, 3, aggr)} if prepared else {"edge_index": ei, "edge_type": et}
    index = torch.tensor([0, 7, 8, 21, 39])
    weight = torch.linspace(-1, 1, index.numel() * 4).view(index.numel(), 4)
    grads = []
    for part in (True, False):
        torch.manual_seed(4)
        xx = torch.randn(40, 8, requires_grad=True)
        conv.zero_grad()
        out = conv(xx, index=index, **kw) if part else conv(xx, **kw)[index]
        assert out.shape == (5, 4)
        (out * weight).sum().backward()
        grads.append((out.detach(), xx.grad.clone(), conv.rel_emb.weight.grad.clone(), conv.lin.weight.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)
    assert (grads[0][1].abs().sum(1) > 0).sum() < 40  # only the cut rows' sources (and themselves) get a gradient


def test_prepared_rows_cut_and_transpose():
    """PreparedGraph.rows: the cut is the rows of A + I (the node's own vector as one more entry) as a CSR
    matrix, and of C; its transpose, selected without a sort, equals the dense transpose."""
    torch.manual_seed(5)
    ei = torch.randint(0, 30, (2, 120))
    et = torch.randint(0, 4, (120,))
    g = KGConv.prepare(ei, et, 30, 4)
    index = torch.tensor([2, 3, 11, 29])
    cut = g.rows(index)
    want = (g.A.to_dense() + torch.eye(30))[index]
    assert torch.allclose(cut.A_self.to_dense(), want)
    assert torch.allclose(cut.C.to_dense(), g.C.to_dense()[index])
    assert torch.allclose(cut.transpose().to_dense(), want.t())
    empty = g.rows(torch.tensor([], dtype=torch.long))
    assert empty.A_self.shape == (0, 30) and empty.transpose().shape == (30, 0)


def test_sampled_rows_are_unbiased_and_exact_for_small_degrees():
    """rows(index, sample=k): rows with at most k entries are exact; larger rows keep k entries (plus the
    identity) whose weights make an unbiased estimate: the mean over many draws approaches the exact rows;
    its transpose (by sorting) matches the dense transpose."""
    torch.manual_seed(6)
    ei = torch.cat([torch.randint(0, 30, (2, 100)), torch.stack([torch.arange(30), torch.zeros(30, dtype=torch.long)])], 1)
    et = torch.randint(0, 4, (ei.shape[1],))
    for aggr in ("mean", "sum"):
        g = KGConv.prepare(ei, et, 30, 4, aggr)
        dense = g.A.to_dense() + torch.eye(30)
        index = torch.tensor([0, 3, 11, 29])  # node 0 has ~33 in-neighbours
        deg = (g.A.to_dense() != 0).sum(1)
        cut = g.rows(index, sample=4)
        got = cut.A_self.to_dense()
        assert torch.allclose(cut.transpose().to_dense(), got.t())
        assert torch.allclose(cut.C.to_dense(), g.C.to_dense()[index])
        small = deg[index] <= 4
        assert torch.allclose(got[small], dense[index][small])
        assert ((got[~small] != 0).sum(1) <= 5).all()
        mean = sum(g.rows(index, sample=4).A_self.to_dense() for _ in range(1500)) / 1500
        assert torch.allclose(mean.sum(1), dense[index].sum(1), rtol=0.05)
        assert torch.allclose(mean, dense[index], atol=0.25 * dense[index].abs().max())


def test_sampled_forward_with_a_large_sample_is_exact():
    torch.manual_seed(7)
    conv = KGConv(8, 4, num_relations=3)
    ei = torch.randint(0, 40, (2, 200))
    et = torch.randint(0, 3, (200,))
    g = KGConv.prepare(ei, et, 40, 3)
    xx = torch.randn(40, 8)
    index = torch.tensor([1, 5, 30])
    assert torch.allclose(conv(xx, prepared=g, index=index, sample=1000), conv(xx, prepared=g)[index], atol=1e-6)
