"""Training benchmark: seconds per epoch and test metrics per model, next to RecBole 1.2.1 references.

Run from the repository root (CPU, low priority, on a machine others share)::

    nice python benchmarks/train.py --datasets amazon-beauty --models pop,bpr,sasrec --json > bench.json
    nice python benchmarks/train.py --pop-check          # the POP harness check against RecBole
    nice python benchmarks/train.py --ikgr-speed         # IKGR s/epoch: full-graph reference vs batch/sampled
    nice python benchmarks/train.py --sasrec-speed       # SASRec s/epoch on Beauty: RecBole's, ours, the output-layer floor
    nice python benchmarks/train.py --lightgcn-loader --datasets amazon-games --threads 1 --accuracy-epochs 10
                                                         # LightGCN full-graph vs neighbour-loader training
    nice python benchmarks/train.py --datasets ml-100k --ema 0.97,0.99 --seeds 2024,2025,2026 --patience 5
                                                         # raw weights vs a moving average (--ema-spec MODEL:opts)

Structured as functions so other parts (export, recommend timings) can be added beside ``bench_model``:
``load_dataset``, ``pop_check``, ``bench_model``, ``run``. Progress goes to stderr, results to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kgplatform.data import leave_one_out, sample_negatives  # noqa: E402
from kgplatform.eval import FULL  # noqa: E402
from kgplatform.train import TrainConfig, Trainer  # noqa: E402
from kgplatform.data.recdata import RecData  # noqa: E402
from kgplatform.data.devdata import (  # noqa: E402
    intents_as_kg,
    load_recbole_atomic,
    load_user_sequences,
    read_titles,
    title_word_intents,
)

DEFAULT_DATA = REPO.parent / "shared" / "data"

#: Earlier reference figures (test split), kept for orientation only. Only POP was run here by RecBole itself
#: (the data README's figures and benchmarks/recbole_pop.py); the other rows were quoted, not run on these files,
#: and RecBole's full ranking does not mask history for sequential models, so they are not like for like.
#: For a side-by-side run on the same split under one convention use
#: ``kgp evaluate … --convention recbole --with-recbole MODEL``.
RECBOLE = {
    "amazon-beauty": {
        "pop": {"sampled99": {"HR@10": 0.2874, "NDCG@10": 0.1490, "HR@1": 0.0530},
                FULL: {"HR@10": 0.0088, "NDCG@10": 0.0038}},
        "sasrec": {FULL: {"NDCG@10": 0.0389, "HR@10": 0.0792}, "sampled99": {"NDCG@10": 0.3375},
                   "seconds_per_epoch": 172.0},
    },
    "ml-100k": {
        "bpr": {FULL: {"NDCG@10": 0.0673}, "sampled99": {"NDCG@10": 0.3634}},
        "kgcn": {FULL: {"NDCG@10": 0.0554}, "sampled99": {"NDCG@10": 0.3569}},
        "ktup": {FULL: {"NDCG@10": 0.0373}, "sampled99": {"NDCG@10": 0.2907}},
    },
}

#: Per-dataset model settings used by the benchmark (the rest are the registry defaults).
MODEL_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "amazon-beauty": {
        "sasrec": {"train": {"batch_size": 256, "lr": 1e-3, "eval_every": 1, "patience": 5}},
        "bpr": {"train": {"batch_size": 2048, "lr": 1e-3, "eval_every": 5, "patience": 5}},
        "kgcn": {"train": {"batch_size": 2048, "lr": 2e-3, "eval_every": 5, "patience": 3}},
        "ikgr": {"train": {"batch_size": 2048, "lr": 5e-3, "eval_every": 2, "patience": 4}},
    },
    "ml-100k": {
        "bpr": {"train": {"batch_size": 2048, "lr": 1e-3, "eval_every": 5, "patience": 10}},
        "kgcn": {"train": {"batch_size": 2048, "lr": 2e-3, "eval_every": 5, "patience": 10}},
        "ikgr": {"train": {"batch_size": 1024, "lr": 5e-3, "eval_every": 2, "patience": 5}},
        "sasrec": {"train": {"batch_size": 256, "lr": 1e-3, "eval_every": 1, "patience": 10}},
    },
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_dataset(name: str, data_dir: Path = DEFAULT_DATA, *, intents: bool = True) -> RecData:
    """``amazon-beauty`` (with stand-in title-word intents when ``intents``), ``ml-100k`` (+ Freebase KG;
    stand-in intents: genres exact, DBpedia categories related), ``ml-100k-tiny`` or ``amazon-games``
    (interactions only)."""
    data_dir = Path(data_dir)
    if name == "amazon-games":
        return _load_games(data_dir / "amazon-games" / "Games-6k.test.inter")
    if name == "amazon-beauty":
        d = load_user_sequences(data_dir / "amazon-beauty" / "user_sequence.txt", "amazon-beauty")
        if intents:
            d = title_word_intents(d, read_titles(data_dir / "amazon-beauty" / "item_titles.txt"))
        return d
    if name in ("ml-100k", "ml-100k-tiny"):
        prefix = (data_dir / "movielens-100k" / "ml-100k") if name == "ml-100k" else (
            data_dir / "movielens-100k-tiny" / "test")
        d = load_recbole_atomic(prefix, name)
        if intents:
            d = _movielens_intents(d, prefix.with_suffix(".item"),
                                   data_dir / "movielens-100k" / "dbpedia" / "enriched.csv")
        return d
    raise SystemExit(f"unknown dataset {name!r}")


def _load_games(path: Path) -> RecData:
    """LLMRank Games-6k: each ``*.test.inter`` row is a user's history then the held-out test item, so history
    + item is the user's full sequence in time order (the validation item is the history's last one)."""
    users, seqs, items = [], [], {}
    with path.open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            users.append(parts[0])
            seqs.append([items.setdefault(i, len(items)) for i in parts[1].split() + [parts[2]]])
    return RecData.from_sequences("amazon-games", users, list(items), seqs)


def _movielens_intents(d: RecData, item_file: Path, enriched: Path | None = None, max_related: int = 6) -> RecData:
    """Stand-in intents until LLM-extracted ones are exported: MovieLens genres as *exact* intents and, when
    the DBpedia enrichment is present, the item's mid-frequency DBpedia categories (used by 15–300 items,
    e.g. "1990s comedy films") as *related* intents."""
    import csv
    import dataclasses
    from collections import Counter

    rows = list(csv.reader(item_file.open(encoding="latin-1"), delimiter="\t", quoting=csv.QUOTE_NONE))
    head = [h.split(":")[0] for h in rows[0]]
    ci, cc = head.index("item_id"), head.index("class")
    index = {iid: k for k, iid in enumerate(d.item_ids)}
    keys: dict[str, int] = {}
    edges = []
    for r in rows[1:]:
        if r[ci] in index:
            for g in r[cc].split():
                edges.append((index[r[ci]], keys.setdefault(g, len(keys)), 0))
    if enriched is not None and enriched.is_file():
        with enriched.open(newline="", encoding="utf-8") as fh:
            recs = [(r["item_id::string"], [c for c in r["subject::string_list"].split("::") if c])
                    for r in csv.DictReader(fh)]
        freq = Counter(c for _, cats in recs for c in cats)
        for iid, cats in recs:
            if iid not in index:
                continue
            kept = sorted((c for c in cats if 15 <= freq[c] <= 300), key=lambda c: (freq[c], c))[:max_related]
            for c in kept:
                name = c.rsplit("Category:", 1)[-1].replace("_", " ")
                edges.append((index[iid], keys.setdefault(name, len(keys)), 1))
    e = torch.tensor(edges, dtype=torch.long).view(-1, 3)
    return dataclasses.replace(d, intent_keys=list(keys), item_intents=e[:, :2].contiguous(),
                               item_intent_kind=e[:, 2].contiguous(),
                               user_intents=torch.zeros(0, 2, dtype=torch.long),
                               user_intent_kind=torch.zeros(0, dtype=torch.long))


def pop_check(data_dir: Path = DEFAULT_DATA, cache_dir: Path | None = None, recbole_seeds: int = 5) -> dict:
    """Our POP on Amazon Beauty vs RecBole 1.2.1's Pop, both protocols, test split.

    Also runs the ``count="recbole"`` emulation of RecBole's batch-counting bug over a few shuffles.
    """
    data = load_dataset("amazon-beauty", data_dir, intents=False)
    cfg = TrainConfig(device="cpu", cache_dir=cache_dir)
    res = Trainer(cfg, log=log).fit("pop", data)
    ref = RECBOLE["amazon-beauty"]["pop"]
    out: dict[str, Any] = {"ours": res.metrics, "recbole": ref, "relative": {}}
    for proto, ms in ref.items():
        out["relative"][proto] = {m: res.metrics["test"][proto][m] / v - 1 for m, v in ms.items()}
    emu = []
    for s in range(recbole_seeds):
        r = Trainer(TrainConfig(device="cpu", cache_dir=cache_dir, seed=s), log=lambda m: None).fit(
            "pop", data, {"count": "recbole"})
        emu.append({p: {m: r.metrics["test"][p][m] for m in ("HR@1", "HR@10", "NDCG@10")} for p in r.metrics["test"]})
    out["recbole_emulation"] = emu
    return out


def bench_model(
    name: str,
    data: RecData,
    *,
    train: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    run_dir: Path | None = None,
) -> dict:
    """Train one model; return seconds/epoch (training only), evaluation seconds and test metrics."""
    cfg = TrainConfig(device="cpu", cache_dir=cache_dir, run_dir=run_dir, **(train or {}))
    t0 = time.perf_counter()
    res = Trainer(cfg, log=log).fit(name, data, model_config)
    wall = time.perf_counter() - t0
    evals = [e.eval_seconds for e in res.log if e.valid is not None]
    return {
        "model": name,
        "dataset": data.dataset,
        "seconds_per_epoch": res.seconds_per_epoch,
        "cpu_seconds_per_epoch": res.cpu_seconds_per_epoch,
        "epoch_seconds": [round(e.train_seconds, 2) for e in res.log],
        "min_epoch_seconds": min((e.train_seconds for e in res.log), default=0.0),
        "valid_eval_seconds": sum(evals) / len(evals) if evals else 0.0,
        "epochs_run": res.epochs_run,
        "best_epoch": res.best_epoch,
        "wall_seconds": wall,
        "eval_params": res.eval_params,
        "test": res.metrics["test"],
        "valid": res.metrics["valid"],
        "train_config": res.train_config,
        "model_config": res.model_config,
        "load_average": os.getloadavg(),
        "reference": RECBOLE.get(data.dataset, {}).get(name),
    }


def bench_seeds(
    name: str,
    data: RecData,
    seeds: list[int],
    *,
    train: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Train once per seed (same split and candidates); mean ± std of every test metric."""
    from kgplatform.train.seeds import run_seeds

    cfg = TrainConfig(device="cpu", cache_dir=cache_dir, **(train or {}))
    summary = run_seeds(name, data, cfg, model_config, seeds=seeds, log=log)
    log(summary.format())
    rec = summary.to_record()
    rec["dataset"] = data.dataset
    rec["cpu_seconds_per_epoch"] = [r.cpu_seconds_per_epoch for r in summary.results]
    rec["best_epochs"] = [r.best_epoch for r in summary.results]
    rec["eval_params"] = [r.eval_params for r in summary.results]
    rec["reference"] = RECBOLE.get(data.dataset, {}).get(name)
    return rec


#: ``--ikgr-speed`` variants: (label, IKGR model options, TrainConfig options). ``full`` is the reference: Eq. 3 on
#: the whole graph at every step and Adam's multi-tensor step, as training ran before issue 13.
IKGR_SPEED_VARIANTS = {
    "full": ({"propagation": "full"}, {"fused_adam": False}),
    "batch": ({"propagation": "batch"}, {"fused_adam": True}),
    "sampled": ({"propagation": "sampled"}, {"fused_adam": True}),
}


def ikgr_speed_variant(spec: str) -> tuple[dict, dict]:
    """``NAME[:key=value,...]`` (:func:`_common.parse_spec`): a named :data:`IKGR_SPEED_VARIANTS` entry with
    options changed, e.g. ``batch:batch_size=4096,lr=0.01`` or ``batch:use_kg=false``: keys that are
    ``IKGRConfig`` fields go to the model, the others to ``TrainConfig``."""
    from _common import parse_spec, split_options

    name, opts = parse_spec(spec)
    if name not in IKGR_SPEED_VARIANTS:
        raise SystemExit(f"unknown IKGR speed variant {name!r} (one of {', '.join(IKGR_SPEED_VARIANTS)})")
    mopts, topts = IKGR_SPEED_VARIANTS[name]
    model_extra, train_extra = split_options("ikgr", opts)
    return mopts | model_extra, topts | train_extra


def _epoch(trainer: Trainer, run, opt) -> tuple[float, float]:
    """One training epoch of ``run`` as :meth:`Trainer.train_loop` runs it (sampler, named losses, Adam);
    ``(wall, CPU)`` seconds."""
    net = run.net
    net.train()
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in trainer._sampler(run):
        losses = net.loss({k: v.to(run.device) for k, v in batch.items()})
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
    return time.perf_counter() - t0, time.process_time() - c0


def _validation_accuracy(model: str, data: RecData, model_options: dict, cfg: TrainConfig) -> tuple[Any, dict]:
    """Train ``model`` afresh under ``cfg`` (validation every ``eval_every`` epochs, best weights kept), then
    validation full-ranking NDCG@10 per user: ``(per-user values, record with the 95 % bootstrap interval over
    users, the validation curve and the epoch timings)``."""
    from kgplatform.eval.evaluate import evaluate
    from kgplatform.eval.stats import bootstrap_interval

    trainer = Trainer(cfg, log=log)
    run = trainer.prepare(model, data, model_options)
    loop = trainer.train_loop(run)
    run.net.eval()
    per_user = evaluate(run.net, run.split, "valid", protocols=(FULL,), per_user=True, batch_size=cfg.eval_batch_size,
                        ties=cfg.ties, convention=cfg.convention)[FULL]["NDCG@10"].cpu().numpy()
    ci = bootstrap_interval(per_user)
    return per_user, {
        "epochs": loop.epochs_run, "best_epoch": loop.best_epoch,
        "valid_ndcg10": ci.mean, "valid_ndcg10_low": ci.low, "valid_ndcg10_high": ci.high,
        "valid_ndcg10_curve": {e.epoch: round(e.valid["NDCG@10"], 4) for e in loop.history if e.valid},
        "epoch_seconds": [round(e.train_seconds, 2) for e in loop.history],
        "train_seconds_to_best": round(sum(e.train_seconds for e in loop.history if e.epoch <= loop.best_epoch), 2),
        "epoch_cpu_seconds": [round(e.cpu_seconds, 2) for e in loop.history],
        "load_average_end": os.getloadavg(),
    }


def bench_ikgr_speed(
    data: RecData,
    *,
    variants: list[str],
    rounds: int = 2,
    accuracy_epochs: int = 0,
    accuracy_skip: tuple[str, ...] = (),
    train: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """IKGR seconds per epoch, the full-graph reference and the faster variants in one process.

    Speed: ``rounds`` rounds of one epoch per variant, interleaved (full, batch, sampled, full, ...) so that a
    change of machine load hits every variant alike; each variant keeps its own model and optimiser, all from
    the same seed. Accuracy (``accuracy_epochs`` > 0): each variant trained afresh by the Trainer for that many
    epochs (same seed, batches and initial weights; validation every ``eval_every`` epochs, best weights kept),
    then validation full-ranking NDCG@10 per user with a 95 % bootstrap interval over users."""
    import statistics

    from kgplatform.train.trainer import make_adam

    base = dict(train or {})
    out: dict[str, Any] = {"model": "ikgr", "dataset": data.dataset, "threads": torch.get_num_threads(),
                           "load_average_start": os.getloadavg(), "variants": {}}
    runs = {}
    for v in variants:
        mopts, topts = ikgr_speed_variant(v)
        trainer = Trainer(TrainConfig(device="cpu", cache_dir=cache_dir, **(base | topts)), log=log)
        run = trainer.prepare("ikgr", data, mopts)
        runs[v] = (trainer, run, make_adam(run.net, run.config, run.device))
        out["variants"][v] = {"model_options": mopts, "train_options": topts, "batch_size": run.config.batch_size,
                              "lr": run.config.lr, "epoch_seconds": [],
                              "epoch_cpu_seconds": []}
    for r in range(rounds):
        for v in variants:
            wall, cpu = _epoch(*runs[v])
            rec = out["variants"][v]
            rec["epoch_seconds"].append(round(wall, 2))
            rec["epoch_cpu_seconds"].append(round(cpu, 2))
            log(f"[ikgr-speed] round {r + 1} {v}: {wall:.1f} s/epoch (CPU {cpu:.1f} s), load {os.getloadavg()[0]:.1f}")
    for v in variants:
        rec = out["variants"][v]
        rec["seconds_per_epoch"] = statistics.median(rec["epoch_seconds"])
        rec["cpu_seconds_per_epoch"] = statistics.median(rec["epoch_cpu_seconds"])
    ref = out["variants"].get("full")
    for v in variants:
        rec = out["variants"][v]
        if ref:
            rec["speedup"] = ref["seconds_per_epoch"] / rec["seconds_per_epoch"]
            rec["cpu_speedup"] = ref["cpu_seconds_per_epoch"] / rec["cpu_seconds_per_epoch"]
    out["load_average_speed_end"] = os.getloadavg()
    if accuracy_epochs > 0:
        for v in (v for v in variants if v not in accuracy_skip):
            mopts, topts = ikgr_speed_variant(v)
            cfg = TrainConfig(device="cpu", cache_dir=cache_dir, **(base | topts | {"epochs": accuracy_epochs}))
            _, out["variants"][v]["accuracy"] = _validation_accuracy("ikgr", data, mopts, cfg)
    return out


def bench_bpr_sparse(data: RecData, *, seeds: list[int], cache_dir: Path | None = None,
                     sparse_lrs: list[float] | None = None) -> dict:
    """BPR-MF with dense Adam (the default, as RecBole) against ``sparse_grad`` (SparseAdam, lazy: only the rows
    a batch touched move), each trained to early stopping on validation under the model's defaults (convention
    ``recbole``): seconds per epoch and in all, epochs, and validation full-ranking NDCG@10 with the 95 %
    bootstrap interval over users and the paired difference sparse − dense (seeds pooled). ``sparse_lrs``: also
    sparse rows at these learning rates (``sparse_grad@LR``), to choose one on validation."""
    from kgplatform.eval.evaluate import evaluate
    from kgplatform.eval.stats import bootstrap_interval, paired_difference

    out: dict[str, Any] = {"model": "bpr", "dataset": data.dataset, "threads": torch.get_num_threads(),
                           "seeds": seeds, "convention": "recbole", "split": "valid", "protocol": FULL,
                           "load_average_start": os.getloadavg(), "rows": {}}
    per_user: dict[str, list] = {}
    variants = [("dense", {}, None), ("sparse_grad", {"sparse_grad": True}, None)]
    variants += [(f"sparse_grad@{lr:g}", {"sparse_grad": True}, lr) for lr in sparse_lrs or []]
    for label, opts, lr in variants:
        rows = []
        for seed in seeds:
            cfg = TrainConfig(device="cpu", convention="recbole", seed=seed, cache_dir=cache_dir,
                              **({"lr": lr} if lr is not None else {}))
            trainer = Trainer(cfg, log=log)
            run = trainer.prepare("bpr", data, opts)
            loop = trainer.train_loop(run)
            run.net.eval()
            v = evaluate(run.net, run.split, "valid", protocols=(FULL,), per_user=True, convention="recbole",
                         batch_size=cfg.eval_batch_size)[FULL]["NDCG@10"].cpu().numpy()
            per_user.setdefault(label, []).append(v)
            secs = [e.train_seconds for e in loop.history]
            rows.append({"seed": seed, "epochs": loop.epochs_run, "best_epoch": loop.best_epoch,
                         "train_seconds": round(sum(secs), 2), "seconds_per_epoch": round(sum(secs) / len(secs), 4),
                         "cpu_seconds_per_epoch": round(sum(e.cpu_seconds for e in loop.history) / len(secs), 4)})
            log(f"[bpr-sparse] {label} seed {seed}: {rows[-1]}")
        ci = bootstrap_interval(np.stack(per_user[label]))
        out["rows"][label] = {"runs": rows, "valid_ndcg10": ci.mean, "valid_ndcg10_low": ci.low,
                              "valid_ndcg10_high": ci.high}
    for label in per_user:
        if label == "dense":
            continue
        d = paired_difference(np.stack(per_user[label]), np.stack(per_user["dense"]), names=(label, "dense"))
        out["rows"][label]["difference_vs_dense"] = {"mean": d.mean, "low": d.low, "high": d.high,
                                                     "p_value": d.p_value}
        if label == "sparse_grad":
            out["difference_sparse_minus_dense"] = out["rows"][label]["difference_vs_dense"]
    out["load_average_end"] = os.getloadavg()
    return out


def bench_ema(data: RecData, *, model: str, seeds: list[int], decays: list[float], model_options: dict,
              train: dict[str, Any], cache_dir: Path | None = None) -> dict:
    """Raw weights against ``ema_decay`` (the Trainer validates, keeps and returns a moving average of the
    parameters), each trained to early stopping on validation over ``seeds``: how much the validation curve swings
    (mean absolute change of NDCG@10 between consecutive evaluations, all and over the curve's second half), and
    validation and test full-ranking NDCG@10 at the kept weights with 95 % bootstrap intervals over users (seeds
    pooled) and the paired difference to the raw rows. Settings are chosen on validation; the test columns only
    report what that choice gives."""
    from kgplatform.eval.stats import bootstrap_interval, paired_difference

    out: dict[str, Any] = {"model": model, "dataset": data.dataset, "threads": torch.get_num_threads(),
                           "seeds": seeds, "protocol": FULL, "model_options": model_options, "train": train,
                           "load_average_start": os.getloadavg(), "rows": {}}
    per_user: dict[str, dict[str, list]] = {}
    for label, decay in [("raw", None)] + [(f"ema_decay={d:g}", d) for d in decays]:
        runs = []
        for seed in seeds:
            extra = {"ema_decay": decay} if decay else {}
            cfg = TrainConfig(device="cpu", seed=seed, cache_dir=cache_dir, **(train | extra))
            res = Trainer(cfg, log=log).fit(model, data, model_options)
            curve = [e.valid["NDCG@10"] for e in res.log if e.valid]
            for phase in ("valid", "test"):
                per_user.setdefault(label, {}).setdefault(phase, []).append(
                    res.per_user[phase][FULL]["NDCG@10"].cpu().numpy())
            runs.append({"seed": seed, "epochs": res.epochs_run, "best_epoch": res.best_epoch,
                         "valid_curve": [round(v, 4) for v in curve],
                         "curve_swing": float(np.mean(np.abs(np.diff(curve)))) if len(curve) > 1 else 0.0,
                         "tail_swing": _tail_swing(curve),
                         "valid_ndcg10": res.metrics["valid"][FULL]["NDCG@10"],
                         "test_ndcg10": res.metrics["test"][FULL]["NDCG@10"], "eval_params": res.eval_params,
                         "seconds_per_epoch": round(res.seconds_per_epoch, 3)})
            log(f"[ema] {label} seed {seed}: {runs[-1]}")
        row: dict[str, Any] = {"runs": runs, "curve_swing": float(np.mean([r["curve_swing"] for r in runs])),
                               "tail_swing": float(np.mean([r["tail_swing"] for r in runs]))}
        for phase in ("valid", "test"):
            ci = bootstrap_interval(np.stack(per_user[label][phase]))
            row[phase] = {"ndcg10": ci.mean, "low": ci.low, "high": ci.high}
            if label != "raw":
                d = paired_difference(np.stack(per_user[label][phase]), np.stack(per_user["raw"][phase]),
                                      names=(label, "raw"))
                row[phase]["difference_vs_raw"] = {"mean": d.mean, "low": d.low, "high": d.high, "p_value": d.p_value}
        out["rows"][label] = row
    out["load_average_end"] = os.getloadavg()
    return out


def _tail_swing(curve: list[float]) -> float:
    """Mean absolute change between consecutive evaluations over the curve's second half (the plateau, where a
    change is noise rather than learning)."""
    tail = curve[len(curve) // 2:]
    return float(np.mean(np.abs(np.diff(tail)))) if len(tail) > 1 else 0.0


def format_ema(r: dict) -> str:
    lines = [f"{r['dataset']} {r['model']}, raw weights vs a moving average (ema_decay), trained to early stopping, "
             f"seeds {r['seeds']}, full ranking NDCG@10 at the kept weights:"]
    for label, row in r["rows"].items():
        cells = []
        for phase in ("valid", "test"):
            x = row[phase]
            d = x.get("difference_vs_raw")
            cells.append(f"{phase} {x['ndcg10']:.4f} [{x['low']:.4f}, {x['high']:.4f}]"
                         + (f" (vs raw {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}])" if d else ""))
        lines.append(f"  {label:16s} swing {row['curve_swing']:.4f} (2nd half {row['tail_swing']:.4f})  "
                     + "  ".join(cells)
                     + f"  best epochs {[x['best_epoch'] for x in row['runs']]}")
    return "\n".join(lines)


def format_bpr_sparse(r: dict) -> str:
    lines = [f"{r['dataset']} BPR-MF, dense Adam vs sparse_grad (SparseAdam), trained to early stopping, seeds "
             f"{r['seeds']}, convention recbole, validation full ranking:"]
    for label, row in r["rows"].items():
        runs = row["runs"]
        lines.append(f"  {label:12s} NDCG@10 {row['valid_ndcg10']:.4f} [{row['valid_ndcg10_low']:.4f}, "
                     f"{row['valid_ndcg10_high']:.4f}]  s/epoch {[x['seconds_per_epoch'] for x in runs]}  "
                     f"epochs {[x['epochs'] for x in runs]}  training s {[x['train_seconds'] for x in runs]}")
    for label, row in r["rows"].items():
        d = row.get("difference_vs_dense")
        if d:
            lines.append(f"  {label} - dense: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    return "\n".join(lines)


def _emit(out: dict, a: argparse.Namespace, argv: list[str] | None, fmt) -> None:
    """Record the command in ``out``, print ``fmt(out)`` (or nothing with ``--json``), write ``--out``."""
    out["command"] = "nice -n 5 python benchmarks/train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if not a.json:
        print(fmt(out))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2, default=str) + "\n")


def _variant_list(text: str) -> list[str]:
    """``--ikgr-variants``: split on ``;`` when any variant carries options, else on ``,``."""
    return [v.strip() for v in (text.split(";") if ":" in text else text.split(",")) if v.strip()]


def format_ikgr_speed(r: dict) -> str:
    lines = [f"{r['dataset']} IKGR seconds per training epoch ({r['threads']} threads; median of interleaved rounds; "
             f"load average {r['load_average_start'][0]:.1f} -> {r['load_average_speed_end'][0]:.1f}):"]
    for v, rec in r["variants"].items():
        ratio = (f"  {rec['speedup']:.2f}x faster than full (CPU {rec['cpu_speedup']:.2f}x)" if "speedup" in rec
                 and v != "full" else "  (reference)" if v == "full" else "")
        lines.append(f"  {v:8s} batch {rec['batch_size']} {rec['seconds_per_epoch']:7.2f} s/epoch  CPU {rec['cpu_seconds_per_epoch']:7.2f} s"
                     f"{ratio}   epochs {rec['epoch_seconds']}")
    for v, rec in r["variants"].items():
        a = rec.get("accuracy")
        if a:
            lines.append(f"  {v:8s} valid full NDCG@10 {a['valid_ndcg10']:.4f} [{a['valid_ndcg10_low']:.4f}, "
                         f"{a['valid_ndcg10_high']:.4f}] after {a['epochs']} epochs (best {a['best_epoch']}; "
                         f"curve {a['valid_ndcg10_curve']}; training seconds to the best epoch "
                         f"{a.get('train_seconds_to_best')}; s/epoch {a['epoch_seconds']})")
    return "\n".join(lines)


def _output_layer_epoch(trainer: Trainer, run) -> tuple[float, float]:
    """The part of a SASRec epoch no encoder change can remove: for every batch of the same sampler, the
    all-item logits of its targets (``h @ E^T``, ``h`` a stand-in ``[targets, d]`` leaf), the cross-entropy, and
    their backward into ``h`` and ``E``; ``(wall, CPU)`` seconds."""
    emb = run.net.item_emb.weight.detach()[: run.net.num_items].clone().requires_grad_(True)
    d = emb.shape[1]
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in trainer._sampler(run):
        m = int((batch["target"] >= 0).sum())
        h = torch.randn(m, d, requires_grad=True)
        logits = h @ emb.t()
        loss = torch.nn.functional.cross_entropy(logits, batch["target"][batch["target"] >= 0], reduction="sum")
        loss.backward()
        emb.grad = None
    return time.perf_counter() - t0, time.process_time() - c0


def bench_sasrec_speed(data: RecData, *, rounds: int = 2, recbole: bool = True, train: dict[str, Any] | None = None,
                       cache_dir: Path | None = None) -> dict:
    """SASRec seconds per training epoch: ours (the Trainer's sampler, loss and Adam step), the output-layer
    floor of the same epoch (:func:`_output_layer_epoch`), and RecBole 1.2.1's SASRec (its defaults, one
    training epoch, timed by the worker without evaluation) on the same interactions, in one session, with
    the same number of torch threads. Ours and the floor alternate for ``rounds`` rounds."""
    import statistics
    import tempfile

    from kgplatform.graph.export import save_recbole
    from kgplatform.train.trainer import make_adam

    threads = torch.get_num_threads()
    out: dict[str, Any] = {"model": "sasrec", "dataset": data.dataset, "threads": threads,
                           "load_average_start": os.getloadavg()}
    trainer = Trainer(TrainConfig(device="cpu", cache_dir=cache_dir, **dict(train or {})), log=log)
    run = trainer.prepare("sasrec", data, {})
    opt = make_adam(run.net, run.config, run.device)
    sampler = trainer._sampler(run)
    out["targets_per_epoch"] = sampler.num_targets
    out["windows_per_epoch"] = int(sampler.win_len.numel())
    ours: dict[str, list[float]] = {"wall": [], "cpu": []}
    floor: dict[str, list[float]] = {"wall": [], "cpu": []}
    for r in range(rounds):
        for rec, fn in ((ours, lambda: _epoch(trainer, run, opt)), (floor, lambda: _output_layer_epoch(trainer, run))):
            wall, cpu = fn()
            rec["wall"].append(round(wall, 2))
            rec["cpu"].append(round(cpu, 2))
        log(f"[sasrec-speed] round {r + 1}: ours {ours['wall'][-1]:.1f} s (CPU {ours['cpu'][-1]:.1f}), output-layer "
            f"floor {floor['wall'][-1]:.1f} s (CPU {floor['cpu'][-1]:.1f}), load {os.getloadavg()[0]:.1f}")
    out["ours"] = {"epoch_seconds": ours["wall"], "epoch_cpu_seconds": ours["cpu"],
                   "seconds_per_epoch": statistics.median(ours["wall"]),
                   "cpu_seconds_per_epoch": statistics.median(ours["cpu"])}
    out["output_layer_floor"] = {"epoch_seconds": floor["wall"], "epoch_cpu_seconds": floor["cpu"],
                                 "seconds_per_epoch": statistics.median(floor["wall"]),
                                 "cpu_seconds_per_epoch": statistics.median(floor["cpu"])}
    out["ours_over_floor"] = out["ours"]["seconds_per_epoch"] / out["output_layer_floor"]["seconds_per_epoch"]
    out["load_average_ours_end"] = os.getloadavg()
    if recbole:
        from kgplatform.eval.recbole import run_recbole

        with tempfile.TemporaryDirectory(prefix="kgp-sasrec-speed-") as tmp:
            save_recbole(data, Path(tmp))
            env_threads = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = str(threads)  # the worker's torch takes the same thread count
            try:
                res = run_recbole(Path(tmp), data.dataset, "SASRec", epochs=1)
            finally:
                if env_threads is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = env_threads
        sec = res.seconds_per_epoch
        cpu = res.epoch_cpu_seconds
        out["recbole"] = {"seconds_per_epoch": sec, "cpu_seconds_per_epoch": (sum(cpu) / len(cpu)) if cpu else None,
                          "config": "RecBole 1.2.1 SASRec defaults (train_batch_size 2048, CE loss), 1 epoch"}
        if sec:
            out["ours_over_recbole"] = out["ours"]["seconds_per_epoch"] / sec
            out["floor_over_recbole"] = out["output_layer_floor"]["seconds_per_epoch"] / sec
        if cpu:
            rc = out["recbole"]["cpu_seconds_per_epoch"]
            out["ours_over_recbole_cpu"] = out["ours"]["cpu_seconds_per_epoch"] / rc
            out["floor_over_recbole_cpu"] = out["output_layer_floor"]["cpu_seconds_per_epoch"] / rc
    out["load_average_end"] = os.getloadavg()
    return out


class _PeakRSS:
    """Peak resident memory over a block, sampled every ``interval`` s by a thread (``/proc/self/statm``), as
    the increase over the RSS at its start after returning freed heap to the system (``malloc_trim``)."""

    def __init__(self, interval: float = 0.002) -> None:
        import threading

        self.interval, self.peak, self.start = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "_PeakRSS":
        import ctypes
        import gc

        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc
            pass
        self.start = self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def increase_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def _peak_step_tensor_mib(net, batches: list[dict], device: torch.device) -> float:
    """Peak tensor memory (MiB) of training steps (forward + backward, gradients set to none before each),
    from the profiler's allocation events: the running sum of allocated minus freed bytes, at its highest,
    over the memory already held when the step starts (parameters, optimiser state)."""
    from torch.profiler import ProfilerActivity, profile

    peak = 0
    for batch in batches:
        net.zero_grad(set_to_none=True)
        batch = {k: v.to(device) for k, v in batch.items()}
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            sum(net.loss(batch).values()).backward()
        events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]")
        held = 0
        for _, nbytes in events:
            held += nbytes
            peak = max(peak, held)
    net.zero_grad(set_to_none=True)
    return peak / 2**20


def _loader_epoch(trainer: Trainer, run, opt) -> dict:
    """One training epoch as :meth:`Trainer.train_loop` runs it, with its peak RSS increase and the size of
    the graph each step propagated over (the whole graph, or the sampled subgraph)."""
    net = run.net
    net.train()
    n_all, e_all = net.num_users + net.num_items, int(net.edge_index.shape[1])
    sizes = []
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    with _PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in trainer._sampler(run):
            losses = net.loss({k: v.to(run.device) for k, v in batch.items()})
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            sizes.append(net.last_subgraph if net.config.loader == "neighbor" else (n_all, e_all))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    nodes = [n for n, _ in sizes]
    edges = [e for _, e in sizes]
    rec = {"seconds": wall, "cpu_seconds": cpu, "peak_rss_increase_mib": mem.increase_mib,
           "rss_start_mib": mem.start / 2**20, "steps": len(sizes),
           "nodes_per_step_mean": sum(nodes) / len(nodes), "nodes_per_step_max": max(nodes),
           "edges_per_step_mean": sum(edges) / len(edges), "edges_per_step_max": max(edges)}
    if run.device.type == "cuda":
        rec["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(run.device) / 2**20
    return rec


def bench_lightgcn_loader(
    data: RecData,
    *,
    fanouts: list[int],
    rounds: int = 2,
    accuracy_epochs: int = 0,
    train: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    device: str = "cpu",
) -> dict:
    """LightGCN trained on the whole graph at every step (the reference) vs on each batch's sampled
    neighbourhood (``loader=neighbor``, fan-outs ``fanouts``), in one process.

    Speed and memory: ``rounds`` interleaved epochs per variant (full, neighbor, full, ...), each variant with
    its own model and optimiser from the same seed; per epoch the wall/CPU seconds, the peak RSS increase
    over the epoch's start, the nodes/edges each step propagated over (and CUDA's peak allocation on a GPU).
    Accuracy (``accuracy_epochs`` > 0): each variant trained afresh by the Trainer for that many epochs (same
    seed, batches and initial weights; best validation weights kept), then validation full-ranking NDCG@10 per
    user with a 95 % bootstrap interval, and the paired neighbor − full difference over the same users."""
    import statistics

    from kgplatform.eval.stats import paired_difference
    from kgplatform.train.trainer import make_adam

    variants = {"full": {"loader": "full"}, "neighbor": {"loader": "neighbor", "num_neighbors": list(fanouts)}}
    base = dict(train or {})
    out: dict[str, Any] = {"model": "lightgcn", "dataset": data.dataset, "threads": torch.get_num_threads(),
                           "device": device, "data": data.summary(), "load_average_start": os.getloadavg(),
                           "variants": {}}
    runs = {}
    for v, mopts in variants.items():
        trainer = Trainer(TrainConfig(device=device, cache_dir=cache_dir, **base), log=log)
        run = trainer.prepare("lightgcn", data, mopts)
        runs[v] = (trainer, run, make_adam(run.net, run.config, run.device))
        out["variants"][v] = {"model_options": mopts, "epochs": []}
    out["graph"] = {"nodes": runs["full"][1].net.num_users + runs["full"][1].net.num_items,
                    "edges": int(runs["full"][1].net.edge_index.shape[1]),
                    "batch_size": runs["full"][1].config.batch_size}
    for v in variants:  # the same three batches for both, after one warm-up step (graph/sampler built)
        trainer, run, _ = runs[v]
        batches = []
        for batch in trainer._sampler(run):
            batches.append(batch)
            if len(batches) == 4:
                break
        _peak_step_tensor_mib(run.net, batches[:1], run.device)
        out["variants"][v]["peak_step_tensor_mib"] = _peak_step_tensor_mib(run.net, batches[1:], run.device)
        log(f"[lightgcn-loader] {v}: peak tensor memory of a training step "
            f"{out['variants'][v]['peak_step_tensor_mib']:.1f} MiB")
    for r in range(rounds):
        for v in variants:
            rec = _loader_epoch(*runs[v])
            out["variants"][v]["epochs"].append(rec)
            log(f"[lightgcn-loader] round {r + 1} {v}: {rec['seconds']:.1f} s/epoch (CPU {rec['cpu_seconds']:.1f} s), "
                f"peak RSS +{rec['peak_rss_increase_mib']:.0f} MiB, {rec['nodes_per_step_mean']:.0f} nodes/step, "
                f"load {os.getloadavg()[0]:.1f}")
    for v in variants:
        rec = out["variants"][v]
        eps = rec["epochs"]
        for key in ("seconds", "cpu_seconds", "peak_rss_increase_mib", "nodes_per_step_mean", "edges_per_step_mean"):
            rec[key] = statistics.median(e[key] for e in eps)
        rec["nodes_per_step_max"] = max(e["nodes_per_step_max"] for e in eps)
    ref = out["variants"]["full"]
    nb = out["variants"]["neighbor"]
    out["ratios_neighbor_over_full"] = {
        k: nb[k] / ref[k] if ref[k] else None
        for k in ("seconds", "cpu_seconds", "peak_step_tensor_mib", "peak_rss_increase_mib", "nodes_per_step_mean",
                  "edges_per_step_mean")}
    out["load_average_speed_end"] = os.getloadavg()
    if accuracy_epochs > 0:
        per_user = {}
        for v, mopts in variants.items():
            cfg = TrainConfig(device=device, cache_dir=cache_dir, **(base | {"epochs": accuracy_epochs}))
            per_user[v], out["variants"][v]["accuracy"] = _validation_accuracy("lightgcn", data, mopts, cfg)
        d = paired_difference(per_user["neighbor"], per_user["full"], names=("neighbor", "full"))
        out["valid_ndcg10_difference"] = {"neighbor_minus_full": d.mean, "low": d.low, "high": d.high, "p": d.p_value}
    return out


def bench_loader_memory(data: RecData, *, fanouts: list[int], batch_sizes: list[int], steps: int = 3,
                        seed: int = 2024) -> dict:
    """Peak tensor memory of one LightGCN training step (forward + backward), full graph vs neighbour loader,
    at several batch sizes: the max over ``steps`` batches after a warm-up step, same seed and batches for
    both, with the nodes each step propagated over."""
    from kgplatform.data import leave_one_out, training_view
    from kgplatform.models import build_model
    from kgplatform.train.samplers import PairSampler

    split = leave_one_out(data)
    train = training_view(data, split)
    out: dict[str, Any] = {"model": "lightgcn", "dataset": data.dataset, "fanouts": fanouts, "threads":
                           torch.get_num_threads(), "load_average_start": os.getloadavg(), "rows": []}
    for b in batch_sizes:
        row: dict[str, Any] = {"batch_size": b}
        for v, opts in (("full", {}), ("neighbor", {"loader": "neighbor", "num_neighbors": list(fanouts)})):
            torch.manual_seed(seed)
            net = build_model("lightgcn", data, split, opts)
            batches = []
            for batch in PairSampler(train, b, torch.Generator().manual_seed(seed)):
                batches.append(batch)
                if len(batches) == steps + 1:
                    break
            _peak_step_tensor_mib(net, batches[:1], torch.device("cpu"))
            mib = _peak_step_tensor_mib(net, batches[1:], torch.device("cpu"))
            n = net.last_subgraph[0] if v == "neighbor" else net.num_users + net.num_items
            row[v] = {"peak_step_tensor_mib": mib, "nodes_last_step": n}
            log(f"[loader-memory] batch {b} {v}: {mib:.1f} MiB, {n} nodes")
        row["neighbor_over_full"] = row["neighbor"]["peak_step_tensor_mib"] / row["full"]["peak_step_tensor_mib"]
        out["rows"].append(row)
    out["graph_nodes"] = data.num_users + data.num_items
    out["load_average_end"] = os.getloadavg()
    return out


def format_sasrec_speed(r: dict) -> str:
    o, f = r["ours"], r["output_layer_floor"]
    lines = [f"{r['dataset']} SASRec seconds per training epoch ({r['threads']} threads, {r['targets_per_epoch']} "
             f"targets in {r['windows_per_epoch']} windows; load {r['load_average_start'][0]:.1f} -> "
             f"{r['load_average_end'][0]:.1f}):",
             f"  ours                {o['seconds_per_epoch']:7.2f} s  CPU {o['cpu_seconds_per_epoch']:7.2f} s  "
             f"epochs {o['epoch_seconds']}",
             f"  output-layer floor  {f['seconds_per_epoch']:7.2f} s  CPU {f['cpu_seconds_per_epoch']:7.2f} s  "
             f"(ours / floor {r['ours_over_floor']:.2f}x)"]
    if r.get("recbole", {}).get("seconds_per_epoch"):
        rb = r["recbole"]
        cpu = (f"  CPU {rb['cpu_seconds_per_epoch']:7.2f} s" if rb.get("cpu_seconds_per_epoch") else "")
        lines.append(f"  RecBole 1.2.1       {rb['seconds_per_epoch']:7.2f} s{cpu}  (ours / RecBole wall "
                     f"{r['ours_over_recbole']:.3f}x"
                     + (f", CPU {r['ours_over_recbole_cpu']:.3f}x" if "ours_over_recbole_cpu" in r else "")
                     + f"; floor / RecBole wall {r['floor_over_recbole']:.3f}x; target <= 0.1x)")
    return "\n".join(lines)


def format_lightgcn_loader(r: dict) -> str:
    g = r["graph"]
    lines = [f"{r['dataset']} LightGCN training, full graph vs neighbour loader ({r['threads']} threads, {r['device']}; "
             f"graph {g['nodes']} nodes, {g['edges']} directed edges, batch {g['batch_size']}; median of interleaved "
             f"epochs; load average {r['load_average_start'][0]:.1f} -> {r['load_average_speed_end'][0]:.1f}):"]
    for v, rec in r["variants"].items():
        lines.append(f"  {v:8s} {rec['seconds']:7.2f} s/epoch  CPU {rec['cpu_seconds']:7.2f} s  step tensors "
                     f"{rec['peak_step_tensor_mib']:6.1f} MiB  peak RSS "
                     f"+{rec['peak_rss_increase_mib']:6.1f} MiB  nodes/step {rec['nodes_per_step_mean']:8.0f} "
                     f"(max {rec['nodes_per_step_max']})  edges/step {rec['edges_per_step_mean']:8.0f}  "
                     f"{rec['model_options']}")
    q = r["ratios_neighbor_over_full"]
    lines.append("  neighbor / full: " + ", ".join(f"{k} {v:.2f}x" for k, v in q.items() if v is not None))
    for v, rec in r["variants"].items():
        a = rec.get("accuracy")
        if a:
            lines.append(f"  {v:8s} valid full NDCG@10 {a['valid_ndcg10']:.4f} [{a['valid_ndcg10_low']:.4f}, "
                         f"{a['valid_ndcg10_high']:.4f}] after {a['epochs']} epochs (best {a['best_epoch']}; "
                         f"curve {a['valid_ndcg10_curve']})")
    if "valid_ndcg10_difference" in r:
        d = r["valid_ndcg10_difference"]
        lines.append(f"  neighbor - full NDCG@10 {d['neighbor_minus_full']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                     f"(paired bootstrap p {d['p']:.3f})")
    return "\n".join(lines)


def run(datasets: list[str], models: list[str], data_dir: Path, *, epochs: int | None, max_seconds: float | None,
        cache_dir: Path | None, run_dir: Path | None, ablations: list[str],
        seeds: list[int] | None = None, num_negatives: int = 99) -> list[dict]:
    results = []
    for ds in datasets:
        data = load_dataset(ds, data_dir)
        log(f"{ds}: {data.summary()}")
        split = leave_one_out(data)
        sample_negatives(split, data.checksum(), num_negatives=num_negatives, cache_dir=cache_dir)  # shared
        for name in models:
            settings = MODEL_SETTINGS.get(ds, {}).get(name, {})
            model_data = data
            if name == "kgcn" and not data.has_kg and data.has_intents:
                model_data = intents_as_kg(data)  # same side information as IKGR, as KG triples
            train = dict(settings.get("train", {}))
            if epochs is not None:
                train["epochs"] = epochs
            if max_seconds:
                train["max_seconds"] = max_seconds
            train["num_negatives"] = num_negatives
            variants = [("", settings.get("model"))]
            if name == "ikgr" and ablations:
                import dataclasses

                from kgplatform.models.ikgr import IKGRConfig

                base = IKGRConfig(**(settings.get("model") or {}))
                variants = [(a, dataclasses.asdict(base.ablation(a))) for a in ablations]
            for label, mcfg in variants:
                if seeds and len(seeds) > 1:
                    r = bench_seeds(name, model_data, seeds, train=train, model_config=mcfg, cache_dir=cache_dir)
                    r["variant"] = label or "default"
                    results.append(r)
                    continue
                r = bench_model(name, model_data, train=train, model_config=mcfg, cache_dir=cache_dir,
                                run_dir=run_dir)
                r["variant"] = label or "default"
                results.append(r)
                log(format_row(r))
    return results


def format_row(r: dict) -> str:
    t = r["test"]
    samp = next(k for k in t if k.startswith("sampled"))
    var = f"[{r['variant']}]" if r.get("variant") not in (None, "default") else ""
    return (f"{r['dataset']:14s} {r['model'] + var:22s} {r['seconds_per_epoch']:7.1f} s/epoch "
            f"(min {r['min_epoch_seconds']:.1f}, cpu {r['cpu_seconds_per_epoch']:.1f}) "
            f"({r['epochs_run']} ep, best {r['best_epoch']})  full HR@10 {t[FULL]['HR@10']:.4f} "
            f"NDCG@10 {t[FULL]['NDCG@10']:.4f} | {samp} HR@1 {t[samp]['HR@1']:.4f} HR@10 {t[samp]['HR@10']:.4f} "
            f"NDCG@10 {t[samp]['NDCG@10']:.4f} MRR {t[samp]['MRR']:.4f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--datasets", default="amazon-beauty")
    p.add_argument("--models", default="pop,bpr,sasrec")
    p.add_argument("--ablations", default="", help="IKGR Table 3 variants, e.g. full,no_aug,exact_only")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=None, help="training time budget per model")
    p.add_argument("--cache-dir", type=Path, default=REPO / "runs" / "candidates")
    p.add_argument("--run-dir", type=Path, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--negatives", type=int, default=99, help="sampled negatives per user (99 = 1 + 99 protocol)")
    p.add_argument("--seeds", default="", help="comma-separated seeds; more than one gives mean ± std")
    p.add_argument("--pop-check", action="store_true")
    p.add_argument("--ikgr-speed", action="store_true",
                   help="IKGR s/epoch of the full-graph reference and the faster variants, same process")
    p.add_argument("--ikgr-variants", default="full,batch,sampled",
                   help="NAME or NAME:key=value,... (training options changed, e.g. batch:batch_size=4096,lr=0.01); "
                        "NAME one of full, batch, sampled; separated by ';' when any has options, else by ','")
    p.add_argument("--accuracy-skip", default="",
                   help="--ikgr-speed: variants (';'-separated) timed but not trained for accuracy, e.g. full, "
                        "whose losses and gradients equal batch's")
    p.add_argument("--rounds", type=int, default=2, help="--ikgr-speed: interleaved timed epochs per variant")
    p.add_argument("--patience", type=int, default=100,
                   help="--ikgr-speed accuracy runs: early-stopping patience in evaluations (100 = run every epoch)")
    p.add_argument("--accuracy-epochs", type=int, default=0,
                   help="--ikgr-speed: also train each variant this many epochs; validation NDCG@10 with intervals")
    p.add_argument("--bpr-sparse", action="store_true",
                   help="BPR-MF dense Adam vs sparse_grad on --datasets, to early stopping: time and validation "
                        "NDCG@10 with intervals (--seeds, default 2024)")
    p.add_argument("--sparse-lrs", default="", help="--bpr-sparse: also sparse rows at these learning rates")
    p.add_argument("--ema", default="", metavar="DECAYS",
                   help="raw weights vs these ema_decay values (comma-separated), the --ema-spec model on --datasets' "
                        "first dataset trained to early stopping over --seeds: curve swing, valid/test NDCG@10 with "
                        "intervals")
    p.add_argument("--ema-spec", default="ikgr:batch_size=4096,lr=0.01",
                   help="--ema: MODEL[:key=value,...], model and training options split by name")
    p.add_argument("--sasrec-speed", action="store_true",
                   help="SASRec s/epoch on --datasets (default Beauty): ours, the output-layer floor, RecBole's")
    p.add_argument("--no-recbole", action="store_true", help="--sasrec-speed without the RecBole reference")
    p.add_argument("--lightgcn-loader", action="store_true",
                   help="LightGCN full-graph vs neighbour-loader training: s/epoch, peak RSS, nodes/step, same process")
    p.add_argument("--fanouts", default="10,10", help="--lightgcn-loader: neighbours per hop (one per layer)")
    p.add_argument("--lr", type=float, default=None, help="--lightgcn-loader: learning rate (default the model's)")
    p.add_argument("--batch-size", type=int, default=None, help="--lightgcn-loader: batch size")
    p.add_argument("--eval-every", type=int, default=None, help="--lightgcn-loader: validation every N epochs")
    p.add_argument("--device", default="cpu", help="--lightgcn-loader: cpu or cuda")
    p.add_argument("--memory-batches", default="",
                   help="--lightgcn-loader: only the step tensor memory at these batch sizes, e.g. 128,512,2048")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.lightgcn_loader:
        data = load_dataset(a.datasets, a.data_dir, intents=False)
        train = {"patience": 100, "num_negatives": a.negatives}
        train |= {k: v for k, v in (("lr", a.lr), ("batch_size", a.batch_size), ("eval_every", a.eval_every))
                  if v is not None}
        if a.memory_batches:
            out = bench_loader_memory(data, fanouts=[int(x) for x in a.fanouts.split(",")],
                                      batch_sizes=[int(x) for x in a.memory_batches.split(",")])
        else:
            out = bench_lightgcn_loader(data, fanouts=[int(x) for x in a.fanouts.split(",")], rounds=a.rounds,
                                        accuracy_epochs=a.accuracy_epochs, train=train, cache_dir=a.cache_dir,
                                        device=a.device)
        out["command"] = "nice -n 5 python benchmarks/train.py " + " ".join(sys.argv[1:] if argv is None else argv)
        if not a.json and not a.memory_batches:
            print(format_lightgcn_loader(out))
        elif not a.json:
            for row in out["rows"]:
                print(f"batch {row['batch_size']:6d}: full {row['full']['peak_step_tensor_mib']:7.1f} MiB, neighbor "
                      f"{row['neighbor']['peak_step_tensor_mib']:7.1f} MiB ({row['neighbor_over_full']:.2f}x; "
                      f"{row['neighbor']['nodes_last_step']} of {out['graph_nodes']} nodes)")
        if a.out:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    elif a.bpr_sparse:
        data = load_dataset(a.datasets.split(",")[0], a.data_dir, intents=False)
        out = bench_bpr_sparse(data, seeds=[int(x) for x in a.seeds.split(",") if x] or [2024],
                               cache_dir=a.cache_dir,
                               sparse_lrs=[float(x) for x in a.sparse_lrs.split(",") if x.strip()])
        _emit(out, a, argv, format_bpr_sparse)
    elif a.ema:
        from _common import parse_spec, split_options

        model, opts = parse_spec(a.ema_spec)
        mopts, topts = split_options(model, opts)
        ds = a.datasets.split(",")[0]
        data = load_dataset(ds, a.data_dir, intents=model == "ikgr")
        train = (dict(MODEL_SETTINGS.get(ds, {}).get(model, {}).get("train", {})) | {"patience": a.patience,
                 "num_negatives": a.negatives} | topts)
        out = bench_ema(data, model=model, seeds=[int(x) for x in a.seeds.split(",") if x] or [2024],
                        decays=[float(x) for x in a.ema.split(",") if x.strip()], model_options=mopts, train=train,
                        cache_dir=a.cache_dir)
        _emit(out, a, argv, format_ema)
    elif a.ikgr_speed:
        ds = a.datasets if a.datasets != "amazon-beauty" else "ml-100k"
        data = load_dataset(ds, a.data_dir)
        train = dict(MODEL_SETTINGS.get(ds, {}).get("ikgr", {}).get("train", {}))
        out = bench_ikgr_speed(data, variants=_variant_list(a.ikgr_variants), rounds=a.rounds,
                               accuracy_epochs=a.accuracy_epochs,
                               accuracy_skip=tuple(v.strip() for v in a.accuracy_skip.split(";") if v.strip()),
                               train=train | {"patience": a.patience, "num_negatives": a.negatives},
                               cache_dir=a.cache_dir)
        _emit(out, a, argv, format_ikgr_speed)
    elif a.sasrec_speed:
        ds = a.datasets.split(",")[0]
        data = load_dataset(ds, a.data_dir, intents=False)
        train = dict(MODEL_SETTINGS.get(ds, {}).get("sasrec", {}).get("train", {}))
        out = bench_sasrec_speed(data, rounds=a.rounds, recbole=not a.no_recbole, train=train,
                                 cache_dir=a.cache_dir)
        _emit(out, a, argv, format_sasrec_speed)
    elif a.pop_check:
        out: Any = pop_check(a.data_dir, a.cache_dir)
        if not a.json:
            for proto, rel in out["relative"].items():
                for m, v in rel.items():
                    print(f"POP {proto:10s} {m:8s} ours {out['ours']['test'][proto][m]:.4f} "
                          f"RecBole {out['recbole'][proto][m]:.4f} ({v:+.1%})")
    else:
        out = run(a.datasets.split(","), [m for m in a.models.split(",") if m], a.data_dir, epochs=a.epochs,
                  max_seconds=a.max_seconds, cache_dir=a.cache_dir, run_dir=a.run_dir,
                  ablations=[x for x in a.ablations.split(",") if x],
                  seeds=[int(x) for x in a.seeds.split(",") if x], num_negatives=a.negatives)
        if not a.json:
            for r in out:
                print(format_row(r) if "test" in r else json.dumps(r))
    if a.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
