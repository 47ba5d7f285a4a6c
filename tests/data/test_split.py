"""Leave-one-out split (RecBole's rules, including short sequences)."""
import torch

from kgplatform.data.split import PAD, leave_one_out
from kgplatform.data.recdata import RecData


def data():
    seqs = [[0, 1, 2, 3, 4], [5, 6, 7], [1, 2], [3], [], [2, 9, 2, 9]]
    return RecData.from_sequences("t", [f"u{i}" for i in range(6)], [f"i{i}" for i in range(10)], seqs)


def test_targets_and_train():
    s = leave_one_out(data())
    assert s.train_len.tolist() == [3, 1, 1, 1, 0, 2]
    assert s.valid_users.tolist() == [0, 1, 5]
    assert s.test_users.tolist() == [0, 1, 2, 5]
    assert s.targets("valid").tolist() == [3, 6, 2]
    assert s.targets("test").tolist() == [4, 7, 2, 9]
    u, i = s.train_pairs()
    assert list(zip(u.tolist(), i.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 5), (2, 1), (3, 3), (5, 2), (5, 9)]
    assert s.item_counts()[2].item() == 2


def test_history_masks_exclude_the_target():
    s = leave_one_out(data())
    users = torch.tensor([0, 5])
    rows, items = s.history_coo("test", users)
    assert sorted(zip(rows.tolist(), items.tolist())) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 2), (1, 2)]
    # user 5's test target 9 also occurs in its history: it is not masked (RecBole: used - positive)
    rows, items = s.history_coo("valid", users)
    assert sorted(zip(rows.tolist(), items.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 9)]


def test_history_sequences_right_padded_last_items():
    s = leave_one_out(data())
    seq, n = s.history_sequences("test", torch.tensor([0, 2]), max_len=3)
    assert seq.tolist() == [[1, 2, 3], [1, PAD, PAD]]
    assert n.tolist() == [3, 1]
    seq, _ = s.history_sequences(None, torch.tensor([1]), max_len=50)
    assert seq.tolist() == [[5, 6, 7]]
