"""The kgp CLI end to end, against the session's real Neo4j.

The console script's own behaviour (one JSON document on stdout, one ``Error:`` line and the exit code for bad
input or a database that is down) is tested through real subprocesses (:func:`kgp`). The multi-command flows
(train → recommend → explain → export; evaluate and its options) run the same entry point inside the test
process (:func:`kgp_here`, tests/cli/inprocess.py), which saves an interpreter and its torch imports per call."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kgplatform.errors import ConfigError

from ..conftest import DBPEDIA, TINY
from .inprocess import kgp_in_process


def cli_env(neo4j_server, tmp_path, env_extra: dict | None = None) -> dict[str, str]:
    """The environment of one `kgp` call: this Neo4j, a KGP_HOME under tmp_path, nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env.update(NEO4J_URI=neo4j_server.uri, KGP_HOME=str(tmp_path / "home"))
    if neo4j_server.password:
        env.update(NEO4J_USER=neo4j_server.user or "neo4j", NEO4J_PASSWORD=neo4j_server.password)
    env.update(env_extra or {})
    return env


def kgp(neo4j_server, tmp_path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """`kgp ARGS` as a real subprocess (the console script: its process, its imports, its exit code)."""
    return subprocess.run([sys.executable, "-m", "kgplatform.cli.main", *args],
                          env=cli_env(neo4j_server, tmp_path, env_extra), capture_output=True, text=True, timeout=600)


def kgp_here(neo4j_server, tmp_path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """`kgp ARGS` through the same entry point inside this process (see tests/cli/inprocess.py)."""
    return kgp_in_process(cli_env(neo4j_server, tmp_path, env_extra), *args)


def test_ingest_and_stats_json(graph, neo4j_server, tmp_path):
    r = kgp(neo4j_server, tmp_path, "ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA),
            "--name", "cli-tiny", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["rows"]["interactions"] == 6017
    r = kgp(neo4j_server, tmp_path, "stats", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one JSON document on stdout
    assert doc["nodes"]["Item"] == 300 and doc["relationships"]["INTERACTED"] == 6017


def test_migrate_status(graph, neo4j_server, tmp_path):
    r = kgp(neo4j_server, tmp_path, "migrate")
    assert r.returncode == 0 and "up to date" in r.stdout
    r = kgp(neo4j_server, tmp_path, "migrate", "--status")
    assert r.returncode == 0 and "V0001  applied" in r.stdout


def test_malformed_input_one_line_error(graph, neo4j_server, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "items.csv").write_text("id,title\na,A\n")
    (bad / "interactions.csv").write_text("user_id,item_id\nu1,zzz\n")
    r = kgp(neo4j_server, tmp_path, "ingest", "generic", "--path", str(bad), "--name", "bad")
    assert r.returncode == 9
    lines = [l for l in r.stderr.splitlines() if l.startswith("Error:")]
    assert lines == [f"Error: {bad / 'interactions.csv'}:2: unknown item_id zzz (not in items.csv)"]
    assert "Traceback" not in r.stderr


def test_db_down_one_line_error(neo4j_server, tmp_path):
    r = kgp(neo4j_server, tmp_path, "stats", env_extra={"NEO4J_URI": "bolt://127.0.0.1:1"})
    assert r.returncode == 4
    assert r.stderr.startswith("Error: cannot reach Neo4j at bolt://127.0.0.1:1")
    assert "Hint:" in r.stderr and "Traceback" not in r.stderr


def test_missing_path_one_line_error(neo4j_server, tmp_path):
    r = kgp(neo4j_server, tmp_path, "ingest", "amazon-beauty", "--path", str(tmp_path / "nowhere"))
    assert r.returncode == 9
    assert "missing user sequence" in r.stderr


def test_train_recommend_explain_runs(graph, neo4j_server, tmp_path):
    r = kgp_here(neo4j_server, tmp_path, "ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA),
                 "--name", "cli-tiny")
    assert r.returncode == 0, r.stderr
    r = kgp_here(neo4j_server, tmp_path, "train", "pop", "-d", "cli-tiny", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    stats = doc["models"][0]["stats"]["test"]
    assert set(stats) == {"full", "sampled99"}  # both protocols, always labelled
    r = kgp_here(neo4j_server, tmp_path, "runs", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["model"] == "pop"
    r = kgp_here(neo4j_server, tmp_path, "recommend", "1", "-d", "cli-tiny", "--k", "3", "--explain", "--json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert len(recs["items"]) == 3
    r = kgp_here(neo4j_server, tmp_path, "explain", "1", recs["items"][0]["item"], "-d", "cli-tiny")
    assert r.returncode == 0, r.stderr
    assert "(User cli-tiny:1)" in r.stdout or "no explanation found" in r.stdout
    r = kgp_here(neo4j_server, tmp_path, "recommend", "nobody", "-d", "cli-tiny")
    assert r.returncode == 10 and r.stderr.startswith("Error: unknown user")
    r = kgp_here(neo4j_server, tmp_path, "export", "-d", "cli-tiny", "--format", "recbole",
                 "--out", str(tmp_path / "rb"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rb" / "cli-tiny" / "cli-tiny.inter").exists()


def test_evaluate_per_model_options_and_ablation_rows(graph, neo4j_server, tmp_path, monkeypatch):
    r = kgp_here(neo4j_server, tmp_path, "ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA),
                 "--name", "cli-tiny-eval")
    assert r.returncode == 0, r.stderr
    r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop,bpr,ikgr",
                 "--seeds", "1,2", "--train", "bpr.epochs=2", "--train", "ikgr.epochs=1",
                 "--set", "bpr.embedding_dim=16", "--ablations", "no_aug", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {m["model"]: m for m in doc["models"]}
    assert list(rows) == ["pop", "bpr", "ikgr", "ikgr:no_aug"]
    assert all(len(m["seeds"]) == 2 for m in rows.values())
    assert all(set(m["stats"]["test"]) == {"full", "sampled99"} for m in rows.values())
    assert (tmp_path / "home").exists() and os.path.exists(doc["files"]["markdown"])
    # every row has 95 % intervals; every row is compared with the best baseline, the ablation with its model
    iv = rows["bpr"]["intervals"]["test"]["full"]["NDCG@10"]
    assert iv["low"] <= iv["mean"] <= iv["high"] and iv["seeds"] == 2
    pairs = {(d["a"], d["b"], d["why"]) for d in doc["differences"]}
    assert ("ikgr:no_aug", "ikgr", "ablation vs full model") in pairs
    assert any(w == "vs best baseline (validation)" for _, _, w in pairs)
    md = open(doc["files"]["markdown"]).read()
    assert "95 %" in md and "Paired differences" in md and "convention `kgp`" in md
    # the results file carries the command that produced it
    saved = json.load(open(doc["files"]["json"]))
    assert "evaluate" in saved["command"] and saved["convention"] == "kgp"
    monkeypatch.chdir(tmp_path)  # --results writes into ./results/<dataset>/ of the checkout it runs in
    r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop,sasrec", "--seeds", "1",
                 "--train", "sasrec.epochs=1", "--convention", "recbole", "--compare", "sasrec,pop", "--json",
                 "--results", "side")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["convention"] == "recbole" and doc["models"][1]["convention"] == "recbole"
    # --results: the report's three files in the checkout's results/<dataset>/, the plot under the report's name
    saved = tmp_path / "results" / "cli-tiny-eval"
    assert {p.name for p in saved.iterdir()} == {"side.json", "side.md", "side.png"}
    assert "](side.png)" in (saved / "side.md").read_text() and "results.png" not in (saved / "side.md").read_text()
    assert any((d["a"], d["b"], d["why"]) == ("sasrec", "pop", "requested") for d in doc["differences"])
    for bad, first in (
        (["--compare", "pop,nope"], "Error: --compare names 'nope', which is not a row here"),
        (["--compare", "pop"], "Error: --compare expects A,B"),
        (["--convention", "rebole"], "Error: unknown convention 'rebole'"),
        (["--with-recbole", "pop"], "Error: "),
        (["--with-recbole", "ikgr"], "Error: --with-recbole: no RecBole counterpart for ikgr"),
        (["--with-recbole", "pop", "--recbole-set", "pop.epochs=3"], "Error: RecBole option(s) epochs cannot be set"),
        (["--recbole-set", "pop.train_batch_size=512"], "Error: --recbole-set names pop, which is not in"),
        (["--with-recbole", "pop", "--recbole-set", "pop=3"], "Error: --recbole-set expects MODEL.key=value"),
        (["--with-recbole", "pop", "--recbole-pair", "pop"], "Error: --recbole-pair expects MODEL=ROW, got 'pop'"),
        (["--recbole-pair", "pop=pop"], "Error: --recbole-pair names 'pop', which is not in --with-recbole"),
        (["--with-recbole", "pop", "--recbole-pair", "pop=nope"], "Error: --recbole-pair names the row 'nope'"),
        (["--with-recbole", "pop", "--recbole-pair", "pop=pop", "--recbole-pair", "pop=pop"],
         "Error: --recbole-pair pairs 'pop' twice"),
    ):
        r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop", *bad,
                     env_extra={"KGP_RECBOLE_VENV": str(tmp_path / "no-such-venv")})
        assert r.returncode != 0 and r.stderr.startswith(first), (bad, r.stderr)
        assert "Traceback" not in r.stderr and len([x for x in r.stderr.splitlines() if x.startswith("Error:")]) == 1
    r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop", "--train", "pop.epoch=3")
    assert r.returncode != 0 and r.stderr.startswith("Error: --train pop: unknown training option(s) epoch")
    r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop",
                 "--train", "sasrek.epochs=3")
    assert r.returncode != 0 and r.stderr.startswith("Error: --train names sasrek, which is not being evaluated")
    r = kgp_here(neo4j_server, tmp_path, "runs", "--extract", "--json")
    assert r.returncode == 0 and all(x.get("kind") == "extract" for x in json.loads(r.stdout))
    # --recbole-pair reaches the comparison (RecBole itself is not run here: the comparison is stopped on entry;
    # tests/experiment/test_compare.py pairs by the given row)
    seen: dict = {}

    def stop(data, rows, **kw):
        seen.update(kw)
        raise ConfigError("stopped on entry")

    monkeypatch.setattr("kgplatform.experiment.run_comparison", stop)
    monkeypatch.setattr("kgplatform.eval.recbole.ensure_recbole", lambda: None)
    r = kgp_here(neo4j_server, tmp_path, "evaluate", "-d", "cli-tiny-eval", "--models", "pop", "--seeds", "1",
                 "--with-recbole", "bpr", "--recbole-pair", "bpr=pop")
    assert r.returncode != 0 and "Error: stopped on entry" in r.stderr.splitlines(), r.stderr
    assert seen["recbole_pairs"] == {"bpr": "pop"} and seen["with_recbole"] == ["bpr"]


def test_bad_bytes_and_unclosed_quote_are_file_line_errors(graph, neo4j_server, tmp_path):
    """The console script itself (not just the library): one Error line with file:line, exit 9, no traceback."""
    d = tmp_path / "latin1"
    d.mkdir()
    (d / "items.csv").write_bytes(b"id,title\na,Caf\xe9\n")
    (d / "interactions.csv").write_text("user_id,item_id\nu1,a\n")
    r = kgp(neo4j_server, tmp_path, "ingest", "generic", "--path", str(d), "--name", "latin1")
    assert r.returncode == 9 and "Traceback" not in r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("Error:")]
    assert errors == [f"Error: {d / 'items.csv'}:2: not valid UTF-8 (byte 0xe9 at column 6)"]
    assert "Hint: save the file as UTF-8" in r.stderr
    (d / "items.csv").write_text('id,title\na,"Unclosed\nb,Lost row\n')
    r = kgp(neo4j_server, tmp_path, "ingest", "generic", "--path", str(d), "--name", "latin1")
    assert r.returncode == 9 and f"{d / 'items.csv'}:2: unclosed quote" in r.stderr
    r = kgp(neo4j_server, tmp_path, "stats", "--json")
    assert json.loads(r.stdout)["nodes"].get("Item", 0) == 0


def test_ingest_with_the_database_down_is_one_error_line(neo4j_server, tmp_path):
    d = tmp_path / "ok"
    d.mkdir()
    (d / "items.csv").write_text("id,title\na,A\n")
    (d / "interactions.csv").write_text("user_id,item_id\nu1,a\n")
    r = kgp(neo4j_server, tmp_path, "ingest", "generic", "--path", str(d), "--name", "ok",
            env_extra={"NEO4J_URI": "bolt://127.0.0.1:1"})
    assert r.returncode == 4 and "Traceback" not in r.stderr
    assert [l for l in r.stderr.splitlines() if l.startswith("Error:")][0].startswith(
        "Error: cannot reach Neo4j at bolt://127.0.0.1:1")
