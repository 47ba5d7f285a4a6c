"""SR-GNN's session graph (nodes, alias, normalised in/out adjacency) and gated layer against hand computations."""
import math

import pytest
import torch

from kgplatform.nn import GatedSessionGraphConv, session_graph


def test_session_graph_of_a_session_with_a_repeated_item():
    # session 10 -> 11 -> 12 -> 11 -> 13 (item 11 clicked twice), a repeated click 5 -> 5, an empty session
    seq = torch.tensor([[10, 11, 12, 11, 13], [5, 5, -1, -1, -1], [-1, -1, -1, -1, -1]])
    g = session_graph(seq, num_items=20)
    assert g.items.tolist() == [10, 11, 12, 13, 5]  # distinct items of each session, in item order
    assert g.batch.tolist() == [0, 0, 0, 0, 1]
    assert g.alias.tolist() == [[0, 1, 2, 1, 3], [4, 4, -1, -1, -1], [-1] * 5]
    assert g.length.tolist() == [5, 2, 0]
    assert g.last.tolist() == [3, 4, -1]
    # edges 10->11, 11->12, 12->11, 11->13 and the self-loop 5->5
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 1), (1, 2), (1, 3), (2, 1), (4, 4)]
    h = 0.5
    a_in = torch.tensor([  # row v: 1/|N_in(v)| at each u with u -> v
        [0, 0, 0, 0, 0],
        [h, 0, h, 0, 0],   # 11 <- 10, 12
        [0, 1, 0, 0, 0],   # 12 <- 11
        [0, 1, 0, 0, 0],   # 13 <- 11
        [0, 0, 0, 0, 1],   # 5 <- 5
    ])
    a_out = torch.tensor([  # row v: 1/|N_out(v)| at each u with v -> u
        [0, 1, 0, 0, 0],   # 10 -> 11
        [0, 0, h, h, 0],   # 11 -> 12, 13
        [0, 1, 0, 0, 0],   # 12 -> 11
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ])
    assert torch.equal(g.in_adjacency(), a_in)
    assert torch.equal(g.out_adjacency(), a_out)


def test_a_repeated_transition_is_one_edge():
    g = session_graph(torch.tensor([[1, 2, 1, 2]]))
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 1), (1, 0)]
    assert g.w_in.tolist() == [1.0, 1.0] and g.w_out.tolist() == [1.0, 1.0]


def test_sessions_do_not_share_nodes():
    g = session_graph(torch.tensor([[3, 4], [4, 3]]), num_items=5)
    assert g.items.tolist() == [3, 4, 3, 4]
    assert g.alias.tolist() == [[0, 1], [3, 2]]
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 1), (3, 2)]


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_layer_against_a_hand_computation():
    conv = GatedSessionGraphConv(1, steps=1)
    with torch.no_grad():
        conv.lin_in.weight.fill_(1.0)
        conv.lin_in.bias.zero_()
        conv.lin_out.weight.fill_(2.0)
        conv.lin_out.bias.fill_(0.0)
        conv.c_in.fill_(0.5)
        conv.c_out.zero_()
        conv.w_ih.copy_(torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]]))  # rows: reset, update, candidate
        conv.w_hh.copy_(torch.tensor([[1.0], [0.0], [1.0]]))
        conv.b_ih.zero_()
        conv.b_hh.zero_()
    x = torch.tensor([[1.0], [2.0], [3.0]])
    edge_index = torch.tensor([[0, 2, 1], [1, 1, 2]])  # 0 -> 1, 2 -> 1, 1 -> 2
    w_in = torch.tensor([0.5, 0.5, 1.0])  # 1 / in-degree of the target
    w_out = torch.tensor([1.0, 1.0, 1.0])  # 1 / out-degree of the source
    out = conv(x, edge_index, w_in, w_out).view(-1).tolist()
    # a_in = mean over in-neighbours of (1 * h) + 0.5: node 0 none -> 0.5; node 1 (1 + 3) / 2 + 0.5; node 2: 2 + 0.5
    # a_out = mean over out-neighbours of (2 * h): node 0 -> 1: 4; node 1 -> 2: 6; node 2 -> 1: 4
    a_in, a_out, h = [0.5, 2.5, 2.5], [4.0, 6.0, 4.0], [1.0, 2.0, 3.0]
    want = []
    for v in range(3):
        r = sig(h[v])
        z = sig(0.1 * a_in[v])
        cand = math.tanh(0.1 * a_out[v] + r * h[v])
        want.append((1 - z) * h[v] + z * cand)
    assert out == pytest.approx(want, abs=1e-6)


def test_steps_repeat_the_same_update():
    torch.manual_seed(0)
    one = GatedSessionGraphConv(4, steps=1)
    two = GatedSessionGraphConv(4, steps=2)
    two.load_state_dict(one.state_dict())
    g = session_graph(torch.tensor([[0, 1, 2, 1]]))
    x = torch.randn(g.num_nodes, 4)
    with torch.no_grad():
        once = one(x, g.edge_index, g.w_in, g.w_out)
        assert torch.allclose(two(x, g.edge_index, g.w_in, g.w_out), one(once, g.edge_index, g.w_in, g.w_out))
