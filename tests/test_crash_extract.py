"""Crash safety of `kgp extract`, with the real bundled GGUF (SmolLM2-135M through llama.cpp): round 1 SIGKILLed
after some items' intents were committed; a `--round both` re-run resumes round 1 and is SIGKILLed the same way in
round 2; a round-2 re-run completes it. The end state is the graph of an uninterrupted run (intents,
exact/related edges with their provenance and scores, the items' status and keys, text vectors, one extraction
Run per completed round). (`--round both` runs round 1 and then round 2 in one process, so one process both
resumes the killed round 1 and gives round 2 its kill.)

The reference is produced afterwards on the same ingested graph, reset to its post-ingest fingerprint, by one
uninterrupted `--round both` in the same KGP_HOME (round 2 reads what round 1 wrote, so a difference left by either
kill shows in the end state). It replays the answers the killed runs' LLM calls cached (the cache is part of
the design, and keeps the test short), so what is compared is what the graph writes hold, not whether two
llama.cpp runs agree. Six items (`--limit 6 --items-only`), `--related-k 10`.
"""
from __future__ import annotations

import pytest

from .conftest import TINY_NAME
from .fingerprint import fingerprint
from .test_crash import count, kgp_env, kgp_run, kill_when

LIMIT = 6
R1 = ["extract", "--round", "1", "-d", TINY_NAME, "--limit", str(LIMIT), "--items-only"]
R2 = ["extract", "--round", "2", "-d", TINY_NAME, "--limit", str(LIMIT), "--items-only", "--related-k", "10"]
BOTH = ["extract", "--round", "both", "-d", TINY_NAME, "--limit", str(LIMIT), "--items-only", "--related-k", "10"]


def _done(graph, status: str) -> int:
    return count(graph, f"MATCH (i:Item {{dataset: $d}}) WHERE i.{status} IS NOT NULL RETURN count(i)", d=TINY_NAME)


def _partly(graph, status: str):
    return lambda: 0 < _done(graph, status) < LIMIT


def _reset_to_ingested(graph) -> None:
    """Remove what extraction (and the embedding it triggers) added, back to the post-ingest graph."""
    with graph.driver.session(database=graph.info.database) as s:
        for q in ("MATCH (n) WHERE n:Intent OR n:Run OR n:KgpEncoder DETACH DELETE n",
                  "MATCH (n) WHERE n:Item OR n:User REMOVE n.extractStatus, n.extractError, n.extractKey, "
                  "n.extractRunId, n.extractAt, n.relatedStatus, n.relatedError, n.relatedKey, n.relatedRunId, "
                  "n.relatedAt, n.textEmbedding, n.textHash"):
            s.execute_write(lambda tx, q=q: tx.run(q).consume())


@pytest.mark.slow
@pytest.mark.llm
@pytest.mark.timeout(1800)
def test_extract_rounds_killed_then_rerun_match_uninterrupted_runs(tiny_graph, neo4j_server, tmp_path):
    graph = tiny_graph
    ingested = fingerprint(graph)
    env = kgp_env(neo4j_server, tmp_path / "home")

    kill_when(env, R1, _partly(graph, "extractStatus"), "round 1 had committed some items")
    assert 0 < _done(graph, "extractStatus") < LIMIT and count(graph, "MATCH (r:Run) RETURN count(r)") == 0
    # the re-run resumes round 1 (to its end: round 2 starts after it) and is killed in round 2
    kill_when(env, BOTH, _partly(graph, "relatedStatus"), "round 2 had committed some items")
    assert 0 < _done(graph, "relatedStatus") < LIMIT and _done(graph, "extractStatus") == LIMIT
    exact = count(graph, "MATCH (:Item)-[e:SATISFIES {kind: 'exact'}]->(:Intent) RETURN count(e)")
    assert count(graph, "MATCH (r:Run) RETURN count(r)") == 1  # the completed round 1; nothing of round 2
    kgp_run(env, *R2)
    after_r2 = fingerprint(graph)
    assert after_r2.nodes["Intent"] > 0 and 0 < exact < after_r2.relationships["SATISFIES"]  # round 2 linked some
    assert after_r2.nodes["Run"] == 2  # one per completed round; the killed runs recorded none

    _reset_to_ingested(graph)
    assert fingerprint(graph).differences(ingested) == []
    kgp_run(env, *BOTH)  # both rounds uninterrupted: round 2 reads round 1's result, so this compares both
    assert fingerprint(graph).differences(after_r2) == []
