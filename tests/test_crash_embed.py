"""Crash safety of `kgp embed`: SIGKILLed while the item vectors are being written, then re-run, the graph equals a
clean run's (every node's `textEmbedding` present with its `textHash`, the encoder recorded once), and the re-run
encodes only what the killed run had not committed. The clean run and the re-run call `embed_graph` in-process
(what `kgp embed` wraps; it saves loading the encoder twice more); the killed run is the real command.

A small generic dataset (48 items with text, 12 users with a profile) keeps the encoder's work to seconds;
KGP_EMBED_BATCH_SIZE=1 makes `kgp embed` commit 8 vectors per transaction, so the kill lands between commits.
"""
from __future__ import annotations

import pytest

from kgplatform.config import Settings
from kgplatform.embed import embed_graph
from kgplatform.ingest import load_dataset, write_dataset

from .fingerprint import fingerprint
from .test_crash import count, kgp_env, kill_when, reset, write_generic

NAME = "crash-embed"
ITEMS, USERS = 48, 12


def _with_vectors(graph) -> int:
    return count(graph, "MATCH (i:Item {dataset: $d}) WHERE i.textEmbedding IS NOT NULL RETURN count(i)", d=NAME)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_embed_killed_mid_items_then_rerun_matches_a_clean_run(graph, neo4j_server, tmp_path):
    folder = tmp_path / "data"
    write_generic(folder, items=ITEMS, users=USERS, per_user=8)
    parsed = load_dataset("generic", folder, name=NAME)
    home = tmp_path / "home"

    write_dataset(graph, parsed, progress=False)  # the clean run, in-process (the same library call kgp makes)
    settings = Settings(home=home, connection="env")
    embed_graph(graph, settings, dataset=NAME, progress=False)
    clean = fingerprint(graph)
    assert clean.nodes["KgpEncoder"] == 1 and _with_vectors(graph) == ITEMS

    reset(graph)
    write_dataset(graph, parsed, progress=False)
    env = kgp_env(neo4j_server, home, KGP_EMBED_BATCH_SIZE="1")
    kill_when(env, ["embed", "-d", NAME], lambda: 0 < _with_vectors(graph) < ITEMS,
              "some but not all item vectors were committed")
    done = _with_vectors(graph)
    assert 0 < done < ITEMS and fingerprint(graph) != clean
    assert count(graph, "MATCH (i:Item {dataset: $d}) WHERE (i.textEmbedding IS NULL) <> (i.textHash IS NULL) "
                        "RETURN count(i)", d=NAME) == 0  # a vector never without its hash, nor the reverse

    # the re-run, in-process: the library call `kgp embed` wraps, with the encoder the clean run loaded
    report = embed_graph(graph, settings, dataset=NAME, progress=False).labels
    assert (report["Item"].unchanged, report["Item"].encoded) == (done, ITEMS - done)  # resumed, not redone
    assert fingerprint(graph).differences(clean) == []
