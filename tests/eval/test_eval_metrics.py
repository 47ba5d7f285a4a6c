"""Metric functions against naive per-user loops on hand-made cases."""
import math

import pytest
import torch

from kgplatform.eval.metrics import rank_counts, rank_metrics


def naive(scores, target, ks=(1, 5, 10, 20), ties="average"):
    """Per-user loop: enumerate every rank the target can take among its ties, average the metric."""
    out = {f"HR@{k}": [] for k in ks} | {f"NDCG@{k}": [] for k in (5, 10, 20)} | {"MRR": []}
    for row, t in zip(scores.tolist(), target.tolist()):
        s = row[t]
        greater = sum(1 for j, v in enumerate(row) if v > s)
        tied = sum(1 for j, v in enumerate(row) if v == s and j != t)
        if ties == "optimistic":
            ranks = [greater + 1]
        elif ties == "pessimistic":
            ranks = [greater + tied + 1]
        else:
            ranks = list(range(greater + 1, greater + tied + 2))
        for k in ks:
            out[f"HR@{k}"].append(sum(r <= k for r in ranks) / len(ranks))
        for k in (5, 10, 20):
            out[f"NDCG@{k}"].append(sum(1 / math.log2(r + 1) for r in ranks if r <= k) / len(ranks))
        out["MRR"].append(sum(1 / r for r in ranks) / len(ranks))
    return out


def metrics(scores, target, ties="average"):
    g, e = rank_counts(scores, target)
    return rank_metrics(g, e, ties=ties)


def test_hand_computed_ranks():
    # target ranks 1, 3 and 7 among 8 distinct scores
    scores = torch.tensor([[9.0, 1, 2, 3, 4, 5, 6, 7],
                           [1.0, 9, 8, 7, 2, 3, 4, 5],
                           [9.0, 8, 7, 6, 5, 4, 3, 2]])
    target = torch.tensor([0, 3, 6])  # 7.0 is 3rd in row 1; 3.0 is 7th in row 2
    m = metrics(scores, target)
    assert m["HR@1"].tolist() == [1.0, 0.0, 0.0]
    assert m["HR@5"].tolist() == [1.0, 1.0, 0.0]
    assert m["HR@10"].tolist() == [1.0, 1.0, 1.0]
    assert m["NDCG@5"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert m["NDCG@10"].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert m["MRR"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 7])


@pytest.mark.parametrize("ties,hr1,mrr", [("average", 0.5, 0.75), ("optimistic", 1.0, 1.0), ("pessimistic", 0.0, 0.5)])
def test_tie_policies(ties, hr1, mrr):
    scores = torch.tensor([[5.0, 5.0, 1.0]])  # target tied with one other at the top
    m = metrics(scores, torch.tensor([0]), ties)
    assert float(m["HR@1"]) == pytest.approx(hr1)
    assert float(m["MRR"]) == pytest.approx(mrr)


def test_constant_scorer_scores_like_random():
    scores = torch.zeros(4, 100)
    m = metrics(scores, torch.tensor([0, 5, 50, 99]))
    assert m["HR@10"].tolist() == pytest.approx([0.1] * 4)
    assert m["HR@1"].tolist() == pytest.approx([0.01] * 4)


def test_masked_items_do_not_count():
    scores = torch.tensor([[float("-inf"), float("-inf"), 1.0, 0.0]])
    m = metrics(scores, torch.tensor([2]))
    assert float(m["HR@1"]) == 1.0


@pytest.mark.parametrize("ties", ["average", "optimistic", "pessimistic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop_with_ties(ties, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (30, 40), generator=g).float()  # many ties
    target = torch.randint(0, 40, (30,), generator=g)
    got = metrics(scores, target, ties)
    want = naive(scores, target, ties=ties)
    for k, v in want.items():
        assert got[k].tolist() == pytest.approx(v, abs=1e-12), k


def test_nan_scores_raise():
    from kgplatform.errors import TrainingError

    with pytest.raises(TrainingError):
        rank_counts(torch.tensor([[float("nan"), 1.0]]), torch.tensor([1]))
