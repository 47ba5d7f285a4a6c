"""Batched evaluation under both protocols against oracles and a naive per-user loop."""
import math

import pytest
import torch

from kgplatform.data import leave_one_out, sample_negatives
from kgplatform.eval import FULL, evaluate
from kgplatform.models.base import Recommender
from kgplatform.models.bpr import BPRMF
from kgplatform.models.pop import POP
from kgplatform.data.devdata import toy_data


class Table(Recommender):
    """Scores from a fixed [num_users, num_items] table."""

    sampler = "none"

    def __init__(self, table):
        super().__init__(*table.shape)
        self.register_buffer("table", table)

    def score(self, users, items, seq=None):
        return self.table[users].gather(1, items)

    def full_scores(self, users, seq=None):
        return self.table[users].clone()


@pytest.fixture(scope="module")
def setup():
    d = toy_data(num_users=40, num_items=50, seq_len=8, seed=3)
    s = leave_one_out(d)
    return d, s, sample_negatives(s, d.checksum(), num_negatives=20, seed=0)


def test_oracle_is_perfect_even_when_history_scores_higher(setup):
    d, s, c = setup
    table = torch.zeros(d.num_users, d.num_items)
    for u in range(d.num_users):
        seq = d.sequence(u)
        table[u, seq[:-1]] = 10.0  # history ranked above everything: must be masked
        table[u, seq[-1]] = 5.0
    m = evaluate(Table(table), s, "test", candidates=c)
    assert m[FULL]["HR@1"] == 1.0 and m[FULL]["MRR"] == 1.0
    assert m["sampled20"]["NDCG@10"] == 1.0


def test_validation_item_is_masked_for_test_but_not_for_valid(setup):
    d, s, c = setup
    table = torch.zeros(d.num_users, d.num_items)
    users = s.valid_users
    table[users, s.targets("valid", users)] = 3.0
    table[s.test_users, s.targets("test")] = 2.0
    m = evaluate(Table(table), s, "test", protocols=(FULL,))
    assert m[FULL]["HR@1"] == 1.0
    m = evaluate(Table(table), s, "valid", protocols=(FULL,))
    assert m[FULL]["HR@1"] == 1.0


def test_pop_full_ranking_on_hand_data():
    from kgplatform.data.recdata import RecData

    # item 0 most popular in training, then item 1
    seqs = [[0, 1, 2, 3, 4], [0, 1, 3, 2, 1], [0, 2, 4, 0, 2]]
    d = RecData.from_sequences("h", ["a", "b", "c"], [f"i{i}" for i in range(6)], seqs)
    s = leave_one_out(d)
    pop = POP(3, 6, s.item_counts())
    assert s.item_counts().tolist() == [3, 2, 2, 1, 1, 0]
    per = evaluate(pop, s, "test", protocols=(FULL,), per_user=True)[FULL]
    # user a: history {0,1,2,3} masked, target 4 (count 1) vs item 5 (0) -> rank 1
    # user b: history {0,1,3,2} masked, target 1 is unmasked (RecBole: positive removed) -> rank 1
    # user c: history {0,2,4,0} masked; target 2 unmasked with count 2 vs items 1 (2), 3 (1), 5 (0) -> tie for 1st
    assert per["MRR"].tolist() == pytest.approx([1.0, 1.0, 0.75])
    assert per["NDCG@5"][2].item() == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_vectorised_matches_naive_loop(setup):
    d, s, c = setup
    torch.manual_seed(0)
    model = BPRMF(d.num_users, d.num_items)
    model.eval()
    got = evaluate(model, s, "test", candidates=c, batch_size=7)
    full, samp = [], []
    with torch.no_grad():
        for u in s.test_users.tolist():
            seq = d.sequence(u).tolist()
            tgt, hist = seq[-1], set(seq[:-1]) - {seq[-1]}
            sc = (model.user_emb.weight[u] @ model.item_emb.weight.t()).tolist()
            rank = 1 + sum(1 for j, v in enumerate(sc) if j not in hist and j != tgt and v > sc[tgt])
            full.append(rank)
            negs = c.negatives["test"][c.users["test"].tolist().index(u)].tolist()
            samp.append(1 + sum(1 for j in negs if sc[j] > sc[tgt]))
    for name, ranks in ((FULL, full), ("sampled20", samp)):
        assert got[name]["MRR"] == pytest.approx(sum(1 / r for r in ranks) / len(ranks), rel=1e-5)
        assert got[name]["HR@10"] == pytest.approx(sum(r <= 10 for r in ranks) / len(ranks))
        ndcg = sum(1 / math.log2(r + 1) for r in ranks if r <= 10) / len(ranks)
        assert got[name]["NDCG@10"] == pytest.approx(ndcg, rel=1e-5)


class SeqTable(Table):
    needs_sequence = True
    max_seq_len = 50


def test_recbole_convention_leaves_sequential_models_unmasked(setup):
    d, s, c = setup
    table = torch.zeros(d.num_users, d.num_items)
    for u in range(d.num_users):
        seq = d.sequence(u)
        table[u, seq[:-1]] = 10.0  # history above the target
        table[u, seq[-1]] = 5.0
    general, sequential = Table(table), SeqTable(table)
    assert evaluate(general, s, "test", protocols=(FULL,), convention="recbole")[FULL]["HR@1"] == 1.0
    unmasked = evaluate(sequential, s, "test", protocols=(FULL,), convention="recbole")[FULL]["HR@1"]
    assert unmasked == 0.0  # the history outranks the target when it is not masked
    assert evaluate(sequential, s, "test", protocols=(FULL,), convention="kgp")[FULL]["HR@1"] == 1.0
    with pytest.raises(Exception, match="convention"):
        evaluate(general, s, "test", protocols=(FULL,), convention="nope")


def test_truncated_mrr(setup):
    d, s, c = setup
    table = torch.zeros(d.num_users, d.num_items)
    m = evaluate(Table(table), s, "test", protocols=(FULL,))[FULL]
    assert m["MRR@10"] <= m["MRR"] and m["MRR@20"] <= m["MRR"] and m["MRR@10"] <= m["MRR@20"]


def test_recbole_candidate_policies(setup):
    d, s, _ = setup
    ck = d.checksum()
    target_only = sample_negatives(s, ck, num_negatives=30, seed=1, exclude="target", replacement=True)
    phase = sample_negatives(s, ck, num_negatives=30, seed=1, exclude="phase", replacement=True)
    for ph in ("valid", "test"):
        users = s.users(ph)
        tgt = s.targets(ph, users)
        assert not (target_only.negatives[ph] == tgt[:, None]).any()
        for row, u in enumerate(users.tolist()):
            hist = set(s.seq_items[s.seq_indptr[u]: s.seq_indptr[u] + int(s.history_len(ph, users[row:row + 1])) + 1]
                       .tolist())
            assert not hist & set(phase.negatives[ph][row].tolist())
    # with replacement over few free items repeats are allowed; the default never repeats
    default = sample_negatives(s, ck, num_negatives=30, seed=1)
    assert all(len(set(r)) == 30 for r in default.negatives["test"].tolist())
    assert target_only.file_name() != default.file_name()
