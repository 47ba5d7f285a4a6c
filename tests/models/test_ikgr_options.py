"""IKGR's weak-point options (``benchmarks/ikgr_variants.py``): known answers for each, on the toy data."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from kgplatform.data import leave_one_out, training_view
from kgplatform.data.intent_graph import CONSUMES, build_intent_graph
from kgplatform.nn import KGConv

from test_models_ikgr import CFG, build, toy  # noqa: F401  (the toy fixture; tests/models is on the path)


def test_user_recency_weighs_a_users_latest_items_most(toy):
    """Half-life h: the user's consumes in-edges carry weights 0.5^(age/h), scaled to sum to the user's count (the
    mean's total share is unchanged); every other edge keeps weight 1; off, there are no weights."""
    train = training_view(toy, leave_one_out(toy))
    assert build_intent_graph(train).edge_weight is None
    g = build_intent_graph(train, user_recency=2.0)
    w, (src, dst), typ = g.edge_weight, g.edge_index, g.edge_type
    R = g.num_relations
    into_user = (dst < g.num_users) & (typ == g.num_kg_relations + CONSUMES + R)
    assert torch.all(w[~into_user] == 1)
    u = 3
    seq = train.sequence(u)
    mine = torch.nonzero(into_user & (dst == u)).squeeze(1)
    items = src[mine] - g.ent_off
    assert items.tolist() == seq.tolist()  # in the user's order, oldest first
    n = seq.numel()
    expect = torch.pow(0.5, (n - 1 - torch.arange(n)).float() / 2.0)
    assert torch.allclose(w[mine], expect * n / expect.sum())
    assert float(w[mine].sum()) == pytest.approx(n)


def test_self_weight_scales_the_node_term():
    """Eq. 3 with ``self_weight`` s: W(s·h_v + mean(h_u + e_r)) + b, the same through the prepared operators, their
    row cut and the plain message passing path."""
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    ei = torch.tensor([[1, 2, 3], [0, 0, 1]])
    et = torch.tensor([0, 1, 0])
    conv = KGConv(3, 2, 2, act="none")
    s = 0.25
    prepared = KGConv.prepare(ei, et, 4, 2, "mean", self_weight=s)
    out = conv(x, prepared=prepared)
    agg0 = ((x[1] + conv.rel_emb.weight[0]) + (x[2] + conv.rel_emb.weight[1])) / 2
    assert torch.allclose(out[0], conv.lin(s * x[0] + agg0), atol=1e-6)
    assert torch.allclose(out[2], conv.lin(s * x[2]), atol=1e-6)  # no in-edges: the node term alone
    cut = conv(x, prepared=prepared, index=torch.tensor([0, 2]))
    assert torch.allclose(cut, out[[0, 2]], atol=1e-6)


def test_pair_without_positive_drops_the_positives_intents_from_the_users_set(toy):
    """The shortcut: a user's inherited set holds the training positive's own intents. With
    ``pair_intents_without_positive`` Eq. 8 for a pair (u, i) never matches an intent the positive supplied: a user
    whose only intents are the positive's gets the free translation, and so does that pair's negative."""
    m = build(toy, dataclasses.replace(CFG, pair_intents_without_positive=True)).eval()
    plain = build(toy, CFG).eval()
    sets, isets = m.user_sets, m.item_sets
    train = training_view(toy, leave_one_out(toy))
    found = None
    for u in range(m.num_users):
        for i in train.sequence(u).tolist():
            us = set(t for t in sets[u].tolist() if t >= 0)
            if us and us <= set(t for t in isets[i].tolist() if t >= 0):
                found = (u, i)
                break
        if found:
            break
    assert found, "the toy data has a user whose intents all come from one item"
    u, i = (torch.tensor([v]) for v in found)
    free = m.transh.rel_emb.weight[m.rel_base + CONSUMES]
    with torch.no_grad():
        e = m.propagate()
        assert torch.allclose(m.consumes_translation(e, u, i, i)[0], free)
        assert not torch.allclose(plain.consumes_translation(plain.propagate(), u, i, i)[0], free)


def test_item_bias_adds_a_learned_popularity_term_and_claims_no_decomposition(toy):
    """score = cos(e_u, e_i) + τ·b_i (τ the loss's temperature; b starts at 0, so an untrained model ranks as
    without it); no Eq. 9-11 decomposition is written back for such a run."""
    m = build(toy, dataclasses.replace(CFG, item_bias=True, tune_lambda=False, lam=0.0)).eval()
    ref = build(toy, dataclasses.replace(CFG, tune_lambda=False, lam=0.0)).eval()
    users = torch.arange(5)
    with torch.no_grad():
        m.prepare_eval(), ref.prepare_eval()
        assert torch.allclose(m.full_scores(users), ref.full_scores(users))
        m.item_bias.copy_(torch.linspace(-1, 1, m.num_items))
        got = m.full_scores(users)
        e = m.propagate()
        cos = F.normalize(e[users + m.user_off], dim=-1) @ F.normalize(m.item_embeddings(), dim=-1).t()
        assert torch.allclose(got, cos + m.config.rec_temperature * m.item_bias, atol=1e-6)
        items = torch.tensor([[0, 5, 19]] * 5)
        assert torch.allclose(m.score(users, items), got.gather(1, items), atol=1e-6)
    assert m.score_decomposition() is None and ref.score_decomposition() is not None


def test_no_external_kg_and_no_user_vector(toy):
    """``use_kg=False`` leaves the dataset's KG triples out of the graph (intent edges stay); ``user_embedding=False``
    zeroes the users' learned input vectors (users are their items, intents and text)."""
    train = training_view(toy, leave_one_out(toy))
    with_kg, no_kg = build_intent_graph(train), build_intent_graph(train, use_kg=False)
    assert train.has_kg and no_kg.tri_h.numel() == with_kg.tri_h.numel() - train.kg_heads.numel()
    m = build(toy, dataclasses.replace(CFG, user_embedding=False))
    with torch.no_grad():
        x = m.input_features()
        proj = m.text_proj["user"](m.user_text) if "user" in m.text_proj else torch.zeros(m.num_users, 8)
    assert torch.allclose(x[m.user_off : m.user_off + m.num_users], proj, atol=1e-6)


def test_self_weight_reaches_the_inductive_vectors_and_unreproducible_terms_give_none(toy):
    """Cold start's eq. 3 for a training node equals the model's with ``self_weight``; runs whose scores carry an
    item bias or recency weights save no inductive state (cold start would rank on different terms)."""
    from kgplatform.models.ikgr import embed_new_node

    m = build(toy, dataclasses.replace(CFG, self_weight=0.3)).eval()
    state = m.inductive_state()
    with torch.no_grad():
        e = m.propagate()
    x0, src, dst, typ = state["x0"], m.edge_index[0], m.edge_index[1], m.edge_type
    v = m.ent_off + 7
    nb = [(int(t), x0[int(u)]) for u, t in zip(src[dst == v].tolist(), typ[dst == v].tolist())]
    assert torch.allclose(embed_new_node(state, nb, h_self=x0[v]), e[v], atol=1e-5)
    assert build(toy, dataclasses.replace(CFG, item_bias=True)).inductive_state() is None
    assert build(toy, dataclasses.replace(CFG, user_recency=5.0)).inductive_state() is None


def test_merge_similar_joins_near_duplicates_by_single_linkage():
    from kgplatform.data.intent_graph import merge_similar

    v = torch.tensor([[1.0, 0.0, 0.0], [0.99, 0.14, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.96, 0.28, 0.0]])
    # cos(0,1) 0.99, cos(1,4) 0.99, cos(0,4) 0.96: 0, 1 and 4 join at 0.97 through 1 (single linkage)
    assert merge_similar(v, 0.97).tolist() == [0, 0, 2, 3, 0]
    assert merge_similar(v, 0.995).tolist() == [0, 1, 2, 3, 4]
    assert merge_similar(v, 0.97, block=2).tolist() == [0, 0, 2, 3, 0]  # blockwise gives the same groups


def test_merge_intents_links_the_items_of_near_duplicate_intents(toy):
    """Two intents with the same name vector become one: an item that had either now has the representative,
    once, exact where it had an exact one; ``min_intent_items`` then counts the merged intent's items."""
    train = training_view(toy, leave_one_out(toy))
    ii = train.item_intents
    a, b = int(ii[0, 1]), next(int(t) for t in ii[:, 1].tolist() if t != int(ii[0, 1]))
    text = train.intent_text_emb.clone()
    text[b] = text[a]  # b is a's near-duplicate (cosine 1)
    train = dataclasses.replace(train, intent_text_emb=text)
    lo, hi = min(a, b), max(a, b)
    g0 = build_intent_graph(train)
    g1 = build_intent_graph(train, merge_intents=0.999)
    sets0 = [set(r[r >= 0].tolist()) for r in g0.item_sets]
    sets1 = [set(r[r >= 0].tolist()) for r in g1.item_sets]
    for s0, s1 in zip(sets0, sets1):
        want = {lo if t in (a, b) else t for t in s0}
        assert s1 == want and hi not in s1
    items_with = sum(1 for s in sets1 if lo in s)
    assert items_with == sum(1 for s in sets0 if a in s or b in s) >= 2
    # without the merge, a and b alone may fall under min_intent_items; merged they hold all those items
    g2 = build_intent_graph(train, merge_intents=0.999, min_intent_items=items_with)
    assert sum(1 for r in g2.item_sets if lo in set(r[r >= 0].tolist())) == items_with
    with pytest.raises(Exception, match="merge_intents"):
        build(toy, dataclasses.replace(CFG, merge_intents=1.5))


def test_intent_map_says_what_each_intent_became_and_cold_start_maps_the_same_way(toy):
    """The graph's ``intent_map`` sends each intent to its merged group's representative, or to -1 where
    ``min_intent_items`` dropped it; the run's inductive state carries it, and cold start's
    :func:`kgplatform.coldstart.training_intent` maps a stored intent (known, or new and close to a known
    one) to the node training made of it."""
    from kgplatform.coldstart import training_intent

    train = training_view(toy, leave_one_out(toy))
    ii = train.item_intents
    a, b = int(ii[0, 1]), next(int(t) for t in ii[:, 1].tolist() if t != int(ii[0, 1]))
    text = train.intent_text_emb.clone()
    text[b] = text[a]
    train = dataclasses.replace(train, intent_text_emb=text)
    lo, hi = min(a, b), max(a, b)
    assert build_intent_graph(train).intent_map is None  # every intent is itself
    g = build_intent_graph(train, merge_intents=0.999)
    assert g.intent_map[hi] == lo and g.intent_map[lo] == lo
    assert g.intent_map.tolist() == [lo if t == hi else t for t in range(train.num_intents)]
    g2 = build_intent_graph(train, merge_intents=0.999, min_intent_items=2)
    kept = {int(t) for t in g2.item_sets[g2.item_sets >= 0].tolist()}
    for t in range(train.num_intents):
        m = int(g2.intent_map[t])
        assert (m == -1) == (g.intent_map[t].item() not in kept), t
        assert m in (-1, int(g.intent_map[t]))

    model = IKGR_from(train, merge_intents=0.999, min_intent_items=2)
    state = model.inductive_state()
    assert torch.equal(state["intent_map"], g2.intent_map) and state["intent_text"].shape == text.shape
    index = {f"k{t}": t for t in range(train.num_intents)}
    assert training_intent(state, index, f"k{hi}", None) == ((lo, False) if lo in kept else (None, False))
    dropped = [t for t in range(train.num_intents) if int(g2.intent_map[t]) == -1]
    if dropped:
        assert training_intent(state, index, f"k{dropped[0]}", None) == (None, False)
    # a new intent: joins the known one whose name it nearly repeats; else, under min_intent_items 2, it would
    # hold one item (the new one) and is dropped as training drops such intents
    near = text[lo] + 1e-4
    assert training_intent(state, index, "new", near.tolist()) == ((lo, False) if lo in kept else (None, False))
    far = torch.zeros_like(text[0])
    far[0] = 1.0  # near no known intent's name
    assert float((F.normalize(text, dim=1) @ far).max()) < 0.999
    far = far.tolist()
    assert training_intent(state, index, "new", far) == (None, False)
    plain = IKGR_from(train).inductive_state()
    assert training_intent(plain, index, "new", far) == (None, True)  # embedded on its own, as before
    assert training_intent(plain, index, f"k{hi}", None) == (hi, False)


def IKGR_from(train, **options):
    from kgplatform.models.ikgr import IKGR

    return IKGR.from_training_view(train, dataclasses.replace(CFG, **options))
