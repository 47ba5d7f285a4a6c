"""Crash safety of `kgp train` and `kgp evaluate --write-back` (SIGKILL), on the tiny MovieLens fixture.

Kill points are read off what the run folder and the server hold, not off a clock:
- *during training*: the new run's ``log.jsonl`` has an epoch and its ``run.json`` does not exist yet;
- *during write-back*: the server lists the open ``runs/write_back`` transaction and it already holds locks
  (it has written); the run folder's ``run.json`` shows training had finished;
- *evaluate mid-way*: the first row (pop) has been written back and the second (bpr) is training.

After each kill the graph must be exactly what it was before the command (the earlier run's Run node,
vectors and recommendations in place, no half-written run); a re-run must write a complete run. BPR with a
fixed seed is deterministic on the CPU, so the re-run's recommendations (user, item, rank, score) and vectors
equal the first run's: the graph then differs from the one-run graph only by the second Run node. Run ids hold
their start time, so Run nodes are compared by model/dataset/seed and their recorded recommendation counts
(see tests/fingerprint.py).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import TINY_NAME
from .fingerprint import fingerprint
from .test_crash import count, kgp_env, kgp_run, kill_when

K = 200  # a write-back of ~40k RECOMMENDED edges: a transaction that stays open long enough to be seen
TRAIN = ["train", "bpr", "-d", TINY_NAME, "--epochs", "10", "--k", str(K)]


def _new_run_dirs(home: Path, before: set[Path]) -> list[Path]:
    return [p for p in (home / "runs").glob("*/*/*") if p.is_dir() and p not in before]


def _run_dirs(home: Path) -> set[Path]:
    return set((home / "runs").glob("*/*/*")) if (home / "runs").is_dir() else set()


def _training(home: Path, before: set[Path]):
    def probe():
        for d in _new_run_dirs(home, before):
            log = d / "log.jsonl"
            if log.is_file() and log.read_text().count("\n") >= 1 and not (d / "run.json").exists():
                return d
        return None
    return probe


def _open_write_back(graph) -> int:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("SHOW TRANSACTIONS YIELD metaData, activeLockCount "
                     "WHERE metaData.query = 'runs/write_back' AND activeLockCount > 0 RETURN count(*)").single()[0]


def _no_write_back_left(graph, timeout_s: float = 60) -> None:
    """The server has rolled back the killed client's transaction (it notices the closed connection)."""
    deadline = time.monotonic() + timeout_s
    with graph.driver.session(database=graph.info.database) as s:
        while s.run("SHOW TRANSACTIONS YIELD metaData WHERE metaData.query = 'runs/write_back' "
                    "RETURN count(*)").single()[0]:
            assert time.monotonic() < deadline, "the killed write-back's transaction is still open"
            time.sleep(0.1)


def _runs(graph) -> list[dict]:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("""
            MATCH (r:Run {dataset: $d})
            OPTIONAL MATCH (:User)-[e:RECOMMENDED {run: r.id}]->(:Item)
            WITH r, count(e) AS edges
            OPTIONAL MATCH (u:User)-[e:RECOMMENDED {run: r.id}]->(:Item)
            WITH r, edges, u, count(e) AS per_user
            RETURN r.id AS id, r.model AS model, r.finished AS finished, r.recommendations AS recorded, edges,
                   max(per_user) AS most, min(per_user) AS fewest
            ORDER BY r.finished""", d=TINY_NAME).data()


def _check_complete(graph, k: int | None = None) -> list[dict]:
    """Every run is whole: the newest run of each model holds exactly the recommendations it recorded (at most k
    per user), older runs none (the newest wins), and no RECOMMENDED edge belongs to an unknown run."""
    runs = _runs(graph)
    newest = {r["model"]: r["id"] for r in runs}
    for r in runs:
        if r["id"] == newest[r["model"]]:
            assert r["edges"] == r["recorded"] > 0, r
            assert k is None or r["most"] <= k, r
        else:
            assert r["edges"] == 0, r
    orphans = count(graph, "MATCH ()-[e:RECOMMENDED]->() WHERE NOT EXISTS { MATCH (r:Run {id: e.run}) } "
                           "RETURN count(e)")
    assert orphans == 0
    return runs


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_train_killed_in_training_and_in_write_back_then_rerun(tiny_graph, neo4j_server, tmp_path):
    graph, home = tiny_graph, tmp_path / "home"
    env = kgp_env(neo4j_server, home)
    kgp_run(env, *TRAIN)
    one_run = fingerprint(graph)
    first = _check_complete(graph, K)
    assert [r["model"] for r in first] == ["bpr"] and first[0]["most"] == K

    before = _run_dirs(home)
    run_dir = kill_when(env, TRAIN, _training(home, before), "the new run had logged an epoch")
    assert not (run_dir / "model.pt").exists()
    assert fingerprint(graph).differences(one_run) == []   # nothing of the killed run reached the graph

    before = _run_dirs(home)
    kill_when(env, TRAIN, lambda: _open_write_back(graph), "its write-back transaction had written")
    _no_write_back_left(graph)
    assert any((d / "run.json").exists() for d in _new_run_dirs(home, before))  # training had finished
    assert fingerprint(graph).differences(one_run) == []   # the previous run's recommendations stay in place

    kgp_run(env, *TRAIN)
    runs = _check_complete(graph, K)
    assert len(runs) == 2 and runs[0]["id"] == first[0]["id"]
    again = fingerprint(graph)
    assert again.nodes["Run"] == 2
    assert again.without("Run").differences(one_run.without("Run")) == []  # same vectors and recommendations


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_evaluate_killed_mid_way_leaves_whole_runs_and_a_rerun_completes(tiny_graph, neo4j_server, tmp_path):
    graph, home = tiny_graph, tmp_path / "home"
    env = kgp_env(neo4j_server, home)
    cmd = ["evaluate", "-d", TINY_NAME, "--models", "pop,bpr", "--seeds", "2024", "--epochs", "10",
           "--write-back", "--json"]

    def pop_written_bpr_training():
        ready = _training(home, set())()
        return ready if ready is not None and ready.parent.name == "bpr" else None

    kill_when(env, cmd, pop_written_bpr_training, "pop was written back and bpr was training")
    runs = _check_complete(graph, 10)
    assert [r["model"] for r in runs] == ["pop"]  # the finished row, whole; nothing of the row that was training
    (out,) = (home / "runs").iterdir()
    assert json.loads((out / "results.json").read_text())["partial"] is True

    r = kgp_run(env, *cmd)
    runs = _check_complete(graph, 10)
    assert sorted(r["model"] for r in runs) == ["bpr", "pop", "pop"]
    assert json.loads(Path(json.loads(r.stdout)["files"]["json"]).read_text())["partial"] is False
