"""SequenceSampler: every training target exactly once per epoch, with exactly its last min(t, L) items as
visible history, and a constant loss normaliser so every target weighs the same."""
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from kgplatform.data import LeakageError, RecData, training_view
from kgplatform.data.split import PAD
from kgplatform.models.gru4rec import GRU4Rec, GRU4RecConfig
from kgplatform.models.sasrec import SASRec, SASRecConfig
from kgplatform.train.samplers import SequenceSampler

L = 4


@pytest.fixture(scope="module")
def train():
    g = torch.Generator().manual_seed(3)
    # lengths around L (short, exactly L + 1 targets, much longer) and repeated items
    lengths = [1, 2, 3, 4, 5, 6, 7, 8, 13, 25, 3, 40]
    seqs = [torch.randint(0, 9, (n,), generator=g).tolist() for n in lengths]
    data = RecData.from_sequences("toy", [f"u{i}" for i in range(len(seqs))], [f"i{j}" for j in range(9)], seqs)
    return training_view(data)


def expected_targets(train, max_len):
    want = Counter()
    for u in range(train.num_users):
        s = train.sequence(u).tolist()
        for t in range(1, len(s)):
            want[(u, tuple(s[max(0, t - max_len):t]), s[t])] += 1
    return want


def counted_targets(batches):
    """(user, visible history, target) of every target position: a causal model at column c of a row sees
    the row's columns 0..c."""
    got = Counter()
    for b in batches:
        for u, s, t in zip(b["users"].tolist(), b["seq"].tolist(), b["target"].tolist()):
            for c, y in enumerate(t):
                if y != PAD:
                    hist = s[: c + 1]
                    assert PAD not in hist
                    got[(u, tuple(hist), y)] += 1
    return got


def sampler(train, batch_size=3, stride=1, seed=0, max_len=L):
    return SequenceSampler(train, max_len, batch_size, torch.Generator().manual_seed(seed), stride=stride)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_every_target_once_with_its_exact_history(train, batch_size):
    smp = sampler(train, batch_size)
    want = expected_targets(train, L)
    assert smp.num_targets == sum(want.values()) == int((train.seq_lengths - 1).clamp(min=0).sum())
    for _ in range(2):  # two epochs, two shuffles
        assert counted_targets(smp) == want


def test_long_histories_are_not_cut_at_window_starts(train):
    # the user with 38 training items: every target at t >= L sees L items (no cold restart at a window)
    u = 11
    n = train.sequence(u).numel()
    lengths = Counter()
    for (uu, h, _y), k in counted_targets(sampler(train)).items():
        if uu == u:
            lengths[len(h)] += k
    assert lengths == Counter({1: 1, 2: 1, 3: 1, L: n - L})


def test_windows_are_right_padded_with_targets_at_the_newest_positions(train):
    for b in sampler(train, 5):
        seq, tgt = b["seq"], b["target"]
        assert seq.shape == tgt.shape and seq.shape[1] <= L
        valid = seq != PAD
        is_t = tgt != PAD
        assert torch.equal(valid, valid.cummin(1).values)  # right padding only
        assert not bool((is_t & ~valid).any())  # targets only at real positions
        last = valid.sum(1) - 1
        assert bool(is_t[torch.arange(len(last)), last].all())  # the newest real position is a target
        # older positions are context: once a position is a target, every later real position is one
        assert not bool((is_t[:, :-1] & ~is_t[:, 1:] & valid[:, 1:]).any())


@pytest.mark.parametrize("stride", [2, 3, L])
def test_stride_keeps_every_target_once_with_a_suffix_of_its_history(stride):
    # item = position, so a target's position is its item id
    lengths = [3, 6, 9, 17, 30]
    data = RecData.from_sequences("toy", [f"u{i}" for i in range(5)], [f"i{j}" for j in range(30)],
                                  [list(range(n)) for n in lengths])
    train = training_view(data)
    smp, exact = sampler(train, 2, stride=stride), sampler(train, 2)
    assert len(smp) < len(exact)
    got = counted_targets(smp)
    assert set(k for k in got.values()) == {1}
    assert sorted((u, y) for u, _h, y in got) == sorted((u, t) for u, n in enumerate(lengths) for t in range(1, n - 2))
    for u, h, y in got:
        assert h == tuple(range(y - len(h), y))  # a contiguous suffix of the true history
        assert min(y, L - stride + 1) <= len(h) <= min(y, L)


def test_norm_is_the_epochs_mean_targets_per_batch(train):
    smp = sampler(train, 3)
    batches = list(smp)
    assert len(batches) == len(smp)
    norms = {float(b["norm"]) for b in batches}
    assert len(norms) == 1 and norms.pop() == pytest.approx(smp.num_targets / len(batches))
    assert sum(int((b["target"] != PAD).sum()) for b in batches) == smp.num_targets
    assert all(b["norm"].dim() == 0 for b in batches)


def test_same_seed_same_batches(train):
    a, b = list(sampler(train, seed=5)), list(sampler(train, seed=5))
    assert all(torch.equal(x["seq"], y["seq"]) and torch.equal(x["target"], y["target"]) for x, y in zip(a, b))


def test_refuses_full_data(train):
    full = RecData.from_sequences("toy", ["a"], ["x", "y"], [[0, 1, 0, 1]])
    with pytest.raises(LeakageError):
        SequenceSampler(full, L, 2, torch.Generator())


def _models(num_items):
    torch.manual_seed(0)
    yield SASRec(1, num_items, SASRecConfig(hidden_size=16, inner_size=32, max_seq_len=L)).eval()
    yield GRU4Rec(1, num_items, GRU4RecConfig(embedding_dim=16, hidden_size=24, max_seq_len=L)).eval()


@pytest.mark.parametrize("which", [0, 1], ids=["sasrec", "gru4rec"])
def test_every_target_weighs_the_same(train, which):
    """A batch's loss = the sum of its targets' CE (each from the target's own history alone) / norm."""
    model = list(_models(train.num_items))[which]
    smp = sampler(train, 3)
    total, n = 0.0, 0
    with torch.no_grad():
        for b in smp:
            loss = model.loss(b)["ce"]
            ces = []
            for u, s, t in zip(b["users"].tolist(), b["seq"].tolist(), b["target"].tolist()):
                for c, y in enumerate(t):
                    if y != PAD:
                        scores = model.full_scores(torch.tensor([u]), seq=torch.tensor([s[: c + 1]]))
                        ces.append(F.cross_entropy(scores, torch.tensor([y])))
            assert float(loss) * float(b["norm"]) == pytest.approx(float(sum(ces)), rel=1e-4)
            total += float(loss)
            n += 1
    # the epoch's mean batch loss is the mean per-target CE
    want = []
    with torch.no_grad():
        for (u, h, y), k in expected_targets(train, L).items():
            ce = F.cross_entropy(model.full_scores(torch.tensor([u]), seq=torch.tensor([list(h)])), torch.tensor([y]))
            want += [float(ce)] * k
    assert total / n == pytest.approx(sum(want) / len(want), rel=1e-4)
