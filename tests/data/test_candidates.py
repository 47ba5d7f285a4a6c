"""Sampled negatives: stable, stored, never an interacted item."""
import pytest
import torch

from kgplatform.errors import TrainingError
from kgplatform.data.candidates import sample_negatives
from kgplatform.data.split import leave_one_out
from kgplatform.data.devdata import toy_data


@pytest.fixture(scope="module")
def setup():
    d = toy_data(num_users=50, num_items=60, seq_len=10)
    return d, leave_one_out(d), d.checksum()


def test_stable_across_runs_and_cached(setup, tmp_path):
    d, s, ck = setup
    a = sample_negatives(s, ck, num_negatives=20, seed=7)
    b = sample_negatives(s, ck, num_negatives=20, seed=7, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"neg20-{ck[:16]}-seed7.pt"]
    c = sample_negatives(s, ck, num_negatives=20, seed=7, cache_dir=tmp_path)  # loaded from the file
    for ph in ("valid", "test"):
        assert torch.equal(a.negatives[ph], b.negatives[ph])
        assert torch.equal(a.negatives[ph], c.negatives[ph])
    other = sample_negatives(s, ck, num_negatives=20, seed=8)
    assert not torch.equal(a.negatives["test"], other.negatives["test"])


def test_never_interacted_and_distinct(setup):
    d, s, ck = setup
    c = sample_negatives(s, ck, num_negatives=40, seed=1)
    for ph in ("valid", "test"):
        for u, row in zip(c.users[ph].tolist(), c.negatives[ph].tolist()):
            assert not set(row) & set(d.sequence(u).tolist())
            assert len(set(row)) == len(row)


def test_too_many_negatives_raise(setup):
    d, s, ck = setup
    with pytest.raises(TrainingError):
        sample_negatives(s, ck, num_negatives=55, seed=1)


def test_file_of_other_data_is_refused(setup, tmp_path):
    d, s, ck = setup
    sample_negatives(s, ck, num_negatives=5, seed=1, cache_dir=tmp_path)
    f = next(tmp_path.iterdir())
    blob = torch.load(f, weights_only=True)
    blob["checksum"] = "x" * 64
    torch.save(blob, f)
    with pytest.raises(TrainingError):
        sample_negatives(s, ck, num_negatives=5, seed=1, cache_dir=tmp_path)


def test_two_writers_of_one_file_at_once_both_finish(setup, tmp_path, monkeypatch):
    """Two trainings started together draw the same candidate file: while one is saving, the other saves and
    renames its own; the first must still finish (a shared temporary name made it fail with FileNotFoundError)."""
    _, split, ck = setup
    real_save = torch.save
    nested, started = [], []

    def save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        if not started:  # the other writer runs to the end between this save and its rename
            started.append(True)
            nested.append(sample_negatives(split, ck, num_negatives=5, seed=1, cache_dir=tmp_path))

    monkeypatch.setattr(torch, "save", save)
    first = sample_negatives(split, ck, num_negatives=5, seed=1, cache_dir=tmp_path)
    assert torch.equal(first.negatives["test"], nested[0].negatives["test"])
    assert [p.name for p in tmp_path.iterdir()] == [f"neg5-{ck[:16]}-seed1.pt"]  # no temporary file left behind
