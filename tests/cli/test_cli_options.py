"""Bad options and unknown ids in the serving commands (`kgp recommend`, `kgp explain`; and `kgp extract --order`): one `Error:` line, the
documented exit code, no traceback, nothing written."""
from __future__ import annotations

import pytest

from ..conftest import TINY_NAME
from .test_cli import kgp_here as kgp  # in-process: tests/cli/inprocess.py

DOWN = {"NEO4J_URI": "bolt://127.0.0.1:1"}  # nothing listens there: a refused option never needs the database


def _one_error(r, code: int, first: str) -> None:
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(errors) == 1, r.stderr
    assert errors[0].startswith(first), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args, first", [
    (["recommend", "1", "-d", TINY_NAME, "--k", "0"], "Error: --k must be between 1 and 1000, got 0"),
    (["recommend", "1", "-d", TINY_NAME, "--k", "-5"], "Error: --k must be between 1 and 1000, got -5"),
    (["recommend", "1", "-d", TINY_NAME, "--k", "1001", "--explain"], "Error: --k must be between 1 and 1000"),
    (["explain", "1", "2", "-d", TINY_NAME, "--limit", "0"], "Error: --limit must be between 1 and 100, got 0"),
    (["explain", "1", "2", "-d", TINY_NAME, "--limit", "-1"], "Error: --limit must be between 1 and 100"),
    (["explain", "1", "2", "-d", TINY_NAME, "--limit", "101"], "Error: --limit must be between 1 and 100"),
    (["extract", "--round", "1", "-d", TINY_NAME, "--order", "random"],
     "Error: --order must be one of id, popular, got 'random'"),
    (["extract", "--round", "knowledge", "-d", TINY_NAME, "--order", "popular"],
     "Error: --order applies to rounds 1 and 2, not --round knowledge"),
    (["extract", "--round", "knowledge", "-d", TINY_NAME, "--scope", "all"],
     "Error: --scope must be one of training, tuning, got 'all'"),
    (["extract", "--round", "sessions", "-d", TINY_NAME, "--scope", "tuning"],
     "Error: --scope applies to --round knowledge, not --round sessions"),
    (["export", "-d", TINY_NAME, "--format", "instructions", "--out", "never-written", "--train-knowledge", "x"],
     "Error: --train-knowledge must be training or tuning, got 'x'"),
])
def test_out_of_range_options_exit_2_before_connecting(neo4j_server, tmp_path, args, first):
    _one_error(kgp(neo4j_server, tmp_path, *args, env_extra=DOWN), 2, first)


def test_unknown_ids_exit_10_and_known_ones_work(tiny_graph, neo4j_server, tmp_path):
    from kgplatform.stats import graph_stats

    before = graph_stats(tiny_graph)
    _one_error(kgp(neo4j_server, tmp_path, "explain", "1", "no-such-item", "-d", TINY_NAME), 10,
               f"Error: unknown item 'no-such-item' in dataset '{TINY_NAME}'")
    # a full id of another dataset is not this user's item
    _one_error(kgp(neo4j_server, tmp_path, "explain", "1", "other-dataset:1", "-d", TINY_NAME), 10,
               "Error: unknown item 'other-dataset:1'")
    _one_error(kgp(neo4j_server, tmp_path, "explain", "nobody", "1", "-d", TINY_NAME), 10, "Error: unknown user")
    _one_error(kgp(neo4j_server, tmp_path, "recommend", "nobody", "-d", TINY_NAME, "--k", "5"), 10,
               "Error: unknown user")
    # no run has written recommendations yet: a clear "not found", not an empty list
    _one_error(kgp(neo4j_server, tmp_path, "recommend", "1", "-d", TINY_NAME), 10,
               f"Error: no training run with recommendations for dataset '{TINY_NAME}'")
    # the same pair with real ids: raw and full item ids both resolve
    for item in ("1", f"{TINY_NAME}:1"):
        r = kgp(neo4j_server, tmp_path, "explain", "1", item, "-d", TINY_NAME, "--limit", "1", "--json")
        assert r.returncode == 0, r.stderr
        assert f'"item": "{TINY_NAME}:1"' in r.stdout
    assert graph_stats(tiny_graph) == before  # nothing written


def test_instructions_with_tuning_knowledge_need_the_tuning_round(tiny_graph, neo4j_server, tmp_path):
    out = tmp_path / "instructions"
    _one_error(kgp(neo4j_server, tmp_path, "export", "-d", TINY_NAME, "--format", "instructions", "--out", str(out),
                   "--train-knowledge", "tuning"), 2,
               f"Error: --train-knowledge tuning: {TINY_NAME} has no tuning-scope knowledge")
    assert not out.exists()
