"""IKGR: the Table 3 ablation switches change the computation; Eq. 11 scoring; no leakage."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from kgplatform.data import leave_one_out
from kgplatform.models import build_model
from kgplatform.data.intent_graph import CONSUMES, HAS_INHERITED, SAT_RELATED
from kgplatform.models.ikgr import IKGRConfig
from kgplatform.nn import intent_match_score
from kgplatform.data.recdata import RecData
from kgplatform.data.devdata import toy_data

CFG = IKGRConfig(embedding_dim=8, kg_batch_size=32)


@pytest.fixture(scope="module")
def toy():
    return toy_data(num_users=30, num_items=20, seq_len=6, seed=2, text_dim=12)


def build(toy, cfg, seed=0):
    torch.manual_seed(seed)
    return build_model("ikgr", toy, leave_one_out(toy), cfg)


def batch(toy):
    s = leave_one_out(toy)
    u, i = s.train_pairs()
    return {"users": u[:16], "pos": i[:16], "neg": (i[:16] + 3) % toy.num_items}


def test_no_aug_removes_intent_nodes(toy):
    full, no_aug = build(toy, CFG), build(toy, CFG.ablation("no_aug"))
    assert full.num_intents == 4 and no_aug.num_intents == 0
    assert (full.tri_r >= full.rel_base + 1).any()
    assert not (no_aug.tri_r >= no_aug.rel_base + 1).any()  # only KG triples left
    assert no_aug.eval_grid() == {}
    assert no_aug.transh.node_emb.num_embeddings == full.transh.node_emb.num_embeddings - 4


def test_exact_only_drops_related_edges(toy):
    full, exact = build(toy, CFG), build(toy, CFG.ablation("exact_only"))
    assert (full.tri_r == full.rel_base + SAT_RELATED).any()
    assert not (exact.tri_r == exact.rel_base + SAT_RELATED).any()
    assert exact.edge_index.shape[1] < full.edge_index.shape[1]


def test_no_intent_scoring_is_plain_cosine(toy):
    m = build(toy, CFG.ablation("no_int_scoring")).eval()
    m.prepare_eval()
    users = torch.arange(5)
    with torch.no_grad():
        e = m.propagate()
        cos = F.normalize(e[users], dim=-1) @ F.normalize(e[m.ent_off:m.ent_off + m.num_items], dim=-1).t()
        assert torch.allclose(m.full_scores(users), cos, atol=1e-6)


def test_eq11_hybrid_score(toy):
    m = build(toy, CFG).eval()
    m.set_eval_param("lam", 0.3)
    m.prepare_eval()
    users = torch.arange(6)
    with torch.no_grad():
        e = m.propagate()
        cos = F.normalize(e[users], dim=-1) @ F.normalize(e[m.ent_off:m.ent_off + m.num_items], dim=-1).t()
        ie = e[m.int_off:m.int_off + m.num_intents]
        naive = torch.zeros_like(cos)
        for r, u in enumerate(users.tolist()):
            us = m.user_sets[u]
            for i in range(m.num_items):
                its = m.item_sets[i]
                naive[r, i] = intent_match_score(ie[us.clamp(min=0)][None], (us >= 0)[None],
                                                 ie[its.clamp(min=0)][None], (its >= 0)[None])[0]
        assert torch.allclose(m.full_scores(users), 0.7 * cos + 0.3 * naive, atol=1e-5)
        # the per-batch path (no cached intent matrix) agrees
        m._int_cache = None
        assert torch.allclose(m.full_scores(users), 0.7 * cos + 0.3 * naive, atol=1e-5)


def test_no_intent_translation_uses_the_free_vector(toy):
    full, no_tr = build(toy, CFG), build(toy, CFG.ablation("no_int_trans"))
    b = batch(toy)
    with torch.no_grad():
        d_full = full.consumes_translation(full.propagate(), b["users"], b["pos"])
        d_free = no_tr.consumes_translation(no_tr.propagate(), b["users"], b["pos"])
    free = no_tr.transh.rel_emb.weight[no_tr.rel_base + CONSUMES]
    assert torch.allclose(d_free, free.expand_as(d_free))
    assert not torch.allclose(d_full, full.transh.rel_emb.weight[full.rel_base + CONSUMES].expand_as(d_full))


@pytest.mark.parametrize("ablation", ["no_aug", "exact_only", "no_int_trans"])
def test_ablations_change_the_loss(toy, ablation):
    b = batch(toy)
    torch.manual_seed(5)
    base = {k: v.item() for k, v in build(toy, CFG).loss(b).items()}
    torch.manual_seed(5)
    other = {k: v.item() for k, v in build(toy, CFG.ablation(ablation)).loss(b).items()}
    assert base != other


def test_named_losses(toy):
    losses = build(toy, CFG).loss(batch(toy))
    assert set(losses) == {"rec", "kg", "norm"}
    assert set(build(toy, dataclasses.replace(CFG, rec_loss="none")).loss(batch(toy))) == {"kg", "norm"}


def test_text_features_feed_the_input(toy):
    m = build(toy, CFG)
    assert set(m.text_proj) == {"item", "intent"}
    x = m.input_features()
    with torch.no_grad():
        m.text_proj["item"].weight.zero_()
    assert not torch.allclose(x, m.input_features())


def test_inherited_user_intents_come_from_training_items_only():
    # item 0 -> intent 0, item 1 -> intent 1, item 2 -> intent 2; user's test item is 2
    d = RecData.from_sequences("l", ["u"], ["a", "b", "c", "d"], [[0, 3, 1, 2]], intent_keys=["x", "y", "z"],
                               item_intents=[(0, 0, 0), (1, 1, 0), (2, 2, 0)])
    m = build_model("ikgr", d, leave_one_out(d), CFG)
    assert set(m.user_sets[0][m.user_sets[0] >= 0].tolist()) == {0}
    inh = m.tri_r == m.rel_base + HAS_INHERITED
    assert (m.tri_t[inh] - m.int_off).tolist() == [0]


def test_min_intent_items_drops_intents_no_other_item_shares():
    from kgplatform.models.ikgr import IKGR

    # intent 0: items 0 and 1; intent 1: item 2 only; intent 2: item 0 only (related)
    from kgplatform.data import training_view

    ii = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 1, 0], [0, 2, 1]])
    ui = torch.tensor([[0, 1, 0], [1, 0, 0]])
    d = RecData.from_sequences("t", ["u0", "u1", "u2"], ["a", "b", "c", "d"], [[0], [1], [2]],
                               intent_keys=["x", "y", "z"], item_intents=ii, user_intents=ui)
    train = training_view(d)
    keep_all = IKGR.from_training_view(train, dataclasses.replace(CFG, inherit_user_intents=False))
    shared = IKGR.from_training_view(train, dataclasses.replace(CFG, inherit_user_intents=False, min_intent_items=2))
    intent_tails = lambda m: sorted((m.tri_t[m.tri_t >= m.int_off] - m.int_off).tolist())  # noqa: E731
    assert intent_tails(keep_all) == [0, 0, 0, 1, 1, 2]
    assert intent_tails(shared) == [0, 0, 0]  # both items' edges and user 1's edge to intent 0
    assert (shared.item_sets[2] < 0).all() and (shared.user_sets[0] < 0).all()
    assert shared.item_sets[0].tolist()[:1] == [0]


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_score_terms_sum_to_the_model_score(toy, lam):
    """The decomposition ``kgp explain`` prints, computed from what write-back stores, is the ranking score."""
    from kgplatform.models.ikgr import score_terms

    m = build(toy, CFG).eval()
    m.set_eval_param("lam", lam)
    m.prepare_eval()
    dec = m.score_decomposition()
    assert dec["kind"] == "ikgr" and dec["lam"] == lam
    users = torch.arange(8)
    with torch.no_grad():
        full = m.full_scores(users)
        U, I, T = m.user_embeddings(users), m.item_embeddings(), dec["intent_vectors"]
    seen_intent_term = False
    for r, u in enumerate(users.tolist()):
        ui = [(f"t{t}", T[t].tolist()) for t in dec["user_sets"][u].tolist() if t >= 0]
        for i in range(m.num_items):
            ii = [(f"t{t}", T[t].tolist()) for t in dec["item_sets"][i].tolist() if t >= 0]
            terms = score_terms(U[r].tolist(), I[i].tolist(), lam, ui, ii)
            assert sum(t["value"] for t in terms) == pytest.approx(float(full[r, i]), abs=1e-5)
            intent = [t for t in terms if t["name"] == "intent match"]
            assert bool(intent) == bool(lam and ui)
            seen_intent_term |= any(t["value"] != 0 for t in intent)
    assert seen_intent_term == bool(lam)


def test_score_terms_raise_exactly_the_pairs_that_share_an_intent():
    """Known answer on a toy intent graph: orthonormal intents, so only a shared intent adds to the score,
    by exactly λ / |I_u| per shared intent, and the term names the shared pair."""
    from kgplatform.models.ikgr import score_terms

    eye = torch.eye(4).tolist()
    intents = {name: eye[k] for k, name in enumerate(["thriller", "romance", "heist", "musical"])}
    user = [("thriller", intents["thriller"]), ("heist", intents["heist"])]
    lam, u_vec, i_vec = 0.4, [1.0, 2.0, 0.0], [2.0, 1.0, 1.0]
    base = (1 - lam) * (4.0 / (5 ** 0.5 * 6 ** 0.5))
    items = {"both": ["thriller", "heist"], "one": ["heist", "musical"], "none": ["romance", "musical"], "empty": []}
    want = {"both": 2, "one": 1, "none": 0, "empty": 0}
    for item, names in items.items():
        terms = score_terms(u_vec, i_vec, lam, user, [(n, intents[n]) for n in names])
        assert sum(t["value"] for t in terms) == pytest.approx(base + lam / 2 * want[item])
        shared = {(t["user_intent"], t["item_intent"]) for t in terms if t["name"] == "intent match" and t["value"]}
        assert shared == {(n, n) for n in names if n in ("thriller", "heist")}


def test_embed_new_node_is_eq3_for_a_training_node(toy):
    """Given a training node's own input features and its true in-neighbours, the inductive Eq. 3 gives exactly
    the model's vector for it; with the node's text only (no learned vector) it gives a different, finite one."""
    from kgplatform.models.ikgr import embed_new_node

    m = build(toy, CFG).eval()
    state = m.inductive_state()
    with torch.no_grad():
        e = m.propagate()
    x0, src, dst, typ = state["x0"], m.edge_index[0], m.edge_index[1], m.edge_type
    for v in [m.ent_off + 0, m.ent_off + 7, m.user_off + 3, m.int_off + 1]:
        nb = [(int(t), x0[int(u)]) for u, t in zip(src[dst == v].tolist(), typ[dst == v].tolist())]
        assert nb
        assert torch.allclose(embed_new_node(state, nb, h_self=x0[v]), e[v], atol=1e-5)
    item = 4
    nb = [(int(t), x0[int(u)]) for u, t in zip(src[dst == m.ent_off + item].tolist(), typ[dst == m.ent_off + item].tolist())]
    cold = embed_new_node(state, nb, text=toy.item_text_emb[item], kind="item")
    assert torch.isfinite(cold).all() and not torch.allclose(cold, e[m.ent_off + item])
    assert build(toy, dataclasses.replace(CFG, num_layers=2)).inductive_state() is None


def test_new_user_inputs_rebuild_a_training_users_set_and_vector(toy):
    """A training user fed to the new-user path (their training items, profile intents, items' intent sets)
    gets the model's own intent set and, with their own input features, exactly the model's vector."""
    from kgplatform.data.intent_graph import CONSUMES
    from kgplatform.models.ikgr import embed_new_node, new_user_inputs

    m = build(toy, CFG).eval()
    state = m.inductive_state()
    with torch.no_grad():
        e = m.propagate()
    src, dst, typ = m.edge_index[0], m.edge_index[1], m.edge_type
    checked = 0
    for u in range(8):
        taken = (dst[(src == m.user_off + u) & (typ == m.rel_base + CONSUMES)] - m.ent_off).tolist()
        rows = toy.user_intents[:, 0] == u
        profile = [(int(t), bool(k)) for t, k in zip(toy.user_intents[rows, 1].tolist(),
                                                      toy.user_intent_kind[rows].tolist())]
        sets_of = [[t for t in m.item_sets[i].tolist() if t >= 0] for i in taken]
        nb, sets = new_user_inputs(state, taken, profile, sets_of)
        assert set(sets) == {t for t in m.user_sets[u].tolist() if t >= 0}
        assert torch.allclose(embed_new_node(state, nb, h_self=state["x0"][m.user_off + u]), e[m.user_off + u],
                              atol=1e-5)
        checked += bool(sets)
    assert checked
