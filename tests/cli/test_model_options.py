"""`kgp train` / `kgp evaluate` refuse a bad model option (`--set`) before exporting or training anything: one
`Error:` line naming the option, exit code 12 (TrainingError), no traceback, the graph unchanged.

The parametrised cases run the CLI's real entry point in-process (`kgplatform.cli.main.main`, the code behind
the `kgp` script) against a Neo4j URI where nothing listens, so a refusal that reached the database would exit 4,
not 12; one subprocess case against the real graph checks the same end to end and that nothing was written.
"""
from __future__ import annotations

import os
import sys

import pytest

from ..conftest import TINY_NAME
from .test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py

DOWN = "bolt://127.0.0.1:1"  # nothing listens there
TRAINING_ERROR = 12


def _main(monkeypatch, capsys, tmp_path, *args: str) -> tuple[int, str, str]:
    from kgplatform.cli.main import main

    for k in [k for k in os.environ if k.startswith(("NEO4J_", "KGP_"))]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("NEO4J_URI", DOWN)
    monkeypatch.setenv("KGP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "argv", ["kgp", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _train(model: str, *sets: str) -> list[str]:
    return ["train", model, "-d", TINY_NAME, *[a for s in sets for a in ("--set", s)]]


CASES = [
    # SASRec: the cross-field rule, types, ranges
    (_train("sasrec", "num_heads=3"), "SASRec option num_heads: hidden_size (64) must be divisible by num_heads (3)"),
    (_train("sasrec", "hidden_size=48", "num_heads=5"), "SASRec option num_heads: hidden_size (48) must be divisible"),
    (_train("sasrec", "hidden_size=abc"), "SASRec option hidden_size must be an integer >= 1, got 'abc'"),
    (_train("sasrec", "hidden_size=0"), "SASRec option hidden_size must be an integer >= 1, got 0"),
    (_train("sasrec", "dropout=1"), "SASRec option dropout must be a finite number >= 0 and < 1, got 1"),
    (_train("sasrec", "dropout=-0.2"), "SASRec option dropout must be a finite number >= 0 and < 1, got -0.2"),
    (_train("sasrec", "num_layers=true"), "SASRec option num_layers must be an integer >= 1, got True"),
    (_train("sasrec", "max_seq_len=2.5"), "SASRec option max_seq_len must be an integer >= 1, got 2.5"),
    # GRU4Rec
    (_train("gru4rec", "hidden_size=-4"), "GRU4Rec option hidden_size must be an integer >= 1, got -4"),
    (_train("gru4rec", "dropout=1.5"), "GRU4Rec option dropout must be a finite number >= 0 and < 1, got 1.5"),
    (_train("gru4rec", "train_stride=0"), "GRU4Rec option train_stride must be an integer >= 1, got 0"),
    # BPR: a JSON string is not a number, nor is NaN
    (_train("bpr", 'embedding_dim="64"'), "BPR option embedding_dim must be an integer >= 1, got '64'"),
    (_train("bpr", "reg_weight=NaN"), "BPR option reg_weight must be a finite number >= 0, got nan"),
    (_train("bpr", "embedding_dim=0"), "BPR option embedding_dim must be an integer >= 1, got 0"),
    # LightGCN
    (_train("lightgcn", "num_layers=-1"), "LightGCN option num_layers must be an integer >= 0, got -1"),
    (_train("lightgcn", "require_pow=1"), "LightGCN option require_pow must be true or false, got 1"),
    # KGCN: an unknown enum value
    (_train("kgcn", "aggregator=max"), "KGCN option aggregator must be one of sum, concat, neighbor, got 'max'"),
    (_train("kgcn", "n_iter=0"), "KGCN option n_iter must be an integer >= 1, got 0"),
    (_train("kgcn", "neighbor_sample_size=four"), "KGCN option neighbor_sample_size must be an integer >= 1"),
    # IKGR, also through an ablation row
    (_train("ikgr", "lam=1.5"), "IKGR option lam must be a finite number >= 0 and <= 1, got 1.5"),
    (_train("ikgr", "rec_loss=hinge"), "IKGR option rec_loss must be one of softmax, full_softmax, bpr, none"),
    (_train("ikgr", "tau=0"), "IKGR option tau must be a finite number > 0, got 0"),
    (_train("ikgr", 'lambda_grid=[0.1,"x"]'), "IKGR option lambda_grid must be a non-empty list of numbers"),
    (_train("ikgr", "use_intents=no") + ["--ablation", "exact_only"], "IKGR option use_intents must be true or false"),
    # POP
    (_train("pop", "count=all"), "POP option count must be one of interactions, recbole, got 'all'"),
    # kgp evaluate: per-model options are checked for every row before the first one trains
    (["evaluate", "-d", TINY_NAME, "--models", "pop,sasrec", "--set", "sasrec.num_heads=7"],
     "SASRec option num_heads: hidden_size (64) must be divisible by num_heads (7)"),
    (["evaluate", "-d", TINY_NAME, "--models", "bpr,ikgr", "--set", "ikgr.weighting=cosine"],
     "IKGR option weighting must be one of similar, dissimilar, linear, got 'cosine'"),
    (["evaluate", "-d", TINY_NAME, "--models", "gru4rec", "--set", "gru4rec.embedding_dim=-1"],
     "GRU4Rec option embedding_dim must be an integer >= 1, got -1"),
    # training options (--train): types and ranges, for `kgp train` and `kgp evaluate` alike
    (["train", "ikgr", "-d", TINY_NAME, "--train", "batch_size=0"],
     "training option batch_size must be an integer >= 1, got 0"),
    (["train", "bpr", "-d", TINY_NAME, "--train", "lr=-0.01"], "training option lr must be a finite number > 0, got -0.01"),
    (["train", "bpr", "-d", TINY_NAME, "--train", "lr=fast"], "training option lr must be a finite number > 0, got 'fast'"),
    (["train", "bpr", "-d", TINY_NAME, "--train", "fused_adam=1"], "training option fused_adam must be true or false, got 1"),
    (["evaluate", "-d", TINY_NAME, "--models", "bpr", "--train", "bpr.patience=2.5"],
     "training option patience must be an integer >= 1, got 2.5"),
]


@pytest.mark.parametrize("args, first", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_model_option_is_one_error_line_before_anything_runs(monkeypatch, capsys, tmp_path, args, first):
    code, out, err = _main(monkeypatch, capsys, tmp_path, *args)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == TRAINING_ERROR, err  # 4 would mean it tried to reach the database first
    assert "Traceback" not in err and len(errors) == 1 and out == "", err
    assert errors[0].startswith("Error: " + first), err
    assert not (tmp_path / "home" / "runs").exists()  # no run folder, no export


def test_good_numeric_json_is_accepted(monkeypatch, capsys, tmp_path):
    """64.0 for an int and 0 for a float pass the checks: the command gets as far as the (down) database."""
    code, _, err = _main(monkeypatch, capsys, tmp_path, *_train("sasrec", "hidden_size=64.0", "dropout=0",
                                                                "num_heads=4"))
    assert code == 4 and err.startswith("Error: cannot reach Neo4j"), err


def test_refused_option_leaves_the_graph_unchanged(tiny_graph, neo4j_server, tmp_path):
    from tests.fingerprint import fingerprint

    before = fingerprint(tiny_graph)
    r = kgp(neo4j_server, tmp_path, "train", "sasrec", "-d", TINY_NAME, "--set", "num_heads=3", "--epochs", "1")
    assert r.returncode == TRAINING_ERROR and "Traceback" not in r.stderr, r.stderr
    assert [line for line in r.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: SASRec option num_heads: hidden_size (64) must be divisible by num_heads (3)"]
    assert r.stdout == "" and not (tmp_path / "home" / "runs").exists()
    assert fingerprint(tiny_graph) == before


def test_train_options_are_checked_then_used(monkeypatch, capsys, tmp_path, tiny_graph, neo4j_server):
    """``kgp train --train key=value``: numeric JSON is coerced and passes (the in-process run gets as far as the
    down database); end to end the run trains with it and records it in its training config."""
    code, _, err = _main(monkeypatch, capsys, tmp_path, "train", "bpr", "-d", TINY_NAME, "--train", "batch_size=512.0",
                         "--train", "lr=1")
    assert code == 4 and err.startswith("Error: cannot reach Neo4j"), err
    r = kgp(neo4j_server, tmp_path, "train", "bpr", "-d", TINY_NAME, "--epochs", "1", "--train", "batch_size=300",
            "--train", "lr=0.002", "--no-write-back")
    assert r.returncode == 0, r.stderr
    import json

    run_json = next((tmp_path / "home" / "runs").rglob("run.json"))
    cfg = json.loads(run_json.read_text())["train_config"]
    assert cfg["batch_size"] == 300 and cfg["lr"] == 0.002 and cfg["epochs"] == 1
