"""Crash safety: `kgp ingest` killed with SIGKILL half-way, then re-run, writes the same graph as a clean run.

Two kills, at points chosen by what the graph holds rather than by a clock (a loaded machine shifts timings):
the first run dies while the interactions are being written (some INTERACTED edges committed: the first-ingest
CREATE path), its re-run dies while the external-KG facts are being written (some FACT edges committed), and the
next re-run must end with exactly the clean run's fingerprint. Small batches (KGP_BATCH_SIZE=1000) give each
step several transactions to die between. The clean run is the library call `kgp ingest` makes, run in the test
process (only the killed runs and the recovering re-run need to be real processes).

The helpers here (`kgp_env`, `kgp_run`, `kill_when`, `one_error`) are shared by the other crash and concurrency
tests (`tests/test_crash_*.py`, `tests/test_concurrency.py`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kgplatform.db.migrations import migrate
from kgplatform.ingest import load_dataset, write_dataset
from kgplatform.stats import graph_stats, wipe

from .conftest import DBPEDIA, TINY
from .fingerprint import fingerprint

NAME = "crash-tiny"
BATCH = "1000"


def kgp_env(neo4j_server, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `kgp` subprocess: this Neo4j, its own KGP_HOME, nothing inherited from the user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
    env.update(NEO4J_URI=neo4j_server.uri, KGP_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if neo4j_server.password:
        env.update(NEO4J_USER=neo4j_server.user or "neo4j", NEO4J_PASSWORD=neo4j_server.password)
    env.update(extra)
    return env


def kgp_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kgplatform.cli.main", *args]


def kgp_run(env: dict[str, str], *args: str, ok: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `kgp ARGS` to the end; with ``ok`` it must exit 0."""
    r = subprocess.run(kgp_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, f"kgp {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}"
    return r


def kill_when(env: dict[str, str], args: list[str], ready: Callable[[], object], what: str,
              timeout_s: float = 600, poll_s: float = 0.03) -> object:
    """Start `kgp ARGS`, SIGKILL it as soon as ``ready()`` returns something truthy (polled while it runs), and
    return that value. Fails if the command ends before the kill point was seen."""
    proc = subprocess.Popen(kgp_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            seen = ready()
            if seen:
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                pytest.fail(f"kgp {' '.join(args)} ended (exit {proc.returncode}) before {what}:\n{err}")
            assert time.monotonic() < deadline, f"not {what} within {timeout_s:.0f} s"
            time.sleep(poll_s)
        assert proc.poll() is None, f"kgp {' '.join(args)} had already finished when {what}"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return seen


def one_error(r: subprocess.CompletedProcess, code: int | None = None) -> str:
    """The command failed with exactly one `Error:` line (and the expected exit code), without a traceback."""
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert r.returncode != 0 and (code is None or r.returncode == code), (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and len(errors) == 1, r.stderr[-2000:]
    return errors[0]


def count(graph, cypher: str, **params) -> int:
    """One integer from a read query (the kill-point probes)."""
    with graph.driver.session(database=graph.info.database, default_access_mode="READ") as s:
        return int(s.execute_read(lambda tx: tx.run(cypher, params).single()[0]))


def reset(graph) -> None:
    wipe(graph)
    migrate(graph)


GENRES = ["drama", "comedy", "thriller", "documentary", "animation", "western"]


def write_generic(folder: Path, *, items: int, users: int, per_user: int) -> Path:
    """A small generic dataset (items.csv with text, users.csv with a profile, interactions.csv with
    timestamps an hour apart, so every interaction starts a session) for tests that need one in seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["id,title,text"] + [
        f"m{i},Film {i},A {GENRES[i % 6]} about {['a lighthouse', 'two rivals', 'a lost dog', 'a heist'][i % 4]}"
        f" set in {1950 + i % 70}." for i in range(items)]
    (folder / "items.csv").write_text("\n".join(rows) + "\n")
    rows = ["id,age,gender,occupation"] + [f"u{u},{20 + u % 50},{'MF'[u % 2]},{['writer', 'nurse'][u % 2]}"
                                           for u in range(users)]
    (folder / "users.csv").write_text("\n".join(rows) + "\n")
    rows = ["user_id,item_id,timestamp"] + [f"u{u},m{(u * 5 + j) % items},{1_000_000 + 3600 * j}"
                                            for u in range(users) for j in range(per_user)]
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    return folder


def _ingest_cmd() -> list[str]:
    return ["ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA), "--name", NAME]


def _ingest_killed(graph, env, rel_type: str) -> dict:
    """Start an ingest, SIGKILL it as soon as some ``rel_type`` edges are committed; the counts at that moment."""
    kill_when(env, _ingest_cmd(), lambda: graph_stats(graph)["relationships"].get(rel_type, 0) > 0,
              f"some {rel_type} edges were committed", poll_s=0.05)
    return graph_stats(graph)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_ingest_killed_twice_then_rerun_matches_a_clean_run(graph, neo4j_server, tmp_path, data_dir):
    # the clean run: the library call `kgp ingest` makes (load_dataset + write_dataset), in this process
    write_dataset(graph, load_dataset("movielens-100k", TINY, name=NAME, dbpedia_dir=DBPEDIA), progress=False)
    clean = fingerprint(graph)
    assert clean.unkeyed == [] and clean.relationships.get("FACT", 0) > 0 and clean.nodes["User"] == 200

    reset(graph)
    env = kgp_env(neo4j_server, tmp_path / "home", KGP_BATCH_SIZE=BATCH)
    at_first = _ingest_killed(graph, env, "INTERACTED")   # killed during the interactions ...
    assert fingerprint(graph) != clean and at_first["relationships"].get("FACT", 0) == 0, at_first
    at_second = _ingest_killed(graph, env, "FACT")        # ... its re-run killed during the facts ...
    assert fingerprint(graph) != clean, at_second
    kgp_run(env, *_ingest_cmd())                           # ... and the next re-run completes the graph
    assert fingerprint(graph).differences(clean) == [], (at_first, at_second)
    # (that re-running a complete ingest changes nothing, fingerprint and all: tests/ingest/test_ingest_speed.py
    # ::test_first_ingest_creates_and_rerun_merges_to_the_same_graph)
