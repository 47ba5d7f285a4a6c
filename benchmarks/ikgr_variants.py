"""IKGR's known weak points, one change at a time, chosen on validation, then tested against the baselines.

Each variant is the base IKGR configuration with one change (the weak points listed in the IKGR issue: the loss's
negatives, the popularity signal, the cosine temperature, TransH, the intent-set shortcut of training pairs, the
external KG's share of the aggregation, the self term, recency of a user's items, weight decay). All rows are trained
over the same seeds on the same split; the variant with the best validation full NDCG@10 is chosen
(:mod:`kgplatform.experiment.variants`) and only then tested against BPR-MF, LightGCN and KGCN (ours, and
RecBole's side by side with ``--with-recbole``) and against itself without intents.

The rows can be split over processes (2 cores: one process for the IKGR rows, one for the baselines and RecBole),
each saving its summaries with ``--save``; ``--merge`` combines them into the report::

    python benchmarks/ikgr_variants.py -d movielens-100k --rows ikgr --seeds 2024,2025 --save /tmp/ikgr.pt
    python benchmarks/ikgr_variants.py -d movielens-100k --rows baselines --seeds 2024,2025 \\
        --with-recbole bpr,lightgcn,kgcn --save /tmp/base.pt
    python benchmarks/ikgr_variants.py --merge /tmp/ikgr.pt /tmp/base.pt --out results/movielens-100k/ikgr-variants.json

Once a variant is chosen, ``--rows NAME+no_aug`` trains it without intents (its own intents ablation), merged too.

Needs the local database with the dataset (and its round-1 intents: ``kgp extract --round 1 -d DATASET``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from kgplatform.config import Settings  # noqa: E402
from kgplatform.experiment.compare import Row, differences, run_comparison  # noqa: E402
from kgplatform.experiment.variants import light_summary, variant_report, variant_rows  # noqa: E402

#: one change each from the base configuration (IKGRConfig defaults)
VARIANTS = {
    "no_aug": {"use_intents": False},
    "full_softmax": {"rec_loss": "full_softmax"},
    "item_bias": {"item_bias": True},
    "tau_0.2": {"rec_temperature": 0.2},
    "no_transh": {"kg_weight": 0.0},
    "pair_without_positive": {"pair_intents_without_positive": True},
    "no_external_kg": {"use_kg": False},
    "self_0.5": {"self_weight": 0.5},
    "recency_20": {"user_recency": 20.0},
    "weight_decay": {},
    # intents only one item satisfies link that item to nothing: drop them (most of a 1.5B model's intents)
    "min_intent_items_2": {"min_intent_items": 2},
    # near-duplicate intents ("thriller film" / "thriller movie") as one, so they link the items of both
    "merge_0.85": {"merge_intents": 0.85},
    "merge_0.85+min_intent_items_2": {"merge_intents": 0.85, "min_intent_items": 2},
    # stage 2: the three switches that pointed up on validation in stage 1, together
    "no_external_kg+tau_0.2+self_0.5": {"use_kg": False, "rec_temperature": 0.2, "self_weight": 0.5},
}
VARIANT_TRAIN = {"weight_decay": {"weight_decay": 1e-5}}
#: variants that change only intent options: without intents they are ``ikgr:no_aug``
INTENT_ONLY = ("min_intent_items_2", "merge_0.85", "merge_0.85+min_intent_items_2")
BASELINES = ("bpr", "lightgcn", "kgcn")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rows(which: str) -> list[Row]:
    rows = []
    if which in ("ikgr", "all"):
        rows += variant_rows("ikgr", {}, VARIANTS, VARIANT_TRAIN)
    if which in ("baselines", "all"):
        rows += [Row(m, m) for m in BASELINES]
    if not rows:
        want = [w.removeprefix("ikgr:") for w in which.split(",")]
        # "NAME+no_aug": a variant without intents, the chosen row's own ablation (run once it is chosen)
        extra = {f"{w}": VARIANTS[w.removesuffix("+no_aug")] | VARIANTS["no_aug"] for w in want
                 if w.endswith("+no_aug") and w.removesuffix("+no_aug") in VARIANTS}
        train = VARIANT_TRAIN | {w: VARIANT_TRAIN.get(w.removesuffix("+no_aug"), {}) for w in extra}
        rows = [r for r in variant_rows("ikgr", {}, VARIANTS | extra, train) if r.variant in want]
    return rows


def _ikgr_train(spec: str) -> dict:
    """``key=value,key=value`` training options for every IKGR row (e.g. the fast recipe
    ``batch_size=4096,lr=0.01``); the baselines keep their own. Checked by ``TrainConfig.validate``."""
    from kgplatform.models.options import parse_assignments
    from kgplatform.train.trainer import TrainConfig

    out = parse_assignments([p.strip() for p in spec.split(",") if p.strip()], "--ikgr-train")
    cfg = TrainConfig(**out).validate()  # coerces "4096" to 4096; a bad one is one TrainingError line
    return {k: getattr(cfg, k) for k in out}


def run(a: argparse.Namespace) -> None:
    from kgplatform.db import connect
    from kgplatform.graph.export import export_recdata

    settings = Settings()
    graph = connect(settings, start_local=True, log=log)
    try:
        data, rep = export_recdata(graph, a.dataset, progress=False)
    finally:
        graph.close()
    log(f"exported {a.dataset} in {rep.seconds:.1f} s ({data.num_intents} intents)")
    torch.set_num_threads(a.threads)
    train = {"device": "cpu", "convention": a.convention, "cache_dir": settings.home / "candidates",
             "patience": a.patience} | ({"epochs": a.epochs} if a.epochs else {})
    command = "python benchmarks/ikgr_variants.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    t0 = time.perf_counter()
    done: list = []

    def save(recbole=None, partial=True) -> None:  # after every row, so a failure later keeps what finished
        torch.save({"summaries": done, "recbole": recbole or [], "partial": partial,
                    "command": command, "seconds": time.perf_counter() - t0, "data": data.summary(),
                    "num_intents": data.num_intents, "load_average": list(os.getloadavg()),
                    "convention": a.convention}, a.save)

    def on_row(summary) -> None:
        done.append(light_summary(summary))
        save()

    with tempfile.TemporaryDirectory(prefix="ikgr-variants-") as tmp:
        rows = _rows(a.rows)
        extra = _ikgr_train(a.ikgr_train)
        rows = [dataclasses.replace(r, train_options=extra | r.train_options) if r.model == "ikgr" else r
                for r in rows]
        res = run_comparison(data, rows, seeds=[int(s) for s in a.seeds.split(",")], train=train,
                             out_dir=Path(tmp), with_recbole=[m for m in a.with_recbole.split(",") if m],
                             command=command, log=log, on_row=on_row)
    save(res.recbole, partial=False)
    log(f"saved {len(done)} rows to {a.save}")


def merge(a: argparse.Namespace) -> None:
    parts = [torch.load(p, weights_only=False) for p in a.merge]
    summaries = [s for p in parts for s in p["summaries"]]
    names = [s.model_name for s in summaries]
    candidates = [n for n in names if n.startswith("ikgr:") and not n.endswith("no_aug")]
    ablations = {"ikgr:base": "ikgr:no_aug"} | {c: f"{c}+no_aug" for c in candidates if f"{c}+no_aug" in names}
    # a variant that only changes how intents are used has the base without intents as its no-intents row
    ablations |= {f"ikgr:{v}": "ikgr:no_aug" for v in INTENT_ONLY if f"ikgr:{v}" in names and "ikgr:no_aug" in names}
    report = variant_report(summaries, base="ikgr:base", candidates=candidates,
                            baselines=[b for b in BASELINES if b in names], ablations=ablations)
    report["intents"] = differences(summaries, [(a, b, "intents vs none") for a, b in ablations.items()],
                                    phase="test", metrics=("NDCG@10", "HR@10"))
    doc = {"commands": [p["command"] for p in parts] + ["python benchmarks/ikgr_variants.py "
                                                          + " ".join(shlex.quote(x) for x in sys.argv[1:])],
           "convention": parts[0]["convention"], "protocol": "full ranking over all items",
           "interval_method": "95 % bootstrap over users, seeds pooled", "data": parts[0]["data"],
           "num_intents": parts[0]["num_intents"], "variants": VARIANTS, "variant_train": VARIANT_TRAIN,
           "seconds": [p["seconds"] for p in parts], "partial": [p.get("partial", False) for p in parts], "load_average": [p["load_average"] for p in parts],
           "recbole": [r for p in parts for r in (p["recbole"] or [])], **report}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    for name, r in report["rows"].items():
        v, t = r["valid"]["NDCG@10"], r["test"]["NDCG@10"]
        print(f"{name:<30} valid NDCG@10 {v['mean']:.4f} [{v['low']:.4f}, {v['high']:.4f}]   "
              f"test {t['mean']:.4f} [{t['low']:.4f}, {t['high']:.4f}]")
    print(f"chosen on validation: {report['chosen']}")
    for d in report["valid_differences_vs_base"] + report["test_differences"] + report["intents"]:
        if d["metric"] == "NDCG@10" and d["protocol"] == "full":
            print(f"{d['phase']:<5} {d['a']} - {d['b']}: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                  f"{d['verdict']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--dataset", default="movielens-100k")
    ap.add_argument("--rows", default="all", help="ikgr (base + variants), baselines, all, or variant names")
    ap.add_argument("--seeds", default="2024,2025")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="cap every row's epochs (default: each model's)")
    ap.add_argument("--convention", default="recbole")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ikgr-train", default="", help="key=value,… training options for the IKGR rows only "
                    "(the fast recipe: batch_size=4096,lr=0.01)")
    ap.add_argument("--with-recbole", default="")
    ap.add_argument("--save", help="write this process's summaries here")
    ap.add_argument("--merge", nargs="+", help="saved parts to combine")
    ap.add_argument("--out", help="the merged report (JSON)")
    a = ap.parse_args()
    if a.merge:
        if not a.out:
            ap.error("--merge needs --out")
        merge(a)
    elif a.save:
        run(a)
    else:
        ap.error("give --save (run rows) or --merge/--out")


if __name__ == "__main__":
    main()
