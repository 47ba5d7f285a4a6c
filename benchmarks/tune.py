"""LoRA tuning + LLM re-ranking on MovieLens-100k: tuning examples/s and peak memory, re-ranking latency per user,
and tuned vs untuned vs SASRec/BPR on the same test users and the same stored 99 negatives.

Run from the repository root, one phase at a time (each writes into --work; ``report`` merges)::

    nice -n 5 python benchmarks/tune.py prepare --work W        # instruction JSONL from the raw files
    nice -n 5 python benchmarks/tune.py tune --work W --minutes 22
    nice -n 5 python benchmarks/tune.py eval --work W --which untuned --phase test --users 40
    nice -n 5 python benchmarks/tune.py eval --work W --which tuned --phase test --users 40
    nice -n 5 python benchmarks/tune.py baselines --work W
    python benchmarks/tune.py report --work W --out results/movielens-100k/tune-rerank.json

``prepare`` builds the data contract with the development loader (``load_recbole_atomic``: the same files and
leave-one-out split as the graph export, no Neo4j) and calls the exporter's own ``instruction_examples``; no
user has fused knowledge there (only ~12 MovieLens users had any in the graph), so every ``input`` says
"(none yet)". References measured in the same process: ``tune`` times a few full fine-tuning steps (all weights
trainable) on the same batches; ``eval --which untuned`` scores one user's candidates naively (each prompt +
title run whole) beside the shared-prompt-cache path. Progress to stderr; the figures to stdout.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _common import rerank_in_chunks  # noqa: E402
from kgplatform.data.devdata import _read_atomic, load_recbole_atomic  # noqa: E402
from kgplatform.graph.instructions import instruction_examples, read_instructions, save_instructions  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "movielens-100k" / "ml-100k"
HOME = Path.home() / ".kgplatform"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_data():
    data = load_recbole_atomic(DATA, "movielens-100k", kg=False)
    _, rows = _read_atomic(DATA.with_suffix(".item"))
    return data, {r[0]: r[1].strip() for r in rows}


def cmd_prepare(a) -> None:
    data, titles = load_data()
    ex = instruction_examples(data, titles, {}, seed=2024)
    files = save_instructions(ex, Path(a.work) / "data")
    log(f"wrote {[str(f) for f in files]} ({ {k: len(v) for k, v in ex.items()} })")


def cmd_tune(a) -> None:
    from kgplatform.tune import TuneConfig, load_base, tune
    from kgplatform.tune.lora import answer_loss, collate, encode_example, peak_rss_mb

    work = Path(a.work)
    base = load_base("smollm2", HOME, a.device)
    rss_loaded = peak_rss_mb()
    cfg = TuneConfig(steps=a.steps, lr=a.lr, batch_size=a.batch_size, seed=2024, probe=a.probe, log_every=5,
                     max_seconds=a.minutes * 60)
    rows = read_instructions(work / "data" / "train.jsonl")
    # reference: full fine-tuning (every weight trainable) on the first batches, on a copy of the base
    ref = {}
    if a.ref_steps:
        full = copy.deepcopy(base.model).train()
        opt = torch.optim.AdamW(full.parameters(), lr=1e-5)
        enc = [encode_example(base.tokenizer, r, with_candidates=False, max_length=cfg.max_length) for r in rows]
        t0 = time.perf_counter()
        for s in range(a.ref_steps):
            batch = collate(enc[s * cfg.batch_size:(s + 1) * cfg.batch_size], base.tokenizer.pad_token_id, base.device)
            loss = answer_loss(full, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sec = time.perf_counter() - t0
        ref = {"full_finetune_examples_per_s": round(a.ref_steps * cfg.batch_size / sec, 3), "steps": a.ref_steps,
               "load_average": os.getloadavg()}
        del full, opt
        log(f"reference full fine-tuning: {ref}")
    res = tune(base, work / "data" / "train.jsonl", work / "adapter", cfg, dataset="movielens-100k",
               progress=lambda s, l: log(f"step {s}: loss {l:.4f} ({time.strftime('%H:%M:%S')})"))
    m = res.meta
    doc = {"examples_per_s": m["examples_per_s"], "tokens_per_s": m["tokens_per_s"], "steps": m["steps"],
           "epochs": m["epochs"], "seconds": m["seconds"], "peak_rss_mb": m["peak_rss_mb"],
           "rss_after_load_mb": round(rss_loaded, 1), "probe_loss_before": m["probe_loss_before"],
           "probe_loss_after": m["probe_loss_after"], "reference": ref,
           "ratio_lora_to_full_finetune": (round(m["examples_per_s"] / ref["full_finetune_examples_per_s"], 3)
                                           if ref else None),
           "load_average": os.getloadavg()}
    (work / "tune-bench.json").write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))


def cmd_eval(a) -> None:
    from kgplatform.tune import load_adapter, load_base, naive_scores, select_rows
    from kgplatform.tune.rerank import candidate_scores

    work = Path(a.work)
    base = load_base("smollm2", HOME, a.device)
    if a.which == "tuned":
        load_adapter(base, work / "adapter")
    rows = select_rows(read_instructions(work / "data" / f"{a.phase}.jsonl"), a.users, a.seed)
    ref = {}
    if a.reference:
        r = rows[0]
        t0 = time.perf_counter()
        fast = candidate_scores(base, r)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        slow = naive_scores(base, r)
        t_slow = time.perf_counter() - t0
        ref = {"naive_seconds_per_user": round(t_slow, 2), "cached_seconds_per_user": round(t_fast, 2),
               "ratio_naive_to_cached": round(t_slow / t_fast, 2),
               "max_abs_score_difference": float((fast["sum"] - slow["sum"]).abs().max()),
               "load_average": os.getloadavg()}
        log(f"reference naive scoring: {ref}")
    # scored in chunks, the per-user metrics saved after each, so a run cut short keeps the users it finished
    # (users are drawn by one seeded permutation: the first n of a smaller --users are among a larger one's)
    blob = rerank_in_chunks(base, rows, work / f"eval-{a.phase}-{a.which}.pt", f"{a.which} {a.phase}",
                            save_every=a.save_every, extra={"reference": ref}, log=log)
    print(json.dumps({a.which: {g: {k: float(v.mean()) for k, v in m.items()} for g, m in blob["metrics"].items()},
                      "seconds_per_user": blob["seconds_per_user"], "reference": ref}, indent=2))


def cmd_baselines(a) -> None:
    from kgplatform.train import TrainConfig, Trainer

    work = Path(a.work)
    data, _ = load_data()
    # benchmarks/train.py's ML-100k settings, capped in epochs and wall time (a shared 2-core machine)
    settings = {"sasrec": {"batch_size": 256, "lr": 1e-3, "eval_every": 2, "patience": 5, "epochs": 60},
                "bpr": {"batch_size": 2048, "lr": 1e-3, "eval_every": 5, "patience": 4, "epochs": 150}}
    prev = work / "baselines.pt"
    out = torch.load(prev, weights_only=False) if prev.is_file() else {}  # adds to / replaces earlier models
    for name in a.models.split(","):
        cfg = TrainConfig(device="cpu", cache_dir=None, seed=2024, candidate_seed=2024,
                          max_seconds=a.max_seconds, **settings.get(name, {}))
        t0 = time.perf_counter()
        res = Trainer(cfg, log=log).fit(name, data)
        users = [data.user_ids[u] for u in res.eval_users["test"].tolist()]
        out[name] = {"users": users, "metrics": {k: v.double().cpu() for k, v in res.per_user["test"]["sampled99"].items()},
                     "epochs_run": res.epochs_run, "train_config": res.train_config, "wall_seconds": time.perf_counter() - t0,
                     "test_mean": res.metrics["test"]["sampled99"]}
        log(f"{name}: {res.metrics['test']['sampled99']}")
    torch.save(out, work / "baselines.pt")


def cmd_report(a) -> None:
    from kgplatform.eval.stats import bootstrap_interval, paired_difference

    work = Path(a.work)
    names = ("HR@1", "HR@10", "NDCG@10", "MRR")
    doc: dict = {"dataset": "movielens-100k", "base": "smollm2-135m-instruct-q4_1 (dequantised to float32)",
                 "commands": a.commands, "protocol": "1 target + the stored 99 negatives (kgp convention, seed "
                 "2024), ties averaged; 95 % bootstrap intervals over users (2,000 resamples)"}
    tb = json.loads((work / "tune-bench.json").read_text())
    meta = json.loads((work / "adapter" / "tune.json").read_text())
    doc["tuning"] = {**tb, "config": meta["config"], "examples": meta["examples"],
                     "trainable_parameters": meta["trainable_parameters"], "loss_curve": meta["loss_curve"],
                     "data_sha256": meta["data_sha256"], "versions": meta["versions"]}
    valid = {w: torch.load(work / f"eval-valid-{w}.pt", weights_only=False) for w in ("untuned", "tuned")
             if (work / f"eval-valid-{w}.pt").is_file()}
    if valid:
        doc["valid_aggregate_choice"] = {w: {g: {k: float(v[k].mean()) for k in names} for g, v in e["metrics"].items()}
                                         for w, e in valid.items()}
        doc["valid_users"] = len(next(iter(valid.values()))["users"])
    test = {w: torch.load(work / f"eval-test-{w}.pt", weights_only=False) for w in ("untuned", "tuned")}
    agg = a.score
    tuned_ids = set(test["tuned"]["users"])
    users = [u for u in test["untuned"]["users"] if u in tuned_ids]  # both models scored them (paired)

    def restrict(ids, vals):
        pos = {u: k for k, u in enumerate(ids)}
        idx = torch.tensor([pos[u] for u in users])
        return {k: v[idx] for k, v in vals.items()}

    n_all = len(read_instructions(work / "data" / "test.jsonl"))
    doc["test_users"] = len(users)
    doc["test_users_fraction"] = round(len(users) / n_all, 4)
    doc["test_user_ids"] = users
    doc["score"] = agg
    models = {f"llm-{w}": restrict(e["users"], e["metrics"][agg]) for w, e in test.items()}
    other_agg = "sum" if agg == "mean" else "mean"
    doc["other_score_on_test"] = {f"llm-{w}": {k: float(v.mean()) for k, v in restrict(e["users"], e["metrics"][other_agg]).items()
                                               if k in names} for w, e in test.items()}
    doc["other_score_on_test"]["score"] = other_agg
    if (work / "baselines.pt").is_file():
        for name, b in torch.load(work / "baselines.pt", weights_only=False).items():
            models[name] = restrict(b["users"], b["metrics"])
            doc.setdefault("baselines_all_test_users", {})[name] = {k: b["test_mean"][k] for k in names}
    else:
        doc["baselines_note"] = ("SASRec/BPR were not trained in this run (the shared machine's CPU went to the "
                                 "LLM evaluation); see the README for their 99-negative figures on all users")
    doc["table"] = {m: {k: bootstrap_interval(vals[k].numpy()).to_dict() for k in names} for m, vals in models.items()}
    for w, e in test.items():
        doc["table"][f"llm-{w}"]["seconds_per_user"] = round(e["seconds_per_user"], 2)
        doc["table"][f"llm-{w}"]["load_average_at_end"] = e["load_average"]
    doc["rerank_latency_reference"] = test["untuned"]["reference"]
    doc["differences"] = {
        f"llm-tuned - {other}": {k: paired_difference(models["llm-tuned"][k].numpy(), models[other][k].numpy(),
                                                      names=("llm-tuned", other)).to_dict() for k in names}
        for other in models if other != "llm-tuned"}
    d = doc["differences"]["llm-tuned - llm-untuned"]["HR@1"]
    doc["target_tuned_ahead_of_untuned_on_hr1"] = {
        "met": d["low"] > 0, "mean_difference": d["mean"], "interval": [d["low"], d["high"]],
        "note": "met only if the paired 95 % interval excludes 0; a positive mean alone is reported as not shown"}
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    for m, row in doc["table"].items():
        log(f"{m:12} " + "  ".join(f"{k} {row[k]['mean']:.4f} [{row[k]['low']:.4f}, {row[k]['high']:.4f}]" for k in names))
    print(json.dumps(doc["target_tuned_ahead_of_untuned_on_hr1"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--work", required=True)
    s = sub.add_parser("tune")
    s.add_argument("--work", required=True)
    s.add_argument("--minutes", type=float, default=22.0)
    s.add_argument("--steps", type=int, default=10000)
    s.add_argument("--lr", type=float, default=5e-4)
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--probe", type=int, default=16)
    s.add_argument("--ref-steps", type=int, default=2)
    s.add_argument("--device", default="cpu")
    s = sub.add_parser("eval")
    s.add_argument("--work", required=True)
    s.add_argument("--which", choices=("untuned", "tuned"), required=True)
    s.add_argument("--phase", choices=("valid", "test"), default="test")
    s.add_argument("--users", type=int, default=40)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--save-every", type=int, default=2)
    s.add_argument("--reference", action="store_true", help="also time naive scoring on the first user")
    s.add_argument("--device", default="cpu")
    s = sub.add_parser("baselines")
    s.add_argument("--work", required=True)
    s.add_argument("--models", default="sasrec,bpr")
    s.add_argument("--max-seconds", type=float, default=480.0)
    s = sub.add_parser("report")
    s.add_argument("--work", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--score", default="mean")
    s.add_argument("--commands", nargs="*", default=[" ".join(shlex.quote(x) for x in sys.argv)])
    a = p.parse_args()
    {"prepare": cmd_prepare, "tune": cmd_tune, "eval": cmd_eval, "baselines": cmd_baselines,
     "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
