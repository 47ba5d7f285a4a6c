"""Crash safety when the *server* dies: the Neo4j Java process SIGKILLed while `kgp ingest` writes the
interactions, restarted (store recovery from its transaction log), the ingest re-run: the graph equals a clean
ingest's, and the ingest that lost its server stopped with one `Error:` line (exit 4, database unreachable), no
traceback.

The session's shared Neo4j is not touched: this test starts its own local server (the project's launcher, as
tests/conftest.py does when there is no Docker) in a temporary home on free ports, and stops it at the end. A
generic dataset of 3,000 interactions written 50 rows per transaction gives the kill many commits to land between.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from kgplatform.db.graph import ConnectionInfo, Graph
from kgplatform.db.server import LocalServer
from kgplatform.ingest import load_dataset, write_dataset

from .fingerprint import fingerprint
from .test_crash import kgp_cmd, kgp_env, kgp_run, one_error, write_generic

NAME = "crash-server"


def _interactions(graph: Graph) -> int:
    with graph.driver.session(database=graph.info.database) as s:
        return s.run("MATCH ()-[r:INTERACTED]->() RETURN count(r)").single()[0]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_server_killed_during_ingest_then_restarted_and_rerun_matches_a_clean_run(graph, tmp_path):
    folder = write_generic(tmp_path / "data", items=300, users=100, per_user=30)
    ingest = ["ingest", "generic", "--path", str(folder), "--name", NAME]
    write_dataset(graph, load_dataset("generic", folder, name=NAME), progress=False)
    clean = fingerprint(graph)  # the same dataset ingested cleanly into the shared server
    assert clean.relationships["INTERACTED"] == 3000

    server = LocalServer(tmp_path / "neo4j", bolt_port=0, http_port=0, auth=False, heap="512m", pagecache="64m")
    info = server.start()
    try:
        own = ConnectionInfo(info.uri, None, None, source="local")
        graph = Graph.open(own)
        # the driver would retry the lost transaction for 30 s before giving up: 2 s shows the same error
        env = kgp_env(own, tmp_path / "home", KGP_BATCH_SIZE="50", KGP_DB_RETRY_S="2")
        proc = subprocess.Popen(kgp_cmd(*ingest), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + 600
            while _interactions(graph) == 0:  # the kill point: the interactions are being written
                assert proc.poll() is None, f"the ingest ended first:\n{proc.stderr.read()[-2000:]}"
                assert time.monotonic() < deadline, "no INTERACTED edge within 600 s"
                time.sleep(0.03)
            os.kill(info.pid, signal.SIGKILL)
            graph.close()
            while server.status() is not None:  # until the killed process is gone (else start() returns it)
                time.sleep(0.05)
            info = server.start()  # a fresh process on the same store (new ports): recovery runs here
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert one_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", err), 4).startswith(
            "Error: cannot reach Neo4j"), err

        own = ConnectionInfo(info.uri, None, None, source="local")
        with Graph.open(own) as graph:
            recovered = fingerprint(graph)
            assert 0 < recovered.relationships.get("INTERACTED", 0) < 3000, recovered.relationships
            kgp_run(kgp_env(own, tmp_path / "home", KGP_BATCH_SIZE="50"), *ingest)
            assert fingerprint(graph).differences(clean) == []
    finally:
        server.stop()
