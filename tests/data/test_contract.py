"""The leakage boundary: training views, training graphs, samples and builders never see held-out items."""
import pytest
import torch

from kgplatform.data import (
    LeakageError, RecData, leave_one_out, serving_graph, session_samples, training_graph, training_view, user_samples,
)
from kgplatform.data.devdata import toy_data
from kgplatform.models import MODELS, build_model, get_spec
from kgplatform.train.samplers import PairSampler, SequenceSampler


def leaky():
    """Three users. Item 3 is every user's validation and test item and appears nowhere in training; item 0
    is the most popular training item. A POP that counted held-out interactions would rank item 3 first."""
    seqs = [[0, 1, 3, 3], [0, 3, 3], [0, 3, 3]]
    return RecData.from_sequences("leak", ["u0", "u1", "u2"], ["a", "b", "c", "d", "e"], seqs,
                                  sessions=[[0, 0, 1, 1], [0, 0, 0], [0, 1, 1]])


def test_training_view_holds_training_prefixes_only():
    d = leaky()
    tv = training_view(d)
    assert tv.role == "train" and tv.is_training_view
    assert [tv.sequence(u).tolist() for u in range(3)] == [[0, 1], [0], [0]]
    assert tv.seq_session.tolist() == [0, 0, 0, 0]
    assert 3 not in tv.seq_items.tolist()  # no test item, no validation item
    assert training_view(tv) is tv


def test_builders_refuse_the_full_data():
    d = leaky()
    for name, spec in MODELS.items():
        with pytest.raises(LeakageError):
            spec.build(d, spec.make_config(), torch.Generator().manual_seed(0))
    with pytest.raises(LeakageError):
        training_graph(d)
    with pytest.raises(LeakageError):
        PairSampler(d, 4, torch.Generator())
    with pytest.raises(LeakageError):
        SequenceSampler(d, 5, 4, torch.Generator())
    with pytest.raises(LeakageError):
        user_samples(d, 5)


def test_a_leaked_test_edge_would_change_the_prediction_and_cannot():
    d = leaky()
    split = leave_one_out(d)
    pop = build_model("pop", d, split)
    top = int(pop.full_scores(torch.tensor([0])).argmax())
    assert top == 0  # from training counts: item 0 (3 interactions); the held-out item 3 has none
    assert pop.full_scores(torch.tensor([0]))[0, 3] == pop.full_scores(torch.tensor([0]))[0, 4]  # both unseen
    # what the leak would have looked like: counting every interaction puts the held-out item 3 on top
    assert int(torch.bincount(d.seq_items, minlength=5).argmax()) == 3


def test_training_graph_has_no_validation_or_test_edge():
    d = toy_data(num_users=30, num_items=20, seq_len=6)
    split = leave_one_out(d)
    g = training_graph(training_view(d, split))
    ei = g["user", "interacted", "item"].edge_index
    train_u, train_i = split.train_pairs()
    assert sorted(zip(ei[0].tolist(), ei[1].tolist())) == sorted(zip(train_u.tolist(), train_i.tolist()))
    assert ei.shape[1] == d.num_interactions - split.valid_users.numel() - split.test_users.numel()
    # every held-out (user, position) pair is absent: count per user equals train_len
    assert torch.equal(torch.bincount(ei[0], minlength=d.num_users), split.train_len)
    full = serving_graph(d)
    assert full.role == "full" and full["user", "interacted", "item"].edge_index.shape[1] == d.num_interactions


def test_session_nodes_in_the_training_graph():
    d = leaky()
    g = training_graph(training_view(d))
    assert g["session"].num_nodes == 3  # u0#0, u1#0, u2#0 (the later sessions hold only held-out items)
    c = g["session", "contains", "item"]
    assert c.edge_index.shape[1] == 4 and c.pos.tolist() == [0, 1, 0, 0]


def test_session_samples_stay_inside_sessions():
    # one user, sessions [a b c | d e f g], all training (sequence of 9 with 2 held out)
    seq = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    sess = [0, 0, 0, 1, 1, 1, 1, 2, 2]
    d = RecData.from_sequences("s", ["u"], [str(i) for i in range(9)], [seq], sessions=[sess])
    tv = training_view(d)  # items 0..6 train
    s = session_samples(tv, max_len=2)
    assert s.target.tolist() == [1, 2, 4, 5, 6]
    assert s.prefix.tolist() == [[0, -1], [0, 1], [3, -1], [3, 4], [4, 5]]
    u = user_samples(tv, max_len=3)
    assert u.target.tolist() == [1, 2, 3, 4, 5, 6] and u.prefix[-1].tolist() == [3, 4, 5]


def test_session_history_of_the_test_target():
    seq = [0, 1, 2, 3, 4, 5, 6]
    sess = [0, 0, 1, 1, 1, 2, 2]
    d = RecData.from_sequences("s", ["u"], [str(i) for i in range(7)], [seq], sessions=[sess])
    split = leave_one_out(d)
    seq_t, len_t = split.session_history("test", torch.tensor([0]), 5)  # target 6, session 2 holds 5
    assert seq_t.tolist() == [[5]] and len_t.tolist() == [1]
    seq_v, len_v = split.session_history("valid", torch.tensor([0]), 5)  # target 5 opens session 2
    assert len_v.tolist() == [0]
    seq_h, _ = split.history_sequences("test", torch.tensor([0]), 3)
    assert seq_h.tolist() == [[3, 4, 5]]


def test_leave_one_out_refuses_a_training_view():
    with pytest.raises(Exception, match="training view"):
        leave_one_out(training_view(leaky()))


def test_sessions_must_be_non_decreasing():
    with pytest.raises(Exception, match="seq_session"):
        RecData.from_sequences("s", ["u"], ["a", "b"], [[0, 1]], sessions=[[1, 0]])


def test_every_registry_builder_gets_the_training_view_only():
    d = toy_data(num_users=20, num_items=16, seq_len=6, text_dim=4)
    split = leave_one_out(d)
    seen = []
    for name in MODELS:
        spec = get_spec(name)
        orig = spec.build

        def spy(train, cfg, gen, _orig=orig):
            seen.append(train.role)
            assert train.num_interactions == split.num_train
            return _orig(train, cfg, gen)

        object.__setattr__(spec, "build", spy)
        try:
            build_model(name, d, split, {"use_llm": False} if name == "llm4sbr" else None)  # toy: no LLM rows
        finally:
            object.__setattr__(spec, "build", orig)
    assert seen and set(seen) == {"train"}
