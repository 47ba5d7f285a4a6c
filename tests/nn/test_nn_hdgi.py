"""HDGI: sparse metapath aggregation (known answers against dense products), semantic attention, the DGI loss
falling, and inductive encoding equal to the transductive one for a node's own items."""
import torch

from kgplatform.nn.hdgi import HDGI, SemanticAttention, build_metapaths, fit_hdgi, mean_operator


def test_mean_operator_averages_neighbours_and_counts_duplicates_once():
    rows = torch.tensor([0, 0, 0, 1])
    cols = torch.tensor([1, 2, 2, 0])
    a = mean_operator(rows, cols, 3, 3).to_dense()
    assert torch.allclose(a, torch.tensor([[0, 0.5, 0.5], [1.0, 0, 0], [0, 0, 0]]))


def _toy():
    # users 0-2 took items 0-1, users 3-5 took items 2-3; entity 0 links items 0, 2 (a bridge), entity 1 links 1, 3
    users = torch.tensor([0, 0, 1, 1, 2, 3, 3, 4, 4, 5])
    items = torch.tensor([0, 1, 0, 1, 1, 2, 3, 2, 3, 3])
    ie = (torch.tensor([0, 2, 1, 3]), torch.tensor([0, 0, 1, 1]), 2)
    return users, items, ie


def test_metapaths_equal_dense_products():
    users, items, ie = _toy()
    paths = build_metapaths(6, 4, (users, items), item_entity=ie, names=("UIU", "UIEIU", "UITIU"))
    assert [p.name for p in paths] == ["UIU", "UIEIU"]  # no intents: UITIU is skipped
    x = torch.randn(6, 5)
    dense_ui = torch.zeros(6, 4)
    dense_ui[users, items] = 1
    a_ui = dense_ui / dense_ui.sum(1, keepdim=True)
    a_iu = dense_ui.t() / dense_ui.t().sum(1, keepdim=True)
    d_ie = torch.zeros(4, 2)
    d_ie[ie[0], ie[1]] = 1
    a_ie = d_ie / d_ie.sum(1, keepdim=True)
    a_ei = d_ie.t() / d_ie.t().sum(1, keepdim=True)
    assert torch.allclose(paths[0].aggregate(x), a_ui @ a_iu @ x, atol=1e-6)
    assert torch.allclose(paths[1].aggregate(x), a_ui @ a_ie @ a_ei @ a_iu @ x, atol=1e-6)


def test_semantic_attention_weights_are_a_distribution():
    att = SemanticAttention(8, 4)
    z = torch.randn(3, 10, 8)
    out, w = att(z)
    assert out.shape == (10, 8)
    assert torch.allclose(w.sum(), torch.tensor(1.0)) and bool((w > 0).all())
    assert torch.allclose(out, (w[:, None, None] * z).sum(0))


def test_dgi_loss_falls_and_inductive_encoding_matches_for_a_users_own_items():
    torch.manual_seed(0)
    users, items, ie = _toy()
    x = torch.cat([torch.randn(3, 16) + 2, torch.randn(3, 16) - 2])
    paths = build_metapaths(6, 4, (users, items), item_entity=ie)
    model = HDGI(16, 8, paths, 8, generator=torch.Generator().manual_seed(0))
    losses = fit_hdgi(model, x, epochs=60, lr=0.01, patience=60)
    assert losses[-1] < losses[0]
    model.freeze_messages(x)
    z = model.embed(x)
    # user 3 (items 2, 3) encoded from its items alone: agg(u) = mean of M(X) over u's items, the same formula
    got = model.encode_items(torch.tensor([2, 3]), torch.tensor([0, 2]))
    assert torch.allclose(got[0], z[3], atol=1e-5)
    # a node without items gets a finite vector (the zero aggregation), not NaN
    empty = model.encode_items(torch.zeros(0, dtype=torch.long), torch.tensor([0, 0]))
    assert bool(torch.isfinite(empty).all())
