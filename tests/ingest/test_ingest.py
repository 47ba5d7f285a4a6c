"""Ingest against the real Neo4j: exact counts, idempotency, validation before any write."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from kgplatform.errors import DataValidationError
from kgplatform.ingest import load_dataset, write_dataset
from kgplatform.stats import graph_stats

from ..conftest import DBPEDIA, TINY, TINY_NAME


def _lines(path: Path) -> list[list[str]]:
    return [l.rstrip("\n").split("\t") for l in path.read_text().splitlines()[1:] if l.strip()]


def expected_tiny_counts() -> dict:
    """Counts computed independently of the loader, straight from the files."""
    items = {r[0] for r in _lines(TINY / "test.item")}
    users = {r[0] for r in _lines(TINY / "test.user")}
    inter = _lines(TINY / "test.inter")
    kg = {tuple(r[:3]) for r in _lines(TINY / "test.kg")}
    dbp = set()
    with (DBPEDIA / "enriched.csv").open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        for row in rows:
            if row[0] in items:
                for col, value in zip(header[2:], row[2:]):
                    for uri in value.split("::"):
                        if uri:
                            dbp.add((row[0], col, uri))
    return {"items": len(items), "users": len(users), "interactions": len(inter),
            "facts": len(kg) + len(dbp), "dbpedia": len(dbp), "freebase": len(kg)}


def test_tiny_ingest_exact_counts(tiny_graph):
    exp = expected_tiny_counts()
    assert exp["interactions"] == 6017 and exp["items"] == 300
    s = graph_stats(tiny_graph)
    assert s["nodes"]["User"] == exp["users"]
    assert s["nodes"]["Item"] == exp["items"]
    assert s["relationships"]["INTERACTED"] == exp["interactions"]
    assert s["relationships"]["FACT"] == exp["facts"]
    assert s["relationships"]["CONTAINS"] == exp["interactions"]  # every interaction sits in one session
    assert s["relationships"]["HAS_SESSION"] == s["nodes"]["Session"]
    assert s["nodes"]["Dataset"] == 1


def test_reingest_changes_nothing(tiny_graph, tiny_parsed):
    before = graph_stats(tiny_graph)
    write_dataset(tiny_graph, tiny_parsed, progress=False)
    assert graph_stats(tiny_graph) == before


def test_freebase_entity_linked_to_item_is_the_item(tiny_graph):
    # Toy Story (item 1) is linked to a Freebase id; its Freebase facts attach to the Item node.
    row = tiny_graph.read_one("explain/item_facts", item=f"{TINY_NAME}:1", limit=500)
    assert row is not None
    sources = {f["source"] for f in row["facts"]}
    assert {"freebase", "dbpedia"} <= sources
    assert any(f["predicate"] == "director" and "John Lasseter" in f["label"] for f in row["facts"])


def test_sessions_split_by_gap():
    from kgplatform.ingest.sessions import build_sessions

    rows = [{"user": "u", "item": f"i{k}", "pos": k, "ts": ts} for k, ts in enumerate([0, 10, 5000, 5001, 9000])]
    sessions, members = build_sessions("d", rows, gap_s=1800)
    assert [s["size"] for s in sessions] == [2, 2, 1]
    assert [m["pos"] for m in members] == [0, 1, 0, 1, 0]
    sessions, _ = build_sessions("d", rows, gap_s=None)
    assert [s["size"] for s in sessions] == [5]


def _copy_tiny(tmp_path: Path) -> Path:
    dst = tmp_path / "tiny"
    shutil.copytree(TINY, dst)
    return dst


def _append(path: Path, line: str) -> int:
    text = path.read_text()
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n")
    return len(path.read_text().splitlines())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: _append(d / "test.inter", "1\t99999\t4\t881250949"), "unknown item_id 99999"),
        (lambda d: _append(d / "test.inter", "1\t1"), "expected 4 tab-separated fields"),
        (lambda d: _append(d / "test.inter", "1\t2\t4\tyesterday"), "is not a number"),
        (lambda d: _append(d / "test.inter", "\t2\t4\t881250949"), "empty id"),
        (lambda d: (d / "test.item").unlink(), "missing *.item file"),
    ],
    ids=["unknown-item", "short-row", "bad-timestamp", "empty-id", "missing-file"],
)
def test_bad_input_stops_before_any_write(graph, tmp_path, mutate, message):
    folder = _copy_tiny(tmp_path)
    line = mutate(folder)
    with pytest.raises(DataValidationError) as err:
        load_dataset("movielens-100k", folder, name="bad", dbpedia_dir=DBPEDIA)
    text = str(err.value)
    assert message in text
    if isinstance(line, int):
        assert f"test.inter:{line}:" in text  # file:line: what is wrong
    assert graph_stats(graph)["nodes"].get("User", 0) == 0


def test_generic_format_round_trip(graph, tmp_path):
    d = tmp_path / "shop"
    d.mkdir()
    (d / "items.csv").write_text("id,title,text,brand\na,Red shoe,A red running shoe,Acme\nb,Blue hat,,Hatco\nc,Green bag,,\n")
    (d / "users.csv").write_text("id,country\nu1,SE\nu2,FR\n")
    (d / "interactions.csv").write_text("user_id,item_id,timestamp,rating\nu1,b,200,4\nu1,a,100,5\nu2,c,50,\n")
    (d / "facts.csv").write_text("item_id,predicate,entity_uri,entity_label\na,brand,urn:brand:acme,Acme\nb,color,urn:color:blue,Blue\n")
    data = load_dataset("generic", d, name="shop")
    write_dataset(graph, data, progress=False)
    s = graph_stats(graph)
    assert s["nodes"]["Item"] == 3 and s["nodes"]["User"] == 2 and s["nodes"]["Entity"] == 2
    assert s["relationships"]["INTERACTED"] == 3 and s["relationships"]["FACT"] == 2
    # u1's sequence is ordered by timestamp, not file order
    seq = graph.read("explain/user_history", user="shop:u1", limit=10)
    assert [r["item"] for r in seq] == ["shop:a", "shop:b"]


def test_generic_unknown_user_is_reported(tmp_path):
    d = tmp_path / "shop"
    d.mkdir()
    (d / "items.csv").write_text("id,title\na,A\n")
    (d / "users.csv").write_text("id\nu1\n")
    (d / "interactions.csv").write_text("user_id,item_id\nu1,a\nu9,a\n")
    with pytest.raises(DataValidationError, match=r"interactions.csv:3: unknown user_id u9"):
        load_dataset("generic", d, name="shop")


def test_interrupted_ingest_resumes_to_the_same_graph(graph, tiny_parsed):
    """A run killed half-way (some interactions and facts written) re-runs to exactly the clean counts."""
    exp = expected_tiny_counts()
    graph.write_rows("ingest/merge_users", tiny_parsed.users)
    graph.write_rows("ingest/merge_items", tiny_parsed.items)
    graph.write_rows("ingest/create_interactions", tiny_parsed.interactions[: len(tiny_parsed.interactions) // 2])
    write_dataset(graph, tiny_parsed, progress=False)
    s = graph_stats(graph)
    assert s["relationships"]["INTERACTED"] == exp["interactions"]
    assert s["relationships"]["FACT"] == exp["facts"]
    assert s["nodes"]["User"] == exp["users"]


def test_tiny_fixture_saved_with_bom_and_crlf_loads_the_same(tmp_path, tiny_parsed):
    """A spreadsheet round trip (UTF-8 BOM, CRLF line ends) changes nothing in what is loaded."""
    folder = _copy_tiny(tmp_path)
    for p in folder.iterdir():
        p.chmod(0o644)
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
    data = load_dataset("movielens-100k", folder, name=TINY_NAME, dbpedia_dir=DBPEDIA)
    assert data.summary() == tiny_parsed.summary()
    assert data.items == tiny_parsed.items and data.interactions == tiny_parsed.interactions


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300"])
def test_non_finite_or_huge_timestamp_is_refused_before_any_write(graph, tmp_path, value):
    folder = _copy_tiny(tmp_path)
    (folder / "test.inter").chmod(0o644)
    line = _append(folder / "test.inter", f"1\t2\t4\t{value}")
    with pytest.raises(DataValidationError, match=rf"test.inter:{line}: column timestamp"):
        load_dataset("movielens-100k", folder, name="bad", dbpedia_dir=DBPEDIA)
    assert graph_stats(graph)["nodes"].get("User", 0) == 0
