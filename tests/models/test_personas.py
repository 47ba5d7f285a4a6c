"""Personas (HDGI + spherical k-means) on a planted toy: groups recovered, silhouette picks the planted K, the
distinctive items are the group's, nothing outside the training view is read, and the HDGI graph holds no
validation/test edge."""
import dataclasses

import numpy as np
import pytest
import torch

from kgplatform.data import LeakageError, leave_one_out, training_view
from kgplatform.data.devdata import toy_data
from kgplatform.errors import TrainingError
from kgplatform.models.personas import (HDGIConfig, assign, distinctive, learn_personas, persona_vectors,
                                        silhouette, spherical_kmeans)


def planted(num_groups=3, seed=0, **kw):
    data = toy_data(num_users=90, num_items=36, num_groups=num_groups, seq_len=8, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_groups, 24, generator=g) * 3
    text = centers[torch.arange(36) % num_groups] + torch.randn(36, 24, generator=g)
    return dataclasses.replace(data, item_text_emb=text)


def user_groups(data):
    """The planted group of each user: the majority group of its items."""
    out = []
    for u in range(data.num_users):
        s = data.sequence(u) % 3
        out.append(int(torch.bincount(s, minlength=3).argmax()))
    return torch.tensor(out)


def purity(assignment, truth, k):
    tot = 0
    for j in range(k):
        m = assignment == j
        if bool(m.any()):
            tot += int(torch.bincount(truth[m]).max())
    return tot / truth.numel()


def test_spherical_kmeans_recovers_planted_directions_and_silhouette_prefers_them():
    g = torch.Generator().manual_seed(1)
    dirs = torch.eye(4)[:3] * 5
    x = torch.cat([dirs[j] + 0.3 * torch.randn(40, 4, generator=g) for j in range(3)])
    truth = torch.arange(3).repeat_interleave(40)
    c, a = spherical_kmeans(x, 3, g)
    assert purity(a, truth, 3) == 1.0
    s3 = silhouette(x, a, 3)
    _, a5 = spherical_kmeans(x, 5, g)
    assert s3 > silhouette(x, a5, 5) and s3 > 0.7


def test_silhouette_matches_a_hand_computed_case():
    # two tight pairs on orthogonal axes: a = 0 inside each pair, b = 1 (cosine distance), s = 1 everywhere
    x = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    assert silhouette(x, torch.tensor([0, 0, 1, 1]), 2) == pytest.approx(1.0)
    # a singleton cluster counts 0 (sklearn's convention)
    assert silhouette(x, torch.tensor([0, 0, 1, 2]), 3) == pytest.approx(0.5)


def test_distinctive_ranks_overrepresented_columns():
    # persona 0 = users 0,1 both took col 5; everyone took col 1 (not distinctive); persona 1 took col 7
    rows = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    cols = torch.tensor([5, 5, 1, 1, 1, 1, 7, 7])
    top = distinctive(rows, cols, torch.tensor([0, 0, 1, 1]), 2, 10, top=3)
    assert top[0][0][0] == 5 and all(c != 1 for c, _ in top[0])
    assert top[1][0][0] == 7


def test_learn_personas_recovers_groups_and_picks_k_by_silhouette():
    data = planted()
    train = training_view(data, leave_one_out(data))
    cfg = HDGIConfig(hidden=16, att=16, epochs=150, lr=0.01, patience=30, k_range=(2, 3, 4, 5, 6),
                     entity_max_share=0.5)  # the toy's group entities link a third of the items each
    p = learn_personas(train, cfg, torch.Generator().manual_seed(0))
    assert p.k == 3, p.silhouette
    assert purity(p.assignment, user_groups(train), p.k) > 0.9
    assert set(p.metapaths) == {"UIU", "UIEIU", "UITIU"}
    assert abs(sum(p.metapath_weights) - 1) < 1e-5
    assert p.losses[-1] < p.losses[0]
    assert int(p.sizes.sum()) == data.num_users and bool((p.assignment >= 0).all())
    # a persona's most distinctive items belong to its users' planted group
    truth = user_groups(train)
    for j in range(p.k):
        g = int(torch.bincount(truth[p.assignment == j]).argmax())
        assert all(i % 3 == g for i, _ in p.top_items[j][:3])
    # the centroid vectors are per persona, shared by its members
    v = persona_vectors(p)
    assert torch.allclose(v[p.assignment == 0], p.centroids[0].expand(int(p.sizes[0]), -1))


def test_inferred_persona_of_a_users_items_is_its_persona():
    data = planted(seed=2)
    train = training_view(data, leave_one_out(data))
    p = learn_personas(train, HDGIConfig(hidden=16, att=16, epochs=100, lr=0.01, k=3),
                       torch.Generator().manual_seed(0))
    items = [train.sequence(u) for u in range(train.num_users)]
    offsets = torch.tensor([0] + np.cumsum([len(s) for s in items]).tolist())
    _, persona, weight = p.infer(torch.cat(items), offsets)
    assert (persona == p.assignment).float().mean() > 0.95
    assert bool(((weight > 0) & (weight <= 1)).all())


def test_personas_refuse_the_full_data_and_need_text():
    data = planted()
    with pytest.raises(LeakageError):
        learn_personas(data)
    no_text = dataclasses.replace(data, item_text_emb=None)
    with pytest.raises(TrainingError, match="text vectors") as e:
        learn_personas(training_view(no_text, leave_one_out(no_text)))
    assert "kgp embed" in e.value.hint


def test_hdgi_graph_holds_no_validation_or_test_edge():
    data = planted()
    split = leave_one_out(data)
    train = training_view(data, split)
    p = learn_personas(train, HDGIConfig(hidden=8, att=8, epochs=5, k=3), torch.Generator().manual_seed(0))
    first = p.hdgi.encoder.metapaths[0].first.coalesce().indices()  # user -> item operator
    graph_pairs = set(zip(first[0].tolist(), first[1].tolist()))
    train_pairs = {(u, int(i)) for u in range(train.num_users) for i in train.sequence(u)}
    assert graph_pairs == train_pairs
    for phase in ("valid", "test"):
        users = split.users(phase)
        tgt = split.targets(phase, users)
        held = {(int(u), int(i)) for u, i in zip(users, tgt)} - train_pairs  # a repeat of a training item is fine
        assert not (held & graph_pairs)


def test_mean_personas_need_no_hdgi_and_assign_handles_empty_nodes():
    data = planted()
    train = training_view(data, leave_one_out(data))
    p = learn_personas(train, HDGIConfig(user_vectors="mean", k=3), torch.Generator().manual_seed(0))
    assert p.hdgi is None and p.losses == []
    assert purity(p.assignment, user_groups(train), 3) > 0.9
    a, w = assign(torch.randn(2, p.centroids.shape[1]), p.centroids, empty=torch.tensor([False, True]))
    assert int(a[1]) == -1 and float(w[1]) == 0.0


@pytest.mark.parametrize("bad", [{"k": 1}, {"user_vectors": "x"}, {"metapaths": ("UXU",)}, {"epochs": 0},
                                 {"k_range": (1, 2)}, {"entity_max_share": 0.0}])
def test_bad_persona_settings_are_refused(bad):
    with pytest.raises(TrainingError):
        HDGIConfig(**bad).validate()
