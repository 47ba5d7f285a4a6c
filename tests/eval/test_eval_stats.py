"""Bootstrap intervals against closed forms; paired differences; user alignment."""
import math

import numpy as np
import pytest

from kgplatform.errors import TrainingError
from kgplatform.eval.stats import align_users, bootstrap_interval, paired_difference


def test_interval_of_a_mean_matches_the_normal_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 0.2, size=4000)
    iv = bootstrap_interval(x, resamples=4000, seed=3)
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert iv.mean == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert iv.high == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    assert iv.n == 4000 and iv.seeds == 1


def test_interval_of_a_proportion_matches_the_wald_interval():
    # HR-like 0/1 values: p = 0.1, n = 5000 → se = sqrt(p(1-p)/n)
    x = np.zeros(5000)
    x[:500] = 1.0
    iv = bootstrap_interval(x, resamples=4000, seed=0)
    se = math.sqrt(0.1 * 0.9 / 5000)
    assert iv.low == pytest.approx(0.1 - 1.96 * se, abs=0.3 * se)
    assert iv.high == pytest.approx(0.1 + 1.96 * se, abs=0.3 * se)


def test_seeds_are_pooled_per_user():
    a = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # two seeds, three users
    iv = bootstrap_interval(a, resamples=200)
    assert iv.mean == pytest.approx(0.5) and iv.seeds == 2 and iv.n == 3


def test_paired_difference_detects_a_real_gain_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, size=3000)
    better = base + 0.02 + rng.normal(0, 0.05, size=3000)
    d = paired_difference(better, base, names=("new", "old"))
    assert d.excludes_zero and d.verdict() == "new ahead" and d.p_value < 0.01
    assert d.mean == pytest.approx(0.02, abs=0.004)
    noise = base + rng.normal(0, 0.05, size=3000)
    n = paired_difference(noise, base)
    assert n.low < 0 < n.high or abs(n.mean) < 0.005
    # closed form of the paired interval: mean(d) ± 1.96 sd(d)/sqrt(n)
    dd = better - base
    se = dd.std(ddof=1) / math.sqrt(dd.size)
    assert d.low == pytest.approx(dd.mean() - 1.96 * se, abs=0.3 * se)


def test_paired_difference_needs_the_same_users():
    with pytest.raises(TrainingError, match="users"):
        paired_difference(np.zeros(3), np.zeros(4))
    with pytest.raises(TrainingError, match="finite"):
        bootstrap_interval(np.array([0.1, np.nan]))


def test_align_users_pairs_by_id():
    a, b, common = align_users(["u1", "u2", "u3"], np.array([[1.0, 2.0, 3.0]]), ["u3", "u1"], np.array([[30.0, 10.0]]))
    assert common == ["u1", "u3"]
    assert a.tolist() == [[1.0, 3.0]] and b.tolist() == [[10.0, 30.0]]
    with pytest.raises(TrainingError):
        align_users(["x"], np.array([1.0]), ["y"], np.array([1.0]))
