"""Migrations against the real Neo4j: ordered, recorded, idempotent, edit-proof."""
from __future__ import annotations

from pathlib import Path

import pytest

from kgplatform.db.migrations import load_migrations, migrate, split_statements, status
from kgplatform.errors import MigrationError


def test_second_run_applies_nothing(graph):
    assert migrate(graph) == []
    states = {m.state for m in status(graph)}
    assert states == {"applied"}


def test_constraints_exist(graph):
    rows = graph.read("admin/list_constraints")
    names = {r["name"] for r in rows}
    assert {"user_id", "item_id", "entity_uri", "intent_key", "session_id", "persona_id"} <= names


def test_custom_folder_applies_in_order_and_refuses_edits(graph, tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "V0001__a.cypher").write_text("CREATE INDEX t_a IF NOT EXISTS FOR (n:TmpA) ON (n.x);\n")
    (folder / "V0002__b.cypher").write_text(
        "// comment line\nCREATE INDEX t_b IF NOT EXISTS FOR (n:TmpB) ON (n.x);\n"
        "CREATE INDEX t_c IF NOT EXISTS\nFOR (n:TmpC) ON (n.x);\n")
    # the real migrations are recorded under the same version numbers; use a fresh label space
    graph.write("admin/forget_migrations", versions=[1, 2])
    try:
        applied = migrate(graph, folder)
        assert [m.version for m in applied] == [1, 2]
        assert migrate(graph, folder) == []
        (folder / "V0002__b.cypher").write_text("CREATE INDEX t_b IF NOT EXISTS FOR (n:TmpB) ON (n.y);\n")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            migrate(graph, folder)
    finally:
        graph.write("admin/forget_migrations", versions=[1, 2])
        for name in ("t_a", "t_b", "t_c"):
            graph.run_raw_schema(f"DROP INDEX {name} IF EXISTS")
        migrate(graph)


def test_bad_file_name_is_rejected(tmp_path: Path):
    (tmp_path / "001_init.cypher").write_text("RETURN 1;")
    with pytest.raises(MigrationError, match="V<NNNN>__"):
        load_migrations(tmp_path)


def test_split_statements():
    text = "// c\nCREATE A;\nMATCH (n)\nRETURN n;\nRETURN 'a;b'\n"
    assert split_statements(text) == ["CREATE A", "MATCH (n)\nRETURN n", "RETURN 'a;b'"]


def test_serving_index_on_the_run_dataset(graph):
    """V0004: the newest run of a dataset (read by every recommend) is found through an index on Run.dataset."""
    with graph.driver.session(database=graph.info.database) as s:
        rows = s.run("SHOW INDEXES YIELD name, labelsOrTypes, properties WHERE name = 'run_dataset' "
                     "RETURN labelsOrTypes, properties").data()
    assert rows == [{"labelsOrTypes": ["Run"], "properties": ["dataset"]}]
