"""``kgp export --format instructions``: JSONL that validates, prefixes and candidates from the split, the stored
99 negatives for valid/test, knowledge from the graph, and no held-out target in a training input."""
from __future__ import annotations

import json

import pytest

from kgplatform.data import leave_one_out, sample_negatives
from kgplatform.errors import ConfigError
from kgplatform.graph.export import export_recdata, item_titles
from kgplatform.graph.instructions import (FIELDS, RECENT, example_knowledge, instruction_examples,
                                           read_instructions, save_instructions, without_knowledge)
from kgplatform.ingest import write_dataset

DS = "ml-tiny"


@pytest.fixture
def exported(graph, tiny_parsed):
    write_dataset(graph, tiny_parsed, progress=False)
    data, _ = export_recdata(graph, DS, intents=False, text=False, progress=False)
    return data, item_titles(graph, DS)


def test_examples_follow_the_split_and_the_stored_candidates(exported, tmp_path):
    data, titles = exported
    split = leave_one_out(data)
    know = {data.user_ids[0]: "likes: animated comedies"}
    ex = instruction_examples(data, titles, know, split=split, seed=7, train_candidates=5)
    files = save_instructions(ex, tmp_path / "out")
    assert [f.name for f in files] == ["train.jsonl", "valid.jsonl", "test.jsonl"]
    rows = {f.stem: read_instructions(f) for f in files}
    assert len(rows["valid"]) == split.users("valid").numel() and len(rows["test"]) == split.users("test").numel()
    stored = sample_negatives(split, data.checksum(), num_negatives=99, seed=7)
    index = {iid: k for k, iid in enumerate(data.item_ids)}
    for phase in ("valid", "test"):
        users = split.users(phase)
        negs = stored.for_users(phase, users).tolist()
        targets = split.targets(phase, users).tolist()
        for r, t, ng in zip(rows[phase], targets, negs):
            assert set(r) == set(FIELDS) and r["phase"] == phase
            assert r["target"] == data.item_ids[t] and r["output"] == titles[data.item_ids[t]]
            assert sorted(index[c] for c in r["candidates"]) == sorted([t, *ng])
            assert len(r["candidates"]) == 100
    held_out = {}
    for phase in ("valid", "test"):
        for r in rows[phase]:
            held_out.setdefault(r["user"], set()).add(r["target"])
    for r in rows["train"]:
        assert len(r["candidates"]) == 5 and r["target"] in r["candidates"]
        u = data.user_ids.index(r["user"])
        n_train = int(split.train_len[u])
        seq = [data.item_ids[i] for i in data.sequence(u).tolist()]
        assert r["target"] == seq[n_train - 1]
        recent = r["input"].split("Recent items: ", 1)[1].split("\nCandidates:", 1)[0].split("; ")
        assert recent == [titles[i] for i in seq[:n_train - 1][-RECENT:]]
        for t in held_out.get(r["user"], ()):  # no validation/test target anywhere in a training example
            assert t not in r["candidates"]
            assert f"\n{titles[t]}\n" not in r["input"] + "\n" and titles[t] not in recent
    first = rows["train"][0] if rows["train"][0]["user"] == data.user_ids[0] else None
    assert first is None or "User knowledge: likes: animated comedies" in first["input"]
    assert all("User knowledge: (none yet)" in r["input"] for r in rows["train"] if r["user"] != data.user_ids[0])


def test_the_knowledge_line_is_read_and_blanked_with_all_else_equal(exported):
    data, titles = exported
    split = leave_one_out(data)
    know = {data.user_ids[0]: "likes: animated\ncomedies;\n dislikes: horror", data.user_ids[1]: "  \n "}
    ex = instruction_examples(data, titles, know, split=split, seed=7, train_candidates=5)
    for phase, rows in ex.items():
        for r in rows:
            if r["user"] == data.user_ids[0]:  # a multi-line text is kept on the knowledge line, whitespace folded
                assert example_knowledge(r) == "likes: animated comedies; dislikes: horror"
                assert r["input"].count("\n") == without_knowledge(r)["input"].count("\n")
            else:  # no text, or only whitespace, reads as none
                assert example_knowledge(r) is None and "User knowledge: (none yet)\n" in r["input"]
            blank = without_knowledge(r)
            assert example_knowledge(blank) is None and blank["input"].startswith("User knowledge: (none yet)\n")
            assert blank["input"].split("\n")[1:] == r["input"].split("\n")[1:]
            assert {k: v for k, v in blank.items() if k != "input"} == {k: v for k, v in r.items() if k != "input"}
            assert without_knowledge(blank) == blank
    assert example_knowledge({"input": "Recent items: a\nCandidates:"}) is None  # no knowledge line at all


def test_training_examples_can_show_the_tuning_scope_profile(exported):
    """``train_knowledge`` replaces the profile in training examples only; valid/test keep the training scope."""
    data, titles = exported
    split = leave_one_out(data)
    a, b = data.user_ids[0], data.user_ids[1]
    ex = instruction_examples(data, titles, {a: "likes: full", b: "likes: full b"}, split=split, seed=7,
                              train_candidates=5, train_knowledge={a: "likes: before"})
    for phase, rows in ex.items():
        shown = {r["user"]: example_knowledge(r) for r in rows}
        if phase == "train":
            assert shown[a] == "likes: before" and shown.get(b, None) is None  # no tuning profile: none shown
        else:
            assert shown.get(a, "likes: full") == "likes: full" and shown.get(b, "likes: full b") == "likes: full b"
    assert any(r["user"] == a for r in ex["test"]) and any(r["user"] == a for r in ex["train"])


def test_a_corrupt_jsonl_names_its_line(tmp_path):
    good = {k: "x" for k in FIELDS[:6]} | {"candidates": ["x"]}
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.jsonl:2: not JSON"):
        read_instructions(p)
    p.write_text(json.dumps({**good, "candidates": ["y"]}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="target is not among the candidates"):
        read_instructions(p)
    p.write_text(json.dumps({"instruction": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs the fields"):
        read_instructions(p)
