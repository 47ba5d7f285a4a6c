"""IKGR's batch propagation (Eq. 3 for only the nodes a step reads) against the full-graph reference: the same
losses, gradients and, after training steps, the same scores; the sampled-neighbourhood variant is exact when
the sample covers every neighbour."""
import csv
import dataclasses

import pytest
import torch

from kgplatform.data import leave_one_out
from kgplatform.data.devdata import load_recbole_atomic, toy_data
from kgplatform.models import build_model
from kgplatform.models.ikgr import IKGRConfig

CFG = IKGRConfig(embedding_dim=8, kg_batch_size=64)


@pytest.fixture(scope="module")
def toy():
    return toy_data(num_users=30, num_items=20, seq_len=6, seed=2, text_dim=12)


@pytest.fixture(scope="module")
def tiny(data_dir):
    """The tiny MovieLens fixture (KG triples) with its genres as exact intents."""
    prefix = data_dir / "movielens-100k-tiny" / "test"
    d = load_recbole_atomic(prefix, "ml-tiny")
    rows = list(csv.reader(prefix.with_suffix(".item").open(encoding="latin-1"), delimiter="\t",
                           quoting=csv.QUOTE_NONE))
    head = [h.split(":")[0] for h in rows[0]]
    ci, cc = head.index("item_id"), head.index("class")
    index = {iid: k for k, iid in enumerate(d.item_ids)}
    keys: dict[str, int] = {}
    edges = [(index[r[ci]], keys.setdefault(g, len(keys))) for r in rows[1:] if r[ci] in index for g in r[cc].split()]
    e = torch.tensor(edges, dtype=torch.long)
    return dataclasses.replace(d, intent_keys=list(keys), item_intents=e, item_intent_kind=torch.zeros(len(e), dtype=torch.long),
                               user_intents=torch.zeros(0, 2, dtype=torch.long),
                               user_intent_kind=torch.zeros(0, dtype=torch.long))


def pair(data, cfg, seed=0):
    """Two models with the same weights: full-graph propagation and ``cfg.propagation``."""
    split = leave_one_out(data)
    torch.manual_seed(seed)
    ref = build_model("ikgr", data, split, dataclasses.replace(cfg, propagation="full"))
    fast = build_model("ikgr", data, split, cfg)
    fast.load_state_dict(ref.state_dict())
    return ref, fast, split


def batches(split, n, size=64, seed=1):
    u, i = split.train_pairs()
    g = torch.Generator().manual_seed(seed)
    num_items = int(i.max()) + 1
    for _ in range(n):
        k = torch.randint(u.numel(), (size,), generator=g)
        yield {"users": u[k], "pos": i[k], "neg": torch.randint(num_items, (size,), generator=g)}


def losses_and_grads(model, batch, seed=5):
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)  # the same KG triples and corruptions
    out = model.loss(batch)
    sum(out.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in out.items()}, grads


VARIANTS = {
    "default": {},
    "no_aug": {"use_intents": False},
    "exact_only": {"related_intents": False},
    "no_int_trans": {"intent_translation": False},
    "bpr_sum": {"rec_loss": "bpr", "aggr": "sum", "act": "relu"},
    "full_softmax_2_layers": {"rec_loss": "full_softmax", "num_layers": 2},
    "no_conv_interactions": {"conv_interactions": False, "weighting": "linear"},
    "bias_pair_self": {"item_bias": True, "pair_intents_without_positive": True, "self_weight": 0.5},
    "recency_no_kg_no_user_vector": {"user_recency": 3.0, "use_kg": False, "user_embedding": False},
}


@pytest.mark.parametrize("data_name", ["toy", "tiny"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_batch_losses_and_gradients_equal_full_graph(request, data_name, variant):
    data = request.getfixturevalue(data_name)
    ref, fast, split = pair(data, dataclasses.replace(CFG, **VARIANTS[variant]))
    for b in batches(split, 2):
        lr, gr = losses_and_grads(ref, b)
        lf, gf = losses_and_grads(fast, b)
        assert lr.keys() == lf.keys() and lr
        for k in lr:
            assert lf[k] == pytest.approx(lr[k], rel=1e-5, abs=1e-6), k
        assert gr.keys() == gf.keys()
        for n in gr:
            assert torch.allclose(gf[n], gr[n], atol=1e-5, rtol=1e-4), n


def test_training_steps_give_the_same_scores(tiny):
    """Ten Adam steps on the same batches from the same weights: the batch-propagated model ranks with the
    full-graph model's scores (Eq. 9-11), to float rounding."""
    ref, fast, split = pair(tiny, CFG)
    assert ref.num_intents and ref.num_entities > ref.num_items and ref.tri_h.numel()  # intents and KG triples
    for model in (ref, fast):
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        for k, b in enumerate(batches(split, 10)):
            model.train()
            torch.manual_seed(100 + k)
            loss = sum(model.loss(b).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        model.prepare_eval()
    users = torch.arange(ref.num_users)
    with torch.no_grad():
        s_ref, s_fast = ref.full_scores(users), fast.full_scores(users)
    assert s_ref.std() > 1e-3  # a real score matrix
    assert torch.allclose(s_fast, s_ref, atol=1e-4)


def test_sampled_neighbourhoods(tiny):
    """``propagation="sampled"``: with a sample as large as every in-degree it is the exact batch computation;
    with a small one the losses are finite estimates that differ from the exact ones, and every parameter the
    exact step trains still gets a gradient."""
    ref, fast, split = pair(tiny, dataclasses.replace(CFG, propagation="sampled", neighbour_samples=10_000))
    b = next(batches(split, 1))
    lr, gr = losses_and_grads(ref, b)
    lf, gf = losses_and_grads(fast, b)
    for k in lr:
        assert lf[k] == pytest.approx(lr[k], rel=1e-5, abs=1e-6)
    small = dataclasses.replace(fast.config, neighbour_samples=2)
    fast.config = small
    ls, gs = losses_and_grads(fast, b)
    assert all(torch.isfinite(torch.tensor(v)) for v in ls.values())
    assert ls["rec"] != pytest.approx(lr["rec"], rel=1e-6)
    assert gs.keys() == gr.keys()


@pytest.mark.parametrize("bias", [False, True])
def test_softmax_logits_once_per_user_equal_per_pair_cross_entropy(toy, bias):
    """The sampled softmax computes its logits once per distinct user of the batch (users repeat within a
    batch); loss and gradients equal the cross-entropy over one row of logits per pair."""
    import torch.nn.functional as F

    split = leave_one_out(toy)
    torch.manual_seed(0)
    model = build_model("ikgr", toy, split, dataclasses.replace(CFG, item_bias=bias))
    if bias:
        torch.nn.init.normal_(model.item_bias)
    g = torch.Generator().manual_seed(4)
    users = torch.randint(5, (40,), generator=g)  # 40 pairs, at most 5 users
    pos, neg = torch.randint(20, (40,), generator=g), torch.randint(20, (40,), generator=g)
    cand = torch.unique(torch.cat([pos, neg]))
    out = []
    for per_user in (True, False):
        eu = torch.randn(5, 8, generator=torch.Generator().manual_seed(1)).requires_grad_()
        ce = torch.randn(cand.numel(), 8, generator=torch.Generator().manual_seed(2)).requires_grad_()
        if per_user:
            loss = model._rec_loss(eu[users], None, None, pos, neg, cand, ce, users)
        else:
            t = model.config.rec_temperature
            logits = F.normalize(eu[users], dim=-1) @ F.normalize(ce, dim=-1).t() / t
            if bias:
                logits = logits + model.item_bias[cand]
            loss = F.cross_entropy(logits, torch.searchsorted(cand, pos))
        loss.backward()
        out.append((loss.detach(), eu.grad, ce.grad))
    for a, b in zip(*out):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
