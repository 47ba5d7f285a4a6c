"""TransH energy, projection and losses on hand numbers (IKGR eq. 4–7)."""
import pytest
import torch

from torch_geometric.nn.kge import KGEModel

from kgplatform.nn import TransH


def model():
    m = TransH(num_nodes=3, num_relations=1, hidden_channels=2, margin=1.0, epsilon=0.1)
    with torch.no_grad():
        m.node_emb.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]]))
        m.norm_emb.weight.copy_(torch.tensor([[2.0, 0.0]]))  # normalised to (1, 0) when used
        m.rel_emb.weight.copy_(torch.tensor([[0.0, 0.5]]))
    return m


def test_is_a_pyg_kge_model():
    assert isinstance(model(), KGEModel)


def test_projection_eq5_eq6():
    x = torch.tensor([[3.0, 4.0]])
    w = torch.tensor([[0.0, 2.0]])
    assert TransH.project(x, w).tolist() == [[3.0, 0.0]]


def test_energy_eq4_on_hand_numbers():
    m = model()
    r = torch.tensor([0])
    # h=(1,0) -> h_perp=(0,0); t=(0,1) -> t_perp=(0,1); h_perp + d - t_perp = (0, -0.5)
    assert m.energy(m.node_emb(torch.tensor([0])), r, m.node_emb(torch.tensor([1]))).item() == pytest.approx(0.25)
    # forward returns the negated energy (PyG convention: higher = more plausible)
    assert m(torch.tensor([0]), r, torch.tensor([1])).item() == pytest.approx(-0.25)
    # h=(3,4) -> (0,4); t=(0,1) -> (0,1); (0, 4 + 0.5 - 1) -> 3.5^2
    assert m(torch.tensor([2]), r, torch.tensor([1])).item() == pytest.approx(-12.25)
    # a per-triple translation replaces d_r
    e = m.energy(m.node_emb(torch.tensor([0])), r, m.node_emb(torch.tensor([1])), torch.tensor([[0.0, 1.0]]))
    assert e.item() == pytest.approx(0.0)


def test_margin_loss_eq7():
    m = model()
    pos = torch.tensor([0.25, 3.0])
    neg = torch.tensor([12.25, 1.0])
    # max(0, 0.25 + 1 - 12.25) = 0 ; max(0, 3 + 1 - 1) = 3 ; mean = 1.5
    assert m.margin_loss(pos, neg).item() == pytest.approx(1.5)


def test_constraint_loss():
    m = model()
    # entity norms^2: 1, 1, 25 -> relu(n-1): 0, 0, 24 -> mean 8
    # w=(1,0), d=(0,0.5): w.d = 0 -> orthogonal, no penalty
    assert m.constraint_loss(m.node_emb.weight).item() == pytest.approx(8.0)
    with torch.no_grad():
        m.rel_emb.weight.copy_(torch.tensor([[1.0, 0.0]]))  # parallel to w: (1)^2/1 - 0.01
    assert m.constraint_loss(m.node_emb.weight[:2]).item() == pytest.approx(0.99)


def test_corruption_keeps_heads_and_changes_tails():
    torch.manual_seed(0)
    m = TransH(100, 5, 8)
    h = torch.arange(50)
    r = torch.zeros(50, dtype=torch.long)
    t = torch.arange(50, 100)
    h2, r2, t2 = m.random_sample(h, r, t)
    assert torch.equal(h2, h)
    assert (t2 != t).any() and (r2 != r).any()


def test_training_separates_true_from_corrupted_triples():
    torch.manual_seed(0)
    n = 20
    h = torch.arange(n)
    r = torch.zeros(n, dtype=torch.long)
    t = (h + 1) % n
    m = TransH(n, 1, 16, margin=1.0)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        loss = m.loss(h, r, t)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.5
    true = m(h, r, t).mean()
    wrong = m(h, r, (h + 7) % n).mean()
    assert true > wrong


def test_energy_equals_eq4_with_both_sides_projected():
    """energy() projects h - t once (the projection is linear); it equals Eq. 4 with Eq. 5/6 applied to each side."""
    torch.manual_seed(0)
    m = TransH(num_nodes=10, num_relations=3, hidden_channels=6)
    h, t = torch.randn(20, 6), torch.randn(20, 6)
    r = torch.randint(0, 3, (20,))
    w, d = m.norm_emb(r), m.rel_emb(r)
    want = (TransH.project(h, w) + d - TransH.project(t, w)).pow(2).sum(-1)
    assert torch.allclose(m.energy(h, r, t), want, atol=1e-5)
