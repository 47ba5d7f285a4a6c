"""Personas end to end through the CLI's entry point (real Neo4j, real sentence-transformers, real PyG): learn and
write personas, train the persona-aware recommender and write it back, serve an anonymous session, explain with
the persona path, and refuse bad sessions and options with one Error line. The commands run inside the test
process (tests/cli/inprocess.py: the same ``main()``, its error mapping and exit codes, without a new interpreter
and its torch/sentence-transformers imports per call); what the console script adds as a process is tested in
tests/cli/test_cli.py."""
from __future__ import annotations

import json

import pytest

from ..conftest import DBPEDIA, TINY
from .test_cli import kgp_here

DS = "pt-tiny"
SMALL = ["--set", "hidden_size=16", "--set", "inner_size=32", "--set", "hdgi_hidden=8", "--set", "hdgi_epochs=20",
         "--set", "num_personas=3", "--set", "max_seq_len=20"]


def one_error(r) -> str:
    errors = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    return errors[0]


@pytest.mark.slow
def test_personas_train_session_and_explain(graph, neo4j_server, tmp_path):
    def run(*args, **kw):
        return kgp_here(neo4j_server, tmp_path, *args, env_extra={"KGP_LLM_MODEL": str(tmp_path / "none.gguf")}, **kw)

    assert run("ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA), "--name", DS).returncode == 0
    # before embeddings: a clear error, nothing written
    r = run("personas", "-d", DS, "--no-label")
    assert r.returncode == 12 and "text vectors" in one_error(r) and "kgp embed" in r.stderr
    assert run("embed", "-d", DS).returncode == 0

    r = run("personas", "-d", DS, "--k", "3", "--epochs", "30", "--no-label", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["k"] == 3 and sum(p["size"] for p in doc["personas"]) == 171  # users with training items
    assert {p["label_source"] for p in doc["personas"]} == {"fallback"}
    r = run("personas", "-d", DS, "--show", "--json")
    assert len(json.loads(r.stdout)) == 3
    r = run("runs", "--personas", "--json")
    assert [x["id"] for x in json.loads(r.stdout)] == [doc["run"]]

    r = run("train", "persona-sasrec", "-d", DS, "--epochs", "2", *SMALL, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    # the recommender's personas replaced the standalone run's, under the training run's id
    personas = json.loads(run("personas", "-d", DS, "--show", "--json").stdout)
    train_run = json.loads(run("runs", "-d", DS, "--json").stdout)[0]["id"]
    assert len(personas) == 3 and {p["run"] for p in personas} == {train_run}

    session = ["1", "50", "100"]
    r = run("recommend", "--session", ",".join(session), "-d", DS, "--k", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    got = [i["item"] for i in out["items"]]
    assert len(got) == 5 and not {f"{DS}:{s}" for s in session} & set(got)
    assert out["run"] == train_run and 0 <= out["persona"] < 3 and out["persona_info"]["label"]
    r = run("recommend", "--session", ",".join(session), "-d", DS, "--k", "3", "--explain")
    assert r.returncode == 0 and "inferred persona" in r.stdout and "session intent" in r.stdout

    # an item explained through the persona path (peers of the user's persona took it)
    user = next(str(u) for u in range(1, 300) if graph.read("personas/persona_of_user", user=f"{DS}:{u}"))
    kinds = set()
    for item in ("1", "7", "50", "100", "181", "258"):  # popular in MovieLens
        e = json.loads(run("explain", user, item, "-d", DS, "--json").stdout)
        kinds |= {x["kind"] for x in e["explanations"]}
        if "persona" in kinds:
            break
    assert "persona" in kinds

    for args, code, text in (
        (["--session", ""], 2, "--session is empty"),
        (["--session", "1,99999"], 10, "unknown item '99999'"),
        (["--session", "movielens-100k:1"], 10, "is not an item of 'pt-tiny'"),
        (["1", "--session", "1"], 2, "not both"),
    ):
        r = run("recommend", *args, "-d", DS)
        assert r.returncode == code and text in one_error(r), (args, r.stderr)
    r = run("recommend", "--session", "1,2")
    assert r.returncode == 2 and "--dataset" in one_error(r)
    r = run("personas", "-d", DS, "--k", "1")
    assert r.returncode == 2 and "k must be 0" in one_error(r)
    r = run("personas", "-d", DS, "--metapaths", "UXU")
    assert r.returncode == 2 and "unknown metapath" in one_error(r)
    r = run("train", "persona-sasrec", "-d", DS, "--set", "backbone=bert")
    assert r.returncode == 12 and "backbone" in one_error(r)
