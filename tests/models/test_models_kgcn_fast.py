"""KGCN's full ranking splits items into user-independent (one relation among the sampled neighbours)
and per-user ones; both halves must agree with pairwise scoring."""
import torch

from kgplatform.models.kgcn import KGCN, KGCNConfig


def test_full_scores_match_pairs_with_uniform_and_mixed_items():
    g = torch.Generator().manual_seed(0)
    # items 0..5, entities 6..9; item 0: two relations (mixed); item 1: one relation; items 2..5: no KG
    heads = torch.tensor([0, 0, 0, 1, 1])
    rels = torch.tensor([0, 1, 2, 1, 1])
    tails = torch.tensor([6, 7, 8, 7, 9])
    torch.manual_seed(0)
    m = KGCN(5, 6, 10, 3, heads, rels, tails, KGCNConfig(embedding_dim=8, neighbor_sample_size=4), g)
    uniform = (m.adj_relation[:6] == m.adj_relation[:6, :1]).all(1)
    assert not uniform.all() and uniform.any()
    m.eval()
    users = torch.arange(5)
    with torch.no_grad():
        full = m.full_scores(users)
        pairs = m.score(users, torch.arange(6).expand(5, 6))
    assert torch.allclose(full, pairs, atol=1e-5)


def test_full_scores_without_kg_are_one_matrix_product():
    torch.manual_seed(0)
    empty = torch.empty(0, dtype=torch.long)
    m = KGCN(4, 7, 7, 0, empty, empty, empty, KGCNConfig(embedding_dim=8))
    m.eval()
    with torch.no_grad():
        full = m.full_scores(torch.arange(4))
        pairs = m.score(torch.arange(4), torch.arange(7).expand(4, 7))
    assert torch.allclose(full, pairs, atol=1e-5)
