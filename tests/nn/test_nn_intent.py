"""Intent translation (eq. 8) and intent matching (eq. 10)."""
import math

import pytest
import torch

from kgplatform.nn import IntentTranslation, intent_match_score, max_cos_per_item

a = torch.tensor([1.0, 0.0])
b = torch.tensor([0.0, 1.0])


def pair(user, item):
    U = torch.stack(user)[None]
    I_ = torch.stack(item)[None]
    return U, torch.ones(1, len(user), dtype=torch.bool), I_, torch.ones(1, len(item), dtype=torch.bool)


def test_shared_intent_gives_zero_translation():
    d, has = IntentTranslation()(*pair([a], [a]))
    assert has.tolist() == [True]
    assert d.abs().max().item() == 0.0


def test_similar_pairs_dominate():
    # user {a, b}, item {a}: C = [1, 0]; alpha = softmax([10, 0]); D = [0, b - a]
    d, _ = IntentTranslation(tau=0.1)(*pair([a, b], [a]))
    w = 1 / (1 + math.exp(10))
    assert d[0].tolist() == pytest.approx((w * (b - a)).tolist(), abs=1e-7)


def test_alternative_weightings():
    d, _ = IntentTranslation(tau=0.1, weighting="dissimilar")(*pair([a, b], [a]))
    w = 1 / (1 + math.exp(-10))
    assert d[0].tolist() == pytest.approx((w * (b - a)).tolist(), abs=1e-6)
    d, _ = IntentTranslation(weighting="linear")(*pair([a, b], [a]))
    assert d[0].tolist() == pytest.approx((0.5 * (b - a)).tolist())


def test_missing_intents_flagged():
    U, um, I_, im = pair([a], [b])
    d, has = IntentTranslation()(U, um, I_, torch.zeros_like(im))
    assert has.tolist() == [False] and d.abs().max().item() == 0.0


def test_matches_explicit_double_sum():
    torch.manual_seed(0)
    U, I_ = torch.randn(3, 4, 5), torch.randn(3, 2, 5)
    um = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    im = torch.ones(3, 2, dtype=torch.bool)
    d, _ = IntentTranslation(tau=0.5)(U, um, I_, im)
    for n in range(3):
        Ut = U[n][um[n]]
        C = torch.nn.functional.cosine_similarity(Ut[:, None], I_[n][None], dim=-1)
        alpha = torch.softmax((C / 0.5).flatten(), 0).view_as(C)
        want = (alpha[..., None] * (Ut[:, None] - I_[n][None])).sum((0, 1))
        assert d[n].tolist() == pytest.approx(want.tolist(), abs=1e-5)


def test_intent_match_score_eq10():
    s = intent_match_score(*pair([a, b], [a]))
    assert s.item() == pytest.approx(0.5)  # (cos(a,a) + cos(b,a)) / 2
    s = intent_match_score(*pair([a, b], [a, b]))
    assert s.item() == pytest.approx(1.0)


def test_max_cos_per_item_matches_loop():
    torch.manual_seed(1)
    emb = torch.randn(6, 4)
    item_index = torch.tensor([0, 0, 1, 2, 2, 2])
    intent_index = torch.tensor([1, 2, 3, 0, 4, 5])
    M = max_cos_per_item(emb[[0, 3]], emb, item_index, intent_index, num_items=4)
    cos = torch.nn.functional.normalize(emb, dim=-1) @ torch.nn.functional.normalize(emb, dim=-1).t()
    for r, q in enumerate([0, 3]):
        for it, ints in enumerate([[1, 2], [3], [0, 4, 5], []]):
            want = max(cos[q, j].item() for j in ints) if ints else 0.0
            assert M[r, it].item() == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("weighting", ["similar", "dissimilar", "linear"])
@pytest.mark.parametrize("rows", [7, 100])
def test_from_table_matches_gathered_intents(weighting, rows):
    """from_table (cosines read from the table's cosine matrix, translation as a weight matrix @ table for a
    small table, a weighted embedding_bag for one of more than 16 (m + n) rows) gives the forward of the
    gathered intents, values and gradients."""
    torch.manual_seed(2)
    layer = IntentTranslation(tau=0.2, weighting=weighting)
    ui = torch.tensor([[0, 3, 5], [2, 0, 0], [1, 1, 4], [6, 2, 3]])
    um = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    ii = torch.tensor([[4, 5], [2, 6], [0, 1], [3, 3]])
    im = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0]], dtype=torch.bool)
    out = []
    for table_path in (False, True):
        tab = torch.randn(rows, 5, generator=torch.Generator().manual_seed(3)).requires_grad_()
        if table_path:
            d, has = layer.from_table(tab, ui, um, ii, im)
        else:
            d, has = layer(tab[ui], um, tab[ii], im)
        (d * torch.linspace(-1, 1, d.numel()).view_as(d)).sum().backward()
        out.append((d.detach(), has, tab.grad))
    assert out[0][1].tolist() == out[1][1].tolist() == [True, True, False, False]
    for a, b in zip(out[0], out[1]):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
