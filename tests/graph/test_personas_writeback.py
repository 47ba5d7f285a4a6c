"""Persona write-back on the tiny MovieLens graph (real Neo4j): Persona nodes and HAS_PERSONA edges match the
run, a new run replaces the old one atomically, a failed write leaves the previous run intact, and the persona
explanation path reads them back."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from kgplatform.data import leave_one_out, training_view
from kgplatform.errors import QueryError
from kgplatform.experiment.personas import persona_run
from kgplatform.explain import explain
from kgplatform.graph.export import export_recdata
from kgplatform.graph.personas import list_personas, persona_of_user, write_personas
from kgplatform.graph.writeback import list_runs
from kgplatform.models.personas import HDGIConfig, learn_personas

from ..conftest import TINY_NAME


@pytest.fixture
def learned(tiny_graph, settings):
    data, _ = export_recdata(tiny_graph, TINY_NAME, progress=False)
    g = torch.Generator().manual_seed(0)
    data = dataclasses.replace(data, item_text_emb=torch.randn(data.num_items, 16, generator=g))
    train = training_view(data, leave_one_out(data))
    p = learn_personas(train, HDGIConfig(hidden=8, att=8, epochs=20, k=3), torch.Generator().manual_seed(0))
    return tiny_graph, settings, data, p


def test_personas_written_in_one_run_and_replaced_atomically(learned):
    graph, settings, data, p = learned
    run = persona_run(p, data, graph, settings, run_id="personas-test-1", model="hdgi", label=False)
    rep = write_personas(graph, run)
    active = int((p.assignment >= 0).sum())  # users with training items (171 of the tiny fixture's 200)
    assert active == int((data.seq_lengths > 0).sum()) < data.num_users
    assert (rep.personas, rep.memberships, rep.user_vectors) == (3, active, active)
    personas = list_personas(graph, TINY_NAME)
    assert sorted(x["index"] for x in personas) == [0, 1, 2]
    assert sum(x["size"] for x in personas) == active
    assert {x["run"] for x in personas} == {"personas-test-1"}
    assert all(x["labelSource"] == "fallback" and x["label"] for x in personas)
    assert all(x["topItems"] for x in personas)
    u0 = int(torch.nonzero(p.assignment >= 0)[0])
    u = data.user_ids[u0]
    mine, w = persona_of_user(graph, u)
    assert mine["index"] == int(p.assignment[u0]) and 0 < w <= 1
    assert [r["id"] for r in list_runs(graph, dataset=TINY_NAME, kinds=("persona",))] == ["personas-test-1"]
    assert list_runs(graph, dataset=TINY_NAME) == []  # persona runs are not training runs

    # a second run replaces the first: no old Persona node, no duplicate membership
    p2 = dataclasses.replace(p, assignment=torch.where(p.assignment >= 0, 0, -1), centroids=p.centroids[:1],
                             sizes=torch.tensor([active]), k=1, top_items=p.top_items[:1],
                             top_entities=p.top_entities[:1], top_intents=p.top_intents[:1])
    write_personas(graph, persona_run(p2, data, graph, settings, run_id="personas-test-2", model="hdgi",
                                      label=False))
    personas = list_personas(graph, TINY_NAME)
    assert [(x["run"], x["size"]) for x in personas] == [("personas-test-2", active)]
    n_edges = graph.read_one("explain/persona_peers", user=u, item=data.item_ids[0], limit=1)  # smoke: runs
    del n_edges

    # a failing write (its Run id clashes) rolls back entirely: the second run stays
    with pytest.raises(QueryError):
        write_personas(graph, persona_run(p, data, graph, settings, run_id="personas-test-2", model="hdgi",
                                          label=False))
    personas = list_personas(graph, TINY_NAME)
    assert [(x["run"], x["size"]) for x in personas] == [("personas-test-2", active)]
    assert graph.read_one("personas/persona_of_user", user=u)["persona"]["run"] == "personas-test-2"


def test_persona_explanation_path(learned):
    graph, settings, data, p = learned
    write_personas(graph, persona_run(p, data, graph, settings, run_id="personas-test-3", model="hdgi", label=False))
    def pick():  # a user and an item that a peer of the same persona took and the user did not
        for u in torch.nonzero(p.assignment >= 0).view(-1).tolist():
            mine = set(data.sequence(u).tolist())
            for v in torch.nonzero(p.assignment == p.assignment[u]).view(-1).tolist():
                for i in data.sequence(v).tolist():
                    if v != u and i not in mine:
                        return u, i
        raise AssertionError("no persona with two members")

    u, item = pick()
    exps = [e for e in explain(graph, data.user_ids[u], data.item_ids[item], limit=2) if e.kind == "persona"]
    assert exps and exps[0].details["peers"] >= 1
    assert "HAS_PERSONA" in exps[0].text and "Persona" in exps[0].text and "took it" in exps[0].text
