"""Training benchmark: seconds per epoch and test metrics per model, next to RecBole 1.2.1 references.

Run from the repository root (CPU, low priority, on a machine others share)::

    nice python benchmarks/train.py --datasets amazon-beauty --models pop,bpr,sasrec --json > bench.json
    nice python benchmarks/train.py --pop-check          # the POP harness check against RecBole
    nice python benchmarks/train.py --ikgr-speed         # IKGR s/epoch: full-graph reference vs batch/sampled
    nice python benchmarks/train.py --sasrec-speed       # SASRec s/epoch on Beauty: RecBole's, ours, the output-layer floor

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
    stand-in intents: genres exact, DBpedia categories related) or ``ml-100k-tiny``."""
    data_dir = Path(data_dir)
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


def bench_ikgr_speed(
    data: RecData,
    *,
    variants: list[str],
    rounds: int = 2,
    accuracy_epochs: int = 0,
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

    from kgplatform.eval.evaluate import evaluate
    from kgplatform.eval.stats import bootstrap_interval
    from kgplatform.train.trainer import make_adam

    base = dict(train or {})
    out: dict[str, Any] = {"model": "ikgr", "dataset": data.dataset, "threads": torch.get_num_threads(),
                           "load_average_start": os.getloadavg(), "variants": {}}
    runs = {}
    for v in variants:
        mopts, topts = IKGR_SPEED_VARIANTS[v]
        trainer = Trainer(TrainConfig(device="cpu", cache_dir=cache_dir, **(base | topts)), log=log)
        run = trainer.prepare("ikgr", data, mopts)
        runs[v] = (trainer, run, make_adam(run.net, run.config, run.device))
        out["variants"][v] = {"model_options": mopts, "train_options": topts, "epoch_seconds": [],
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
        for v in variants:
            mopts, topts = IKGR_SPEED_VARIANTS[v]
            cfg = TrainConfig(device="cpu", cache_dir=cache_dir, **(base | topts | {"epochs": accuracy_epochs}))
            trainer = Trainer(cfg, log=log)
            run = trainer.prepare("ikgr", data, mopts)
            loop = trainer.train_loop(run)
            run.net.eval()
            per_user = evaluate(run.net, run.split, "valid", protocols=(FULL,), per_user=True,
                                batch_size=cfg.eval_batch_size, ties=cfg.ties, convention=cfg.convention)
            ci = bootstrap_interval(per_user[FULL]["NDCG@10"].cpu().numpy())
            out["variants"][v]["accuracy"] = {
                "epochs": loop.epochs_run, "best_epoch": loop.best_epoch,
                "valid_ndcg10": ci.mean, "valid_ndcg10_low": ci.low, "valid_ndcg10_high": ci.high,
                "valid_ndcg10_curve": {e.epoch: round(e.valid["NDCG@10"], 4) for e in loop.history if e.valid},
                "epoch_seconds": [round(e.train_seconds, 2) for e in loop.history],
                "epoch_cpu_seconds": [round(e.cpu_seconds, 2) for e in loop.history],
                "load_average_end": os.getloadavg(),
            }
    return out


def format_ikgr_speed(r: dict) -> str:
    lines = [f"{r['dataset']} IKGR seconds per training epoch ({r['threads']} threads; median of interleaved rounds; "
             f"load average {r['load_average_start'][0]:.1f} -> {r['load_average_speed_end'][0]:.1f}):"]
    for v, rec in r["variants"].items():
        ratio = (f"  {rec['speedup']:.2f}x faster than full (CPU {rec['cpu_speedup']:.2f}x)" if "speedup" in rec
                 and v != "full" else "  (reference)" if v == "full" else "")
        lines.append(f"  {v:8s} {rec['seconds_per_epoch']:7.2f} s/epoch  CPU {rec['cpu_seconds_per_epoch']:7.2f} s"
                     f"{ratio}   epochs {rec['epoch_seconds']}")
    for v, rec in r["variants"].items():
        a = rec.get("accuracy")
        if a:
            lines.append(f"  {v:8s} valid full NDCG@10 {a['valid_ndcg10']:.4f} [{a['valid_ndcg10_low']:.4f}, "
                         f"{a['valid_ndcg10_high']:.4f}] after {a['epochs']} epochs (best {a['best_epoch']}; "
                         f"curve {a['valid_ndcg10_curve']}; s/epoch {a['epoch_seconds']})")
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
    p.add_argument("--ikgr-variants", default="full,batch,sampled")
    p.add_argument("--rounds", type=int, default=2, help="--ikgr-speed: interleaved timed epochs per variant")
    p.add_argument("--accuracy-epochs", type=int, default=0,
                   help="--ikgr-speed: also train each variant this many epochs; validation NDCG@10 with intervals")
    p.add_argument("--sasrec-speed", action="store_true",
                   help="SASRec s/epoch on --datasets (default Beauty): ours, the output-layer floor, RecBole's")
    p.add_argument("--no-recbole", action="store_true", help="--sasrec-speed without the RecBole reference")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.ikgr_speed:
        ds = a.datasets if a.datasets != "amazon-beauty" else "ml-100k"
        data = load_dataset(ds, a.data_dir)
        train = dict(MODEL_SETTINGS.get(ds, {}).get("ikgr", {}).get("train", {}))
        out = bench_ikgr_speed(data, variants=a.ikgr_variants.split(","), rounds=a.rounds,
                               accuracy_epochs=a.accuracy_epochs,
                               train=train | {"patience": 100, "num_negatives": a.negatives},
                               cache_dir=a.cache_dir)
        if not a.json:
            print(format_ikgr_speed(out))
    elif a.sasrec_speed:
        ds = a.datasets.split(",")[0]
        data = load_dataset(ds, a.data_dir, intents=False)
        train = dict(MODEL_SETTINGS.get(ds, {}).get("sasrec", {}).get("train", {}))
        out = bench_sasrec_speed(data, rounds=a.rounds, recbole=not a.no_recbole, train=train,
                                 cache_dir=a.cache_dir)
        if not a.json:
            print(format_sasrec_speed(out))
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
