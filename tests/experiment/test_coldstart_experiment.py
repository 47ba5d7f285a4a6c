"""The cold-start measurement: held-out items leave nothing behind in the training data, and the experiment
runs end to end with intervals (real PyG, toy data)."""
from __future__ import annotations

import numpy as np
import pytest

from kgplatform.data.devdata import toy_data
from kgplatform.errors import ConfigError
from kgplatform.experiment.coldstart import cold_start_experiment, drop_items, ikgr_scores


@pytest.fixture(scope="module")
def toy():
    return toy_data(num_users=40, num_items=30, seq_len=8, seed=3, text_dim=12)


def test_drop_items_leaves_no_trace_of_the_cold_items(toy):
    cold = np.array([1, 5, 7])
    warm = drop_items(toy, cold)
    assert warm.num_items == toy.num_items - 3
    assert set(warm.item_ids) == set(toy.item_ids) - {toy.item_ids[i] for i in cold}
    kept = sum(int((~np.isin(toy.sequence(u).numpy(), cold)).sum()) for u in range(toy.num_users))
    assert warm.num_interactions == kept
    for u in range(toy.num_users):  # the same interactions, renumbered, in the same order
        old = [toy.item_ids[i] for i in toy.sequence(u).tolist() if i not in cold]
        assert [warm.item_ids[i] for i in warm.sequence(u).tolist()] == old
    if toy.has_kg:
        assert warm.num_entities == toy.num_entities - 3
        assert int(warm.kg_heads.max()) < warm.num_entities and int(warm.kg_tails.max()) < warm.num_entities
    if warm.item_intents is not None:
        assert int(warm.item_intents[:, 0].max()) < warm.num_items
    assert warm.item_text_emb.shape[0] == warm.num_items
    assert (warm.item_text_emb[0] == toy.item_text_emb[0]).all() and (warm.item_text_emb[1] == toy.item_text_emb[2]).all()


def test_ikgr_scores_known_answer():
    U = np.array([[1.0, 0.0], [0.0, 2.0]])
    V = np.array([[3.0, 0.0], [1.0, 1.0]])
    A = [np.array([[1.0, 0.0]]), np.zeros((0, 2))]
    B = [np.array([[0.0, 1.0], [1.0, 0.0]]), np.zeros((0, 2))]
    s = ikgr_scores(U, A, V, B, 0.5)
    assert s[0, 0] == pytest.approx(0.5 * 1.0 + 0.5 * 1.0)  # cos 1, intent match 1
    assert s[1, 0] == pytest.approx(0.5 * 0.0)  # user without intents: only the embedding term
    assert s[0, 1] == pytest.approx(0.5 * 2 ** -0.5)  # item without intents


def test_the_experiment_runs_with_intervals(tmp_path):
    toy = toy_data(num_users=60, num_items=150, seq_len=8, seed=3, text_dim=12)  # room for 99 negatives
    out = cold_start_experiment(toy, fraction=0.1, epochs=2, cache_dir=tmp_path, log=lambda m: None)
    eligible = int((np.bincount(toy.seq_items.numpy(), minlength=toy.num_items) > 0).sum())
    assert out["cold_items"] == max(2, round(0.1 * eligible)) and out["users"] > 0
    assert set(out["rows"]) == {"ikgr_inductive", "text_only", "popularity"}
    for row in out["rows"].values():
        for m in ("HR@10", "NDCG@10", "Recall@10"):
            assert row[m]["low"] <= row[m]["mean"] <= row[m]["high"] and 0 <= row[m]["mean"] <= 1
            assert row[m]["n"] == out["users"]
    assert "ikgr_inductive - text_only" in out["differences"] and out["latency_ms_per_item"] > 0
    with pytest.raises(ConfigError):
        cold_start_experiment(toy, fraction=1.5, log=lambda m: None)


def test_the_user_experiment_runs_and_hides_the_cold_users(tmp_path):
    from kgplatform.experiment.coldstart import cold_user_experiment, drop_users

    toy = toy_data(num_users=60, num_items=150, seq_len=12, seed=4, text_dim=12)
    warm = drop_users(toy, np.array([0, 3]))
    assert warm.sequence(0).numel() == 0 and warm.sequence(3).numel() == 0
    assert warm.sequence(1).tolist() == toy.sequence(1).tolist() and warm.num_items == toy.num_items
    out = cold_user_experiment(toy, fraction=0.1, few=4, epochs=2, cache_dir=tmp_path, log=lambda m: None)
    assert out["cold_users"] == 6 and 0 < out["users"] <= 6
    assert set(out["rows"]) == {"ikgr_inductive", "popularity", "text_only", "ikgr+popularity"}
    for row in out["rows"].values():
        assert 0 <= row["NDCG@10"]["mean"] <= 1 and row["NDCG@10"]["n"] == out["users"]
    assert set(out["differences"]) == {"ikgr_inductive - popularity", "ikgr_inductive - text_only",
                                       "ikgr_inductive - ikgr+popularity", "ikgr+popularity - popularity",
                                       "ikgr+popularity - text_only"}
    assert len(out["blend"]["beta_per_fold"]) == 2
    assert set(out["blend"]["beta_per_fold"]) <= set(out["blend"]["grid"])


def _ranks_first(scores, relevant):
    return [int(np.argmax(row)) in rel for row, rel in zip(scores, relevant)]


def test_crossfit_blend_picks_the_informative_score_on_the_other_fold():
    from kgplatform.experiment.coldstart import BLEND_GRID, crossfit_blend

    rng = np.random.default_rng(0)
    users, items = 40, 30
    relevant = [{int(i)} for i in rng.integers(1, items, users)]
    oracle, noise = rng.random((users, items)), rng.random((users, items))
    for u, rel in enumerate(relevant):
        oracle[u, list(rel)] = 5.0
    mask = np.zeros((users, items), dtype=bool)
    mask[:, 0] = True  # a "known" item, never rankable
    oracle[mask] = noise[mask] = -np.inf
    # the prior is the oracle: every fold takes the smallest weight that lets it rank every target first
    out, betas = crossfit_blend(noise, oracle, relevant, 10, seed=1)
    assert betas[0] == betas[1] > 0 and all(_ranks_first(out, relevant))
    smaller = [w for w in BLEND_GRID if w < betas[0]]
    assert not all(_ranks_first(crossfit_blend(noise, oracle, relevant, 10, seed=1, grid=tuple(smaller))[0],
                                relevant))
    assert np.isneginf(out[mask]).all() and np.isfinite(out[~mask]).all()
    # the prior is noise: every fold keeps IKGR alone (weight 0), whose ranking is unchanged
    out, betas = crossfit_blend(oracle, noise, relevant, 10, seed=1)
    assert betas == [0.0, 0.0]
    assert (np.argsort(-out, axis=1)[:, :10] == np.argsort(-oracle, axis=1)[:, :10]).all()
    assert np.isneginf(out[mask]).all() and np.isfinite(out[~mask]).all()


def test_crossfit_blend_chooses_each_folds_weight_from_the_other_fold_only():
    from kgplatform.experiment.coldstart import crossfit_blend

    # two users, one per fold: user A is helped only by the prior, user B only by IKGR alone
    a = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
    b = np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.2]])
    relevant = [{0}, {0}]
    out, betas = crossfit_blend(a, b, relevant, 1, seed=3, grid=(0.0, 1.0))
    # each user gets the weight that suits the *other* one, so both miss: no user chooses its own weight
    assert sorted(betas) == [0.0, 1.0]
    assert not any(_ranks_first(out, relevant))
