"""Growth benchmark: how ingest, export, a training epoch, write-back and ``recommend`` scale with the data.

Usage::

    nice -n 5 .venv/bin/python benchmarks/growth.py [--fractions 0.25 0.5 1] [--models bpr lightgcn]
        [--users 300] [--repeat 2] [--out results/amazon-games]
    nice -n 5 .venv/bin/python benchmarks/growth.py --epochs-only --models bpr bpr:sparse_grad=true \
        'lightgcn:loader=neighbor,num_neighbors=5,5,sparse_grad=true,batch_size=256' [--stem NAME]

``--epochs-only`` times just the training epochs, without a database (the samples read straight into
``RecData``), for model specs ``NAME[:key=value,...]`` (model options, or ``TrainConfig`` fields such as
``batch_size``), and records each one's validation NDCG@10 after ``--epochs`` epochs beside its time.

**Data.** Sizes 1×, 2×, 4× are user sub-samples of Amazon Video Games (``Games-6k``, 50,546 users): a user is
kept at fraction ``f`` when the first 8 bytes of ``sha1(user_id)``, read as a number in [0, 1), are below ``f``
(``benchmarks/_subsample.py``). Users are kept whole (their full sequence), the samples are nested (1× ⊂ 2× ⊂ 4×: the
same hash, a larger threshold) and the same on every run. Each sample is written as a filtered copy of the two
files the ``amazon-games`` loader reads (``Games-6k.test.inter``: the kept users' rows; ``Games-6k.item``: the
items they took), into a temporary folder, and ingested by the ordinary loader. With the default fractions 4×
is the whole dataset. The *data ratio* printed is that of the relationships written (interactions, sessions,
session membership), not the nominal fraction.

**Per size**, in a fresh throwaway local Neo4j (``benchmarks/_common.py``) warmed up first on a 1 % sample
(ingest, export, an epoch per model, write-back, a few ``recommend`` calls; then wiped, so JIT and query caches are warm
for every size alike):

- ``ingest``: the transactional writer (``write_dataset``), relationships/s;
- ``export``: ``export_recdata`` to ``RecData``, edges/s;
- ``epoch <model>``: a training epoch through the library ``Trainer`` (one torch thread; the median of
  ``--epochs``), training interactions/s (training time only; validation and test evaluation are not in it);
- ``write-back``: the first model's top-10 for every user (``write_back``), recommendations/s;
- ``recommend p50`` / ``p99``: ``kgp recommend``'s read for ``--users`` sampled users (timed as in
  ``benchmarks/serve.py``), against ``floor p99``: the cheapest read (one user by id) in the same loop.

Printed per step: seconds, rate, the ratio to the 1× figure and to the previous size, the data ratio, the
same ratios of CPU seconds (the Neo4j server's plus this process's for the database steps, this process's for
an epoch: less sensitive to other jobs than wall time on a shared machine) and the load average. With
``--repeat N`` the sizes are measured N times, alternately smallest and largest first, each in its own fresh
database, and every figure is the median over the passes (all passes are kept in the JSON). The target of issue 13 is "2× data ≤ 2.1× time" for each step. Written: ``growth.json``
(command, machine, load, every figure) and ``growth.png`` (seconds against the data multiple, log-log, per
step, with the linear-scaling line through each step's 1× point) in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import ROOT, bench_graph, data_dir, parse_spec, peak_rss_mb, split_options
from _subsample import INTER_FILE, subsample_games
from ingest import Meter, load, reset, server_pid
from serve import pct, timed

from kgplatform.db.graph import Graph
from kgplatform.explain import recommend
from kgplatform.graph.export import export_recdata
from kgplatform.graph.writeback import write_back
from kgplatform.ingest import load_dataset, write_dataset
from kgplatform.train import TrainConfig, Trainer

TARGET = 2.1  # issue 13: 2x data in at most 2.1x the time


# ------------------------------------------------------------------------------------------------- measuring
def measure_size(graph: Graph, folder: Path, name: str, args: argparse.Namespace, *, quiet: bool = False) -> dict:
    """Every step on one sample in ``graph`` (empty); figures per step."""
    pid = server_pid(graph)
    steps: dict[str, dict] = {}

    def step(label: str, m: Meter, count: int, unit: str) -> None:
        steps[label] = {"seconds": m.wall, "server_cpu": m.server, "client_cpu": m.client, "count": count,
                        "unit": unit, "rate": count / m.wall if m.wall else float("nan"), "load": os.getloadavg()}

    parsed = load_dataset("amazon-games", folder, name=name)
    with Meter(pid) as m:
        ing = write_dataset(graph, parsed, progress=False)
    step("ingest", m, ing.relationships, "rel/s")
    with Meter(pid) as m:
        rec, rep = export_recdata(graph, name, progress=False)
    step("export", m, rep.edges, "edges/s")
    first = None
    for model in args.models:
        cfg = TrainConfig(device="cpu", epochs=args.epochs, eval_every=args.epochs, num_negatives=args.negatives,
                          tune=False)
        trainer = Trainer(cfg, log=lambda msg: None)
        run = trainer.prepare(model, rec)
        loop = trainer.train_loop(run)
        if first is None:  # test metrics, embeddings: what write-back needs (the other models stop here)
            first = trainer.finish(run, rec, loop)
        wall = statistics.median(e.train_seconds for e in loop.history)
        n = int(run.split.train_len.sum())
        steps[f"epoch {model}"] = {"seconds": wall, "server_cpu": None, "client_cpu": statistics.median(
            e.cpu_seconds for e in loop.history), "count": n, "unit": "interactions/s", "rate": n / wall,
            "epoch_seconds": [e.train_seconds for e in loop.history], "load": os.getloadavg()}
    with Meter(pid) as m:
        wb = write_back(graph, first, rec, k=10)
    step("write-back", m, wb.recommendations, "recs/s")
    users = random.Random(0).sample(list(rec.user_ids), min(args.users, rec.num_users))
    for u in users[:50]:  # plans cached, session pool filled
        recommend(graph, u, k=10)
        graph.serve("recommend/user_exists", user=u)
    lat, floor = [], []
    for u in users:
        lat.append(timed(lambda: recommend(graph, u, k=10))[0] / 1000)
        floor.append(timed(lambda: graph.serve("recommend/user_exists", user=u))[0] / 1000)
    for label, values, q in (("recommend p50", lat, 0.5), ("recommend p99", lat, 0.99), ("floor p99", floor, 0.99)):
        steps[label] = {"seconds": pct(values, q), "server_cpu": None, "client_cpu": None, "count": len(values),
                        "unit": "calls", "rate": None, "load": os.getloadavg()}
    return {"summary": parsed.summary(), "relationships": ing.relationships, "export_edges": rep.edges,
            "train_interactions": steps[f"epoch {args.models[0]}"]["count"], "recommendations": wb.recommendations,
            "steps": steps, "peak_rss_mb": peak_rss_mb()}


def measure_epochs(folder: Path, args: argparse.Namespace) -> dict:
    """``--epochs-only``: a training epoch per model spec on one sample, no database (the sample's files read
    straight into ``RecData``, as ``benchmarks/train.py`` reads Games); also the validation full-ranking NDCG@10
    after ``--epochs`` epochs, so that model options that change the optimisation (``sparse_grad``, the
    neighbour loader) are compared at the same number of epochs."""
    from train import _load_games

    rec = _load_games(folder / INTER_FILE)
    steps: dict[str, dict] = {}
    for spec in args.models:
        name, opts = parse_spec(spec)
        opts, train_opts = split_options(name, opts)
        cfg = TrainConfig(device="cpu", epochs=args.epochs, eval_every=args.epochs, num_negatives=args.negatives,
                          tune=False, patience=100, **train_opts)
        trainer = Trainer(cfg, log=lambda msg: None)
        run = trainer.prepare(name, rec, opts)
        loop = trainer.train_loop(run)
        wall = statistics.median(e.train_seconds for e in loop.history)
        n = int(run.split.train_len.sum())
        valid = [e.valid for e in loop.history if e.valid]
        steps[f"epoch {spec}"] = {
            "seconds": wall, "server_cpu": None,
            "client_cpu": statistics.median(e.cpu_seconds for e in loop.history), "count": n,
            "unit": "interactions/s", "rate": n / wall, "epoch_seconds": [e.train_seconds for e in loop.history],
            "valid_ndcg10": valid[-1]["NDCG@10"] if valid else None, "load": os.getloadavg()}
    summary = {"users": rec.num_users, "items": rec.num_items, "interactions": int(rec.seq_items.numel())}
    return {"summary": summary, "relationships": summary["interactions"], "train_interactions": n, "steps": steps,
            "peak_rss_mb": peak_rss_mb()}


def warm_up(graph: Graph, src: Path, tmp: Path, args: argparse.Namespace) -> None:
    folder = tmp / "warm-up"
    subsample_games(src, folder, 0.01)
    small = argparse.Namespace(**{**vars(args), "users": 60, "epochs": 1})
    measure_size(graph, folder, "warm-up", small)
    reset(graph)


# -------------------------------------------------------------------------------------------------- reporting
def cpu_of(st: dict) -> float | None:
    """Server + client CPU seconds of a step (client only where no server is involved); None if not measured."""
    parts = [v for v in (st["server_cpu"], st["client_cpu"]) if v is not None and v == v]  # not None, not NaN
    return sum(parts) if parts else None


def combine(runs: list[dict], **extra) -> dict:
    """One size's figures over its passes: per step the median seconds and CPU seconds; every pass kept."""
    first = runs[0]
    steps = {}
    for label, st in first["steps"].items():
        per = [r["steps"][label] for r in runs]
        cpus = [c for c in map(cpu_of, per) if c is not None]
        seconds = statistics.median(p["seconds"] for p in per)
        steps[label] = {"seconds": seconds, "cpu": statistics.median(cpus) if cpus else None,
                        "count": st["count"], "unit": st["unit"],
                        "rate": st["count"] / seconds if st["rate"] is not None else None,
                        "passes": per}
    return {**{k: v for k, v in first.items() if k != "steps"}, **extra, "steps": steps,
            "wall": [r["wall"] for r in runs]}


def ratios(sizes: list[dict]) -> None:
    """Adds to every step of every size its ratio to the 1x figure and to the previous size, and the data's."""
    base = sizes[0]
    for k, s in enumerate(sizes):
        prev = sizes[max(k - 1, 0)]
        s["data_ratio_first"] = s["relationships"] / base["relationships"]
        s["data_ratio_previous"] = s["relationships"] / prev["relationships"]
        for label, st in s["steps"].items():
            st["ratio_first"] = st["seconds"] / base["steps"][label]["seconds"]
            st["ratio_previous"] = st["seconds"] / prev["steps"][label]["seconds"]
            if st["cpu"] is not None:
                st["cpu_ratio_first"] = st["cpu"] / base["steps"][label]["cpu"]
                st["cpu_ratio_previous"] = st["cpu"] / prev["steps"][label]["cpu"]


def print_size(s: dict) -> None:
    print(f"\n{s['multiple']:g}x = {s['fraction']:.2%} of the users: {s['summary']['users']:,} users, "
          f"{s['summary']['items']:,} items, {s['summary']['interactions']:,} interactions, "
          f"{s['relationships']:,} relationships (data x{s['data_ratio_first']:.2f} of 1x, "
          f"x{s['data_ratio_previous']:.2f} of the previous)")
    print(f"  {'step':<34}{'seconds':>10}{'rate':>26}{'vs 1x':>8}{'vs prev':>9}{'CPU s':>9}{'vs 1x':>8}"
          f"{'vs prev':>9}  load (per pass)")
    for label, st in s["steps"].items():
        rate = f"{st['rate']:,.0f} {st['unit']}" if st["rate"] is not None else f"{st['count']} calls"
        cpu = (f"{st['cpu']:>9.2f}{st['cpu_ratio_first']:>7.2f}x{st['cpu_ratio_previous']:>8.2f}x"
               if st["cpu"] is not None else f"{'-':>9}{'-':>8}{'-':>9}")
        loads = ", ".join("/".join(f"{x:.1f}" for x in p["load"]) for p in st["passes"])
        valid = [p["valid_ndcg10"] for p in st["passes"] if p.get("valid_ndcg10") is not None]
        if valid:
            loads += f"  valid NDCG@10 {statistics.median(valid):.4f}"
        print(f"  {label:<34}{st['seconds']:>10.4f}{rate:>26}{st['ratio_first']:>7.2f}x{st['ratio_previous']:>8.2f}x"
              f"{cpu}  {loads}")


def plot(sizes: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    x = [s["data_ratio_first"] for s in sizes]
    for label in sizes[0]["steps"]:
        y = [s["steps"][label]["seconds"] for s in sizes]
        line, = ax.plot(x, y, marker="o", label=label)
        ax.plot([x[0], x[-1]], [y[0], y[0] * x[-1] / x[0]], linestyle=":", color=line.get_color(), linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{v:.2f}x" for v in x])
    ax.minorticks_off()
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs="all"))
    ax.set_xlabel("data multiple (relationships, 1x = smallest sample)")
    ax.set_ylabel("seconds (recommend and floor: per call)")
    ax.set_title("Amazon Games growth: measured (solid) vs linear scaling from 1x (dotted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0],
                    help="user fractions, smallest first; the first is 1x")
    ap.add_argument("--models", nargs="+", default=["bpr", "lightgcn"],
                    help="models timed for one epoch; the first is written back")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per model; the median epoch is the figure")
    ap.add_argument("--users", type=int, default=300, help="users timed for recommend")
    ap.add_argument("--negatives", type=int, default=99, help="sampled negatives per user (evaluation)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "amazon-games")
    ap.add_argument("--repeat", type=int, default=1,
                    help="passes over the sizes, alternately smallest and largest first; the median is the figure")
    ap.add_argument("--replot", action="store_true", help="only redraw growth.png from --out's growth.json")
    ap.add_argument("--stem", default=None, help="file name of the JSON and PNG written (default growth or "
                                                    "growth-epochs)")
    ap.add_argument("--epochs-only", action="store_true",
                    help="only the training epochs, no database (model specs NAME[:key=value,...], e.g. "
                         "bpr:sparse_grad=true lightgcn:loader=neighbor); writes growth-epochs.json/.png")
    args = ap.parse_args()
    stem = args.stem or ("growth-epochs" if args.epochs_only else "growth")
    if args.replot:
        plot(json.loads((args.out / f"{stem}.json").read_text())["sizes"], args.out / f"{stem}.png")
        return
    if sorted(args.fractions) != args.fractions or not 0 < args.fractions[0] <= args.fractions[-1] <= 1:
        ap.error("--fractions must be increasing, in (0, 1]")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    torch.set_num_threads(1)
    src = data_dir() / "amazon-games"
    out = {"command": "nice -n 5 .venv/bin/python benchmarks/" + " ".join(shlex.quote(a) for a in
                                                                          [Path(__file__).name, *sys.argv[1:]]),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                       "load_start": os.getloadavg()},
           "data": "Amazon Video Games (Games-6k), user sub-samples by sha1(user_id), nested, whole users",
           "target": f"2x data <= {TARGET}x time"}
    passes: dict[float, list[dict]] = {f: [] for f in args.fractions}
    with tempfile.TemporaryDirectory(prefix="kgp-growth-") as tmp:
        for f in args.fractions:
            counts = subsample_games(src, Path(tmp) / f"f{f:g}", f)
            print(f"{f:g}: {counts}", file=sys.stderr, flush=True)
        for r in range(args.repeat):  # smallest first, then largest first, ...: load drift hits all sizes
            for f in (args.fractions if r % 2 == 0 else args.fractions[::-1]):
                t = time.perf_counter()
                if args.epochs_only:
                    if r == 0 and f == args.fractions[0]:  # warm-up: allocator, kernels, imports
                        measure_epochs(Path(tmp) / f"f{f:g}", argparse.Namespace(**{**vars(args), "epochs": 1}))
                    res = measure_epochs(Path(tmp) / f"f{f:g}", args)
                else:
                    with bench_graph() as graph:
                        warm_up(graph, src, Path(tmp), args)
                        res = measure_size(graph, Path(tmp) / f"f{f:g}", f"games-{f:g}", args)
                res["wall"] = time.perf_counter() - t
                passes[f].append(res)
                print(f"pass {r + 1}, {f:g}: done in {res['wall']:.0f} s, load {load()}", file=sys.stderr,
                      flush=True)
    out["sizes"] = [combine(passes[f], fraction=f, multiple=f / args.fractions[0]) for f in args.fractions]
    out["machine"]["load_end"] = os.getloadavg()
    ratios(out["sizes"])
    for s in out["sizes"]:
        print_size(s)
    print(f"\nper step, time ratio to the previous size, wall (CPU), target <= {TARGET}x for 2x data:")
    for label in out["sizes"][0]["steps"]:
        cells = []
        for s in out["sizes"][1:]:
            st = s["steps"][label]
            c = f" (CPU {st['cpu_ratio_previous']:.2f}x)" if st["cpu"] is not None else ""
            cells.append(f"{st['ratio_previous']:.2f}x{c} for data x{s['data_ratio_previous']:.2f}, "
                         f"{'met' if st['ratio_previous'] <= TARGET else 'NOT met'}")
        print(f"  {label:<34}" + ";  ".join(cells))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(out["sizes"], args.out / f"{stem}.png")
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.png'}; peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
