"""Two writers at once: each command either succeeds or stops with one `Error:` line (non-zero exit, no
traceback), and the graph is never corrupt: after re-running whatever stopped it equals what the commands write
one after the other.

- two `kgp ingest` of the same dataset at once;
- `kgp extract` while `kgp ingest` writes another dataset (real SmolLM2, a few items);
- two `kgp train` write-backs at once, made to overlap for certain: the test holds the dataset's User nodes
  locked in an open transaction until both write-back transactions are open and waiting, then lets them race;
- two processes creating the vector indexes at once (`kgp embed`, `kgp extract --round 2` shards).
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from kgplatform.ingest import load_dataset, write_dataset

from .conftest import DBPEDIA, TINY, TINY_NAME
from .fingerprint import fingerprint
from .test_crash import count, kgp_cmd, kgp_env, kgp_run, one_error, reset, write_generic
from .test_crash_train import _check_complete

INGEST_TINY = ["ingest", "movielens-100k", "--path", str(TINY), "--dbpedia", str(DBPEDIA), "--name", TINY_NAME]


def _together(env, *commands: list[str], timeout: float = 900) -> list[subprocess.CompletedProcess]:
    """Start every command at once and wait for all of them."""
    procs = [subprocess.Popen(kgp_cmd(*c), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    out = []
    for c, p in zip(commands, procs):
        stdout, stderr = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(c, p.returncode, stdout, stderr))
    return out


def _ok_or_one_error(results: list[subprocess.CompletedProcess]) -> list[list[str]]:
    """Every command exited 0 or with exactly one `Error:` line; the commands to run again."""
    again = []
    for r in results:
        if r.returncode != 0:
            one_error(r)
            again.append(r.args)
        else:
            assert "Traceback" not in r.stderr, r.stderr[-2000:]
    return again


def _waiting(graph) -> int:
    """kgp transactions waiting for a lock: 'Blocked', or 'Closing' (Neo4j 5 takes some write locks at commit)."""
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("SHOW TRANSACTIONS YIELD status, metaData WHERE metaData.app = 'kgplatform' "
                     "AND (status STARTS WITH 'Blocked' OR status = 'Closing') RETURN count(*)").single()[0]


def _popen(env, cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(kgp_cmd(*cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(cmd: list[str], proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=900)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_ingests_of_one_dataset_at_once(tiny_graph, neo4j_server, tmp_path):
    """The second starts while the first has written the dataset's nodes and no edge yet, the worst moment: both
    would see "no interactions yet" and take the first-ingest CREATE path, writing every interaction twice. To
    make that moment certain, the test holds the dataset's User nodes locked (an open transaction that is rolled
    back) from when the first has written them until the second is waiting too. The second must wait for the
    first (the ingest lock, saying so on stderr), then complete the graph without a duplicate."""
    graph = tiny_graph
    clean = fingerprint(graph)
    reset(graph)
    env = kgp_env(neo4j_server, tmp_path / "home", KGP_BATCH_SIZE="200")
    users = "MATCH (u:User {dataset: $d}) RETURN count(u)"
    first = _popen(env, INGEST_TINY)
    second = None
    try:
        deadline = time.monotonic() + 600
        while count(graph, users, d=TINY_NAME) < 200:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.03)
        with graph.driver.session(database=graph.info.database) as s:
            blocker = s.begin_transaction()
            try:
                blocker.run("MATCH (u:User {dataset: $d}) SET u.concurrencyTest = true", d=TINY_NAME).consume()
                assert count(graph, "MATCH ()-[r:INTERACTED]->() RETURN count(r)") == 0
                second = _popen(env, INGEST_TINY)
                seen = 0
                while seen < 3:  # the first waits behind the blocker and the second behind something, for sure
                    seen = seen + 1 if _waiting(graph) >= 2 else 0
                    assert first.poll() is None and second.poll() is None, second.communicate()[1][-2000:]
                    assert time.monotonic() < deadline, "the second ingest never waited"
                    time.sleep(0.2)
            finally:
                blocker.rollback()
        results = [_finish(INGEST_TINY, first), _finish(INGEST_TINY, second)]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    for cmd in _ok_or_one_error(results):
        kgp_run(env, *cmd)
    assert fingerprint(graph).differences(clean) == [], [r.stderr[-600:] for r in results]
    assert count(graph, "MATCH (u:User) WHERE u.concurrencyTest IS NOT NULL RETURN count(u)") == 0
    assert f"waiting for another kgp ingest of {TINY_NAME}" in results[1].stderr, results[1].stderr[-2000:]


@pytest.mark.slow
@pytest.mark.llm
@pytest.mark.timeout(1800)
def test_extract_while_another_dataset_is_ingested(tiny_graph, tiny_parsed, neo4j_server, tmp_path):
    """The ingest starts once the extraction has committed its first item, and the test sees both half-way at
    one moment; both succeed, and the graph equals the two commands run one after the other."""
    graph = tiny_graph
    folder = write_generic(tmp_path / "data", items=300, users=100, per_user=30)
    other = ["ingest", "generic", "--path", str(folder), "--name", "other"]
    extract = ["extract", "--round", "1", "-d", TINY_NAME, "--limit", "6", "--items-only"]
    env = kgp_env(neo4j_server, tmp_path / "home", KGP_BATCH_SIZE="50")
    extracted = "MATCH (i:Item {dataset: $d}) WHERE i.extractStatus IS NOT NULL RETURN count(i)"
    ingested = "MATCH (:User {dataset: 'other'})-[r:INTERACTED]->() RETURN count(r)"
    procs = {"extract": _popen(env, extract)}
    overlap = False
    try:
        deadline = time.monotonic() + 600
        while any(p.poll() is None for p in procs.values()):
            assert time.monotonic() < deadline, "the commands did not finish within 600 s"
            n_extracted = count(graph, extracted, d=TINY_NAME)
            if "ingest" not in procs and n_extracted >= 1:
                procs["ingest"] = _popen(env, other)
            overlap = overlap or (n_extracted < 6 and 0 < count(graph, ingested) < 3000)
            time.sleep(0.05)
        assert "ingest" in procs, _finish(extract, procs["extract"]).stderr[-2000:]
        results = [_finish(extract, procs["extract"]), _finish(other, procs["ingest"])]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    assert overlap, "the ingest never wrote while the extraction was half-way"
    for cmd in _ok_or_one_error(results):
        kgp_run(env, *cmd)
    both = fingerprint(graph)
    assert both.nodes["Intent"] > 0 and both.relationships["INTERACTED"] == 6017 + 3000

    # the same commands one after the other, on a fresh graph (the extraction replays the cached answers; the
    # ingest is the library call `kgp ingest generic` makes, in this process)
    reset(graph)
    write_dataset(graph, tiny_parsed, progress=False)
    write_dataset(graph, load_dataset("generic", folder, name="other"), progress=False)
    kgp_run(env, *extract)
    assert fingerprint(graph).differences(both) == []


def _open_write_backs(graph) -> int:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("SHOW TRANSACTIONS YIELD metaData WHERE metaData.query = 'runs/write_back' "
                     "RETURN count(*)").single()[0]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("model", ["pop", "bpr"])
def test_two_train_write_backs_at_once(tiny_graph, neo4j_server, tmp_path, model):
    graph = tiny_graph
    env = kgp_env(neo4j_server, tmp_path / "home")
    cmds = [["train", model, "-d", TINY_NAME, "--seeds", seed, "--epochs", "2", "--k", "20", "--json"]
            for seed in ("2024", "2025")]
    with graph.driver.session(database=graph.info.database) as s:
        blocker = s.begin_transaction()
        blocker.run("MATCH (u:User {dataset: $d}) SET u.concurrencyTest = true", d=TINY_NAME).consume()
        procs = [subprocess.Popen(kgp_cmd(*c), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in cmds]
        try:
            deadline = time.monotonic() + 600
            while _open_write_backs(graph) < 2:  # both write-backs have begun and wait behind the blocker
                # (only an ended process's stderr can be read here: the other one may wait behind the blocker)
                ended = [p for p in procs if p.poll() is not None]
                assert not ended, [(p.returncode, p.stderr.read()[-2000:]) for p in ended]
                assert time.monotonic() < deadline, "the two write-backs never overlapped"
                time.sleep(0.05)
        finally:
            blocker.rollback()
        results = []
        for c, p in zip(cmds, procs):
            out, err = p.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    for cmd in _ok_or_one_error(results):
        kgp_run(env, *cmd)
    folders = {json.loads(r.stdout)["files"]["json"] for r in results if r.returncode == 0}
    assert len(folders) == sum(r.returncode == 0 for r in results)  # one report folder each, even in one second
    runs = _check_complete(graph, 20)  # the newest run's recommendations only, whole; the other run's none
    assert sorted(r["model"] for r in runs) == [model, model]
    assert count(graph, "MATCH (u:User {dataset: $d}) WHERE u.concurrencyTest IS NOT NULL RETURN count(u)",
                 d=TINY_NAME) == 0
    if model == "bpr":  # the vectors on the nodes are the newest run's, all of them
        newest = runs[-1]["id"]
        assert count(graph, "MATCH (u:User {dataset: $d}) WHERE u.emb_bpr_run <> $run RETURN count(u)",
                     d=TINY_NAME, run=newest) == 0


def test_two_processes_create_the_vector_indexes_at_once(graph):
    """`kgp embed` (and `kgp extract --round 2`, which embeds first: the README runs its shards side by side) create
    the vector indexes with CREATE … IF NOT EXISTS; two at once used to fail one of them with Neo4j's
    EquivalentSchemaRuleAlreadyExists (seen in 4 of 5 tries). Threads stand in for the two processes here."""
    import threading

    from kgplatform.embed import LABEL_SPECS, VECTOR_INDEXES, ensure_vector_indexes

    def states() -> dict[str, str]:
        return {r["name"]: r["state"] for r in graph.read("embed/index_states", names=list(VECTOR_INDEXES.values()))}

    for _ in range(3):
        for spec in LABEL_SPECS.values():
            graph.write(f"embed/drop_{spec.area}_vector_index")
        assert states() == {}
        barrier, errors = threading.Barrier(2), []

        def create() -> None:
            barrier.wait()
            try:
                ensure_vector_indexes(graph, 8)
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(e)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and set(states().values()) == {"ONLINE"}
    for spec in LABEL_SPECS.values():  # leave no 8-d index behind for other tests
        graph.write(f"embed/drop_{spec.area}_vector_index")
