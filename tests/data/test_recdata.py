"""RecData: construction, validation, checksum, HeteroData view."""
import dataclasses

import pytest
import torch

from kgplatform.errors import TrainingError
from kgplatform.data.recdata import RecData
from kgplatform.data.devdata import toy_data


def small(**kw):
    return RecData.from_sequences(
        "s", ["u0", "u1"], ["i0", "i1", "i2"], [[0, 1, 2], [2, 0]],
        kg_triples=[(0, 0, 3), (1, 1, 4)], relation_names=["genre", "by"], num_entities=5,
        intent_keys=["cheap", "gift"], item_intents=[(0, 0, 0), (1, 1, 1)], user_intents=[(1, 0, 0)], **kw,
    )


def test_csr_and_sizes():
    d = small()
    assert d.seq_indptr.tolist() == [0, 3, 5]
    assert d.sequence(1).tolist() == [2, 0]
    assert (d.num_users, d.num_items, d.num_entities, d.num_relations, d.num_intents) == (2, 3, 5, 2, 2)
    assert d.item_intent_kind.tolist() == [0, 1]
    assert d.interaction_users().tolist() == [0, 0, 0, 1, 1]


def test_checksum_stable_and_content_sensitive():
    assert small().checksum() == small().checksum()
    other = RecData.from_sequences("s", ["u0", "u1"], ["i0", "i1", "i2"], [[0, 2, 1], [2, 0]],
                                   kg_triples=[(0, 0, 3), (1, 1, 4)], relation_names=["genre", "by"], num_entities=5,
                                   intent_keys=["cheap", "gift"], item_intents=[(0, 0, 0), (1, 1, 1)],
                                   user_intents=[(1, 0, 0)])
    assert other.checksum() != small().checksum()


@pytest.mark.parametrize("bad", [
    dict(sequences=[[0, 7]]),
    dict(kg_triples=[(0, 0, 9)], num_entities=4),
    dict(intent_keys=["a"], item_intents=[(0, 3, 0)]),
    dict(item_text_emb=torch.zeros(2, 4)),
])
def test_validation_errors(bad):
    kw = dict(dataset="x", user_ids=["u"], item_ids=["a", "b", "c"], sequences=[[0, 1]])
    kw.update(bad)
    with pytest.raises(TrainingError):
        RecData.from_sequences(**kw)


def test_hetero_data_view():
    from kgplatform.data import serving_graph

    g = serving_graph(small(item_text_emb=torch.ones(3, 4)))
    assert set(g.node_types) == {"user", "item", "entity", "intent"}
    assert g["entity"].num_nodes == 2
    assert g["item", "genre", "entity"].edge_index.tolist() == [[0], [0]]
    assert g["item", "by", "entity"].edge_index.tolist() == [[1], [1]]
    assert g["user", "interacted", "item"].pos.tolist() == [0, 1, 2, 0, 1]
    assert g["item", "satisfies", "intent"].edge_attr.tolist() == [0, 1]
    assert g["item"].x.shape == (3, 4)


def test_restrict_intents():
    d = small().restrict_intents([0])
    assert d.item_intents.tolist() == [[0, 0]]


def test_toy_data_is_valid():
    d = toy_data(text_dim=8)
    d.validate()
    assert d.intent_text_emb.shape == (4, 8)
    assert dataclasses.replace(d).checksum() == d.checksum()


def test_intents_as_kg_adds_one_entity_per_intent():
    from kgplatform.data.devdata import intents_as_kg

    d = intents_as_kg(small())
    assert d.num_entities == 5 + 2 and d.relation_names[-2:] == ["satisfies_exact", "satisfies_related"]
    new = torch.stack([d.kg_heads, d.kg_rels, d.kg_tails], 1)[-2:].tolist()
    assert new == [[0, 2, 5], [1, 3, 6]]
    d.validate()
