"""LLM4SBR results and figures: the rows (backbones alone, LLM4SBR, its ablations, RecBole side by side) on the
users the session-intent round covered, coverage of the inferences, training seconds per epoch per backbone, and the
cache-hit re-run time of the inference round against its LLM time.

Run from the repository root with the local database holding the dataset and its session intents
(``kgp extract --round sessions -d DATASET``)::

    nice -n 5 python benchmarks/llm4sbr.py -d movielens-100k --seeds 2024,2025,2026 --epochs 12 \\
        --set max_seq_len=20 --with-recbole sasrec,gru4rec --out results/movielens-100k/llm4sbr.json

Rows default to LLM4SBR and its ablations on the ``--backbone`` (srgnn or sasrec); ``--users all`` evaluates
every user of the dataset instead (the differences are then also given on the users with an inferred test
prefix). The command is stored in the output. Progress to stderr; the summary to stdout.
"""
from __future__ import annotations

import argparse
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

from kgplatform.config import Settings  # noqa: E402
from kgplatform.db import connect  # noqa: E402
from kgplatform.embed import load_encoder, recorded_encoder  # noqa: E402
from kgplatform.experiment.compare import needs_session_intents, plan_rows  # noqa: E402
from kgplatform.experiment.llm4sbr import llm4sbr_experiment  # noqa: E402
from kgplatform.graph.export import export_recdata  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _rows(spec: str, sets: dict):
    """``llm4sbr[:ablation]`` rows, every one with the options ``sets`` (the backbone among them)."""
    names = [x.strip() for x in spec.split(",") if x.strip()]
    return plan_rows([n for n in names if ":" not in n], [n for n in names if ":" in n], model_options=sets)


def _cache_rerun(graph, settings, dataset: str, users: int) -> dict:
    """Re-run the inference round on the first ``users`` users with ``redo``: every answer comes from the result
    cache (no LLM call); against the LLM seconds of the same prompts recorded when they were first asked."""
    from kgplatform.session_intents import extract_session_intents

    t0 = time.perf_counter()
    s = extract_session_intents(graph, settings, dataset, limit=users, redo=True, use_cache=True, log=lambda m: None)
    return {"users": users, "prefix_views": s.considered, "llm_calls": s.llm_calls, "cached": s.cached,
            "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--dataset", default="movielens-100k")
    ap.add_argument("--rows", default="llm4sbr:no_llm,llm4sbr,llm4sbr:long_only,llm4sbr:short_only,"
                                      "llm4sbr:no_localization,llm4sbr:no_align")
    ap.add_argument("--backbone", default="srgnn", choices=("srgnn", "sasrec"))
    ap.add_argument("--seeds", default="2024")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="model option key=value")
    ap.add_argument("--train", dest="trains", action="append", default=[], help="training option key=value")
    ap.add_argument("--users", default="covered", choices=("covered", "all"))
    ap.add_argument("--convention", default="recbole")
    ap.add_argument("--with-recbole", default="")
    ap.add_argument("--recbole-epochs", action="append", default=[], help="MODEL=N")
    ap.add_argument("--recbole-set", action="append", default=[],
                    help="MODEL.KEY=value, a RecBole setting, e.g. sasrec.MAX_ITEM_LIST_LENGTH=20")
    ap.add_argument("--cache-rerun-users", type=int, default=0, help="also time a cache-hit re-run of N users")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=None, help="folder for the runs and the partial results.json written after "
                                                 "each row (default: a temporary one)")
    a = ap.parse_args()

    from kgplatform.models.options import parse_assignments as kv
    from kgplatform.models.options import parse_model_assignments

    sets = kv(a.sets) | {"backbone": a.backbone}
    rows = _rows(a.rows, sets)
    settings = Settings()
    graph = connect(settings, start_local=True, log=log)
    try:
        sessions, need_answers = needs_session_intents(rows)  # the backbone alone and RecBole read none
        encode = None
        if need_answers:
            rec = recorded_encoder(graph)
            encode = load_encoder(settings, rec["name"] if rec else None).encode
        data, rep = export_recdata(graph, a.dataset, session_intents=sessions, encode_answers=encode,
                                   progress=False)
        log(f"exported {a.dataset} in {rep.seconds:.1f} s with "
            f"{len(data.session_intents) if sessions else 0} session-intent rows")
        cache = _cache_rerun(graph, settings, a.dataset, a.cache_rerun_users) if a.cache_rerun_users else None
    finally:
        graph.close()
    train = {"epochs": a.epochs, "device": "cpu", "convention": a.convention,
             "cache_dir": settings.home / "candidates"} | kv(a.trains)
    rb_epochs = {k: int(v) for k, v in kv(a.recbole_epochs).items()}
    rb_config = parse_model_assignments(a.recbole_set, "--recbole-set")
    command = "python benchmarks/llm4sbr.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llm4sbr-") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        names = [r.name for r in rows]
        compare = [(r, "llm4sbr:no_llm") for r in names if r != "llm4sbr:no_llm" and "llm4sbr:no_llm" in names]
        with_recbole = [m for m in a.with_recbole.split(",") if m]
        # RecBole's counterpart of the backbone is paired, user by user, with the backbone alone
        pairs = ({a.backbone: "llm4sbr:no_llm"} if "llm4sbr:no_llm" in names and a.backbone in with_recbole
                 else {})
        doc = llm4sbr_experiment(data, rows, seeds=[int(s) for s in a.seeds.split(",")], train=train,
                                 out_dir=work, users=a.users, compare=compare, with_recbole=with_recbole,
                                 recbole_epochs=rb_epochs, recbole_config=rb_config, recbole_pairs=pairs,
                                 command=command, log=log)
    doc["seconds"] = time.perf_counter() - t0
    doc["load_average_after"] = list(os.getloadavg())
    doc["backbone"] = a.backbone
    doc["seconds_per_epoch"] = {m["model"]: m.get("seconds_per_epoch") for m in doc["models"]}
    if cache:
        doc["cache_rerun"] = cache
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    for m in doc["models"]:
        iv = m["intervals"]["test"]["full"]["NDCG@10"]
        print(f"{m['model']:<26} test full NDCG@10 {iv['mean']:.4f} [{iv['low']:.4f}, {iv['high']:.4f}]")
    for d in doc["differences"] + doc.get("differences_inferred_users", []):
        if d["protocol"] == "full" and d["metric"] == "NDCG@10":
            print(f"{d['a']} − {d['b']} ({d['why']}{', ' + d['users'] if 'users' in d else ''}): "
                  f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    print(json.dumps({"coverage": doc["coverage"], "seconds_per_epoch": doc["seconds_per_epoch"]}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
