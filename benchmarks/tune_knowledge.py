"""Does an LLM re-ranker tuned on prompts *with* fused knowledge use it? Tuned vs untuned, with vs without the
knowledge line, and tuned with knowledge vs tuned without, on the same users and the same stored 99 negatives.

Run from the repository root (any dataset whose graph has ``kgp extract --round knowledge`` profiles)::

    kgp export -d amazon-beauty --format instructions --out DIR
    kgp extract --round knowledge --scope tuning -d amazon-beauty               # optional: prefix-fused profiles
    kgp export -d amazon-beauty --format instructions --train-knowledge tuning --out DIR2          # (optional)
    python benchmarks/tune_knowledge.py prepare --data DIR --work W [--prefix-data DIR2]
    kgp tune -d amazon-beauty --data W/knowledge --out W/adapter-knowledge --steps 360 --lr 5e-4
    kgp tune -d amazon-beauty --data W/blank --out W/adapter-blank --steps 360 --lr 5e-4
    kgp tune -d amazon-beauty --data W/prefix --out W/adapter-prefix --steps 360 --lr 5e-4        # (optional)
    python benchmarks/tune_knowledge.py eval --work W --run untuned --users 120     # one run per call
    ...                                                                              # (see RUNS)
    python benchmarks/tune_knowledge.py report --work W --out results/DATASET/tune-rerank-knowledge.json

``prepare`` keeps the training examples of the users who have a profile (``W/knowledge/train.jsonl``) and writes
the same examples with the knowledge line replaced by "(none yet)" (``W/blank/train.jsonl``): two tunings on the
same users, targets and steps that differ only in that line. It also measures how often a training target's
title shares a word with the user's knowledge, against a test target's: the profiles are fused from the whole
training prefix, so they may name the training target (a cue tuning can learn) but never the test target.
With ``--prefix-data`` (an export whose training examples show the tuning-scope profile, fused from the prefix
before each example's answer) it writes a third set, ``W/prefix/train.jsonl``: the same users, targets and
candidates, only the knowledge line fused without the answer, which removes that cue.
``eval`` scores the test (or validation) users who have a profile, drawn as ``kgp rerank-eval --only-knowledge
--users N --seed S`` draws them, saving after every few users (a cut run keeps what it finished). ``report`` pairs
the runs by user (95 % bootstrap intervals). Progress goes to stderr, figures to stdout.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _common import rerank_in_chunks  # noqa: E402
from kgplatform.graph.instructions import (  # noqa: E402
    example_knowledge, read_instructions, save_instructions, without_knowledge)

HOME = Path.home() / ".kgplatform"
# run name -> (adapter folder in W or None, knowledge line shown)
RUNS = {
    "untuned": (None, True),
    "untuned:no_knowledge": (None, False),
    "tuned": ("adapter-knowledge", True),
    "tuned:no_knowledge": ("adapter-knowledge", False),
    "tuned_blank": ("adapter-blank", False),
    "tuned_prefix": ("adapter-prefix", True),
    "tuned_prefix:no_knowledge": ("adapter-prefix", False),
}
PAIRS = [
    ("tuned", "untuned", "tuning on knowledge prompts vs the untuned model, both shown the knowledge"),
    ("tuned", "tuned:no_knowledge", "what the knowledge line adds to the model tuned with it"),
    ("untuned", "untuned:no_knowledge", "what the knowledge line adds to the untuned model"),
    ("tuned", "tuned_blank", "tuned with knowledge (shown it) vs tuned on the same examples without it"),
    ("tuned_blank", "untuned:no_knowledge", "tuning without knowledge vs the untuned model, neither shown it"),
    ("tuned_prefix", "untuned", "tuning on prefix-fused knowledge vs the untuned model, both shown the knowledge"),
    ("tuned_prefix", "tuned_prefix:no_knowledge", "what the knowledge line adds to the model tuned on prefix-fused "
                                                  "knowledge"),
    ("tuned_prefix", "tuned_blank", "tuned with prefix-fused knowledge (shown it) vs tuned on the same examples "
                                    "without it"),
    ("tuned_prefix", "tuned", "training examples showing knowledge fused before their answer vs fused with it"),
]
METRICS = ("HR@1", "HR@10", "NDCG@10", "MRR")
WORD = re.compile(r"[a-z0-9]{4,}")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _shares_word(knowledge: str | None, title: str) -> bool:
    return bool(knowledge) and bool(set(WORD.findall(knowledge.lower())) & set(WORD.findall(title.lower())))


def cmd_prepare(a) -> None:
    src, work = Path(a.data), Path(a.work)
    split = {p: read_instructions(src / f"{p}.jsonl") for p in ("train", "valid", "test")}
    train = [r for r in split["train"] if example_knowledge(r) is not None]
    if not train:
        raise SystemExit(f"Error: no training example in {src} shows fused knowledge")
    save_instructions({"train": train, "valid": split["valid"], "test": split["test"]}, work / "knowledge")
    save_instructions({"train": [without_knowledge(r) for r in train], "valid": split["valid"],
                       "test": split["test"]}, work / "blank")
    test = [r for r in split["test"] if example_knowledge(r) is not None]
    sets = [("train", train), ("test", test)]
    doc: dict = {"training_examples": len(train), "test_users_with_knowledge": len(test)}
    if a.prefix_data:
        prefix_all = {r["user"]: r for r in read_instructions(Path(a.prefix_data) / "train.jsonl")}
        prefix = []
        for r in train:
            p = prefix_all.get(r["user"])
            if p is None or without_knowledge(p) != without_knowledge(r):
                raise SystemExit(f"Error: {a.prefix_data} does not hold {r['user']}'s training example as {src} "
                                 "does, the knowledge line apart (export both with the same seed and data)")
            prefix.append(p)
        save_instructions({"train": prefix, "valid": split["valid"], "test": split["test"]}, work / "prefix")
        sets.append(("train_prefix", [r for r in prefix if example_knowledge(r) is not None]))
        doc["prefix_examples_with_knowledge"] = len(sets[-1][1])
    doc["target_title_shares_a_word_with_the_knowledge"] = {
        p: sum(_shares_word(example_knowledge(r), r["output"]) for r in rows) / len(rows) for p, rows in sets}
    (work / "prepare.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


def cmd_eval(a) -> None:
    from kgplatform.tune import load_adapter, load_base, rows_with_knowledge, select_rows

    work = Path(a.work)
    adapter, shown = RUNS[a.run]
    rows = select_rows(rows_with_knowledge(read_instructions(work / "knowledge" / f"{a.phase}.jsonl")),
                       a.users, a.seed)
    if not shown:
        rows = [without_knowledge(r) for r in rows]
    base = load_base(a.base, HOME, a.device)
    if adapter is not None:
        load_adapter(base, work / adapter)
    out = work / f"eval-{a.phase}-{a.run.replace(':', '-')}.pt"
    blob = rerank_in_chunks(base, rows, out, f"{a.run} {a.phase}", save_every=a.save_every, log=log)
    print(json.dumps({a.run: {k: float(v.mean()) for k, v in blob["metrics"][a.score].items()},
                      "seconds_per_user": blob["seconds_per_user"]}, indent=2))


def cmd_report(a) -> None:
    from kgplatform.eval.stats import bootstrap_interval, paired_difference

    work = Path(a.work)
    evals = {}
    for run in RUNS:
        f = work / f"eval-{a.phase}-{run.replace(':', '-')}.pt"
        if f.is_file():
            evals[run] = torch.load(f, weights_only=False)
    if not evals:
        raise SystemExit(f"Error: no eval-{a.phase}-*.pt in {work}")
    users = [u for u in next(iter(evals.values()))["users"] if all(u in set(e["users"]) for e in evals.values())]

    def vals(run: str, agg: str) -> dict[str, torch.Tensor]:
        pos = {u: k for k, u in enumerate(evals[run]["users"])}
        idx = torch.tensor([pos[u] for u in users])
        return {k: v[idx] for k, v in evals[run]["metrics"][agg].items()}

    doc: dict = {"commands": a.commands, "phase": a.phase, "score": a.score, "users": len(users),
                 "user_ids": users, "protocol": "1 target + the stored 99 negatives, ties averaged; 95 % bootstrap "
                 "intervals over users (2,000 resamples), differences paired by user",
                 "prepare": json.loads((work / "prepare.json").read_text())}
    doc["tuning"] = {}
    for name in ("adapter-knowledge", "adapter-blank", "adapter-prefix"):
        meta_file = work / name / "tune.json"
        if meta_file.is_file():
            m = json.loads(meta_file.read_text())
            doc["tuning"][name] = {k: m.get(k) for k in ("base", "config", "examples", "data_sha256", "loss_curve",
                                                         "steps", "epochs", "probe_loss_before", "probe_loss_after", "examples_per_s",
                                                         "peak_rss_mb", "seconds")}
    doc["models"] = {r: {"seconds_per_user": round(e["seconds_per_user"], 2),
                         **{k: bootstrap_interval(v.numpy()).to_dict() for k, v in vals(r, a.score).items()
                            if k in METRICS}}
                     for r, e in evals.items()}
    doc["other_score"] = {"score": "sum" if a.score == "mean" else "mean",
                          **{r: {k: float(v.mean()) for k, v in vals(r, "sum" if a.score == "mean" else "mean").items()
                                 if k in METRICS} for r in evals}}
    doc["differences"] = []
    for x, y, why in PAIRS:
        if x in evals and y in evals:
            vx, vy = vals(x, a.score), vals(y, a.score)
            doc["differences"].append({"a": x, "b": y, "why": why, **{
                k: paired_difference(vx[k].numpy(), vy[k].numpy(), names=(x, y)).to_dict() for k in METRICS}})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    for r, row in doc["models"].items():
        print(f"{r:22} " + "  ".join(f"{k} {row[k]['mean']:.3f} [{row[k]['low']:.3f}, {row[k]['high']:.3f}]"
                                     for k in METRICS))
    for d in doc["differences"]:
        print(f"{d['a']} − {d['b']}: " + "  ".join(
            f"{k} {d[k]['mean']:+.3f} [{d[k]['low']:+.3f}, {d[k]['high']:+.3f}]" for k in METRICS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--data", required=True, help="the folder of kgp export --format instructions")
    s.add_argument("--work", required=True)
    s.add_argument("--prefix-data", default=None, help="the folder of kgp export --format instructions "
                                                       "--train-knowledge tuning (writes W/prefix)")
    s = sub.add_parser("eval")
    s.add_argument("--work", required=True)
    s.add_argument("--run", choices=list(RUNS), required=True)
    s.add_argument("--phase", choices=("valid", "test"), default="test")
    s.add_argument("--users", type=int, default=120)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--score", default="mean")
    s.add_argument("--base", default="smollm2")
    s.add_argument("--save-every", type=int, default=5)
    s.add_argument("--device", default="cpu")
    s = sub.add_parser("report")
    s.add_argument("--work", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--phase", choices=("valid", "test"), default="test")
    s.add_argument("--score", default="mean")
    s.add_argument("--commands", nargs="*", default=[" ".join(shlex.quote(x) for x in sys.argv)])
    a = ap.parse_args()
    {"prepare": cmd_prepare, "eval": cmd_eval, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
