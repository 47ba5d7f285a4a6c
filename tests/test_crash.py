"""Crash safety: `kgp ingest` killed with SIGKILL half-way, then re-run, writes the same graph as a clean run.

Two kills, at points chosen by what the graph holds rather than by a clock (a loaded machine shifts timings):
the first run dies while the interactions are being written (some INTERACTED edges committed: the first-ingest
CREATE path), its re-run dies while the external-KG facts are being written (some FACT edges committed), and the
next re-run must end with exactly the clean run's fingerprint. Small batches (KGP_BATCH_SIZE=1000) give each
step several transactions to die between.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kgplatform.db.migrations import migrate
from kgplatform.stats import graph_stats, wipe

from .conftest import DBPEDIA, TINY
from .fingerprint import fingerprint

NAME = "crash-tiny"
BATCH = "1000"


def _env(neo4j_server, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env.update(NEO4J_URI=neo4j_server.uri, KGP_HOME=str(tmp_path / "home"), KGP_BATCH_SIZE=BATCH)
    if neo4j_server.password:
        env.update(NEO4J_USER=neo4j_server.user or "neo4j", NEO4J_PASSWORD=neo4j_server.password)
    return env


def _cmd() -> list[str]:
    return [sys.executable, "-m", "kgplatform.cli.main", "ingest", "movielens-100k", "--path", str(TINY),
            "--dbpedia", str(DBPEDIA), "--name", NAME]


def _ingest(env) -> None:
    r = subprocess.run(_cmd(), env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]


def _ingest_killed(graph, env, rel_type: str, timeout_s: float = 600) -> dict:
    """Start an ingest, SIGKILL it as soon as some ``rel_type`` edges are committed; the counts at that moment."""
    proc = subprocess.Popen(_cmd(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            counts = graph_stats(graph)["relationships"]
            if counts.get(rel_type, 0) > 0:
                break
            assert proc.poll() is None, f"the ingest ended (exit {proc.returncode}) before any {rel_type} edge"
            assert time.monotonic() < deadline, f"no {rel_type} edge within {timeout_s:.0f} s"
            time.sleep(0.05)
        assert proc.poll() is None, f"the ingest had already finished when {rel_type} edges appeared"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return graph_stats(graph)


def _reset(graph) -> None:
    wipe(graph)
    migrate(graph)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_ingest_killed_twice_then_rerun_matches_a_clean_run(graph, neo4j_server, tmp_path, data_dir):
    env = _env(neo4j_server, tmp_path)
    _ingest(env)
    clean = fingerprint(graph)
    assert clean.unkeyed == [] and clean.relationships.get("FACT", 0) > 0 and clean.nodes["User"] == 200

    _reset(graph)
    at_first = _ingest_killed(graph, env, "INTERACTED")   # killed during the interactions ...
    assert fingerprint(graph) != clean and at_first["relationships"].get("FACT", 0) == 0, at_first
    at_second = _ingest_killed(graph, env, "FACT")        # ... its re-run killed during the facts ...
    assert fingerprint(graph) != clean, at_second
    _ingest(env)                                           # ... and the next re-run completes the graph
    assert fingerprint(graph).differences(clean) == [], (at_first, at_second)
    _ingest(env)                                           # a re-run of a complete ingest changes nothing
    assert fingerprint(graph).differences(clean) == []
