"""``kgp export | train | evaluate | runs | recommend | explain``: the trainer loop over the graph."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import info, open_graph, print_json, settings

DatasetOpt = typer.Option(..., "--dataset", "-d", help="Dataset name in the graph (e.g. movielens-100k).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")


def _parse_sets(values: list[str]) -> dict:
    out = {}
    for v in values:
        if "=" not in v:
            raise ConfigError(f"--set expects key=value, got {v!r}")
        k, raw = v.split("=", 1)
        try:
            out[k.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[k.strip()] = raw
    return out


def _parse_model_sets(values: list[str], flag: str) -> dict[str, dict]:
    """``MODEL.key=value`` options → ``{model: {key: value}}``."""
    out: dict[str, dict] = {}
    for v in values:
        head = v.split("=", 1)[0]
        if "." not in head:
            raise ConfigError(f"{flag} expects MODEL.key=value, got {v!r}")
        model, rest = v.split(".", 1)
        out.setdefault(model.strip(), {}).update(_parse_sets([rest]))
    return out


def _seeds(seeds: str) -> list[int]:
    try:
        return [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        fmt: str = typer.Option("pyg", "--format", help="pyg (HeteroData + id maps) or recbole (atomic files)."),
        out: Path = typer.Option(..., "--out", help="Output folder."),
        no_kg: bool = typer.Option(False, "--no-kg", help="Leave out the external KG."),
        no_intents: bool = typer.Option(False, "--no-intents", help="Leave out intent edges."),
        since: Optional[float] = typer.Option(None, help="Keep interactions with ts >= since (unix s)."),
        until: Optional[float] = typer.Option(None, help="Keep interactions with ts < until (unix s)."),
        device: str = typer.Option("cpu", help="pyg only: put the HeteroData on cpu or cuda."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Export a dataset's subgraph to PyTorch Geometric or RecBole atomic files."""
        from ..graph.export import export_recdata, item_titles, save_pyg, save_recbole
        from ..train.trainer import resolve_device

        if fmt not in ("pyg", "recbole"):
            raise ConfigError(f"unknown --format {fmt!r} (pyg|recbole)")
        with open_graph(ctx) as graph:
            data, rep = export_recdata(graph, dataset, kg=not no_kg, intents=not no_intents, since=since,
                                       until=until)
            titles = item_titles(graph, dataset) if fmt == "recbole" else None
        if fmt == "pyg":
            files = [save_pyg(data, out, device=str(resolve_device(device)))]
        else:
            files = save_recbole(data, out, titles=titles)
        doc = {"dataset": dataset, "format": fmt, "files": [str(f) for f in files], "summary": data.summary(),
               "seconds": round(rep.seconds, 2), "edges_per_s": round(rep.edges_per_s)}
        if as_json:
            print_json(doc)
        else:
            print(f"exported {dataset} ({rep.edges:,} edges, {rep.edges_per_s:,.0f} edges/s) to {out}")

    @app.command()
    def train(
        ctx: typer.Context,
        model: str = typer.Argument(..., help="pop | bpr | sasrec | kgcn | ikgr"),
        dataset: str = DatasetOpt,
        seeds: str = typer.Option("2024", help="Comma-separated training seeds (mean ± std when several)."),
        epochs: Optional[int] = typer.Option(None, help="Epochs (default: the model's)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default KGP_DEVICE)."),
        ablation: Optional[str] = typer.Option(None, help="IKGR ablation: no_aug | exact_only | no_int_scoring | no_int_trans."),
        set_: list[str] = typer.Option([], "--set", help="Model option key=value (repeatable), e.g. --set embedding_dim=128."),
        max_seconds: Optional[float] = typer.Option(None, help="Stop training after this much wall time."),
        k: int = typer.Option(10, help="Top-k recommendations materialised per user."),
        no_write_back: bool = typer.Option(False, "--no-write-back", help="Do not write the run back to the graph."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Train a model on a dataset exported from the graph, evaluate it (both protocols), write it back."""
        _train_and_report(ctx, [model], dataset, _seeds(seeds), epochs, device, ablation, _parse_sets(set_),
                          max_seconds, k, not no_write_back, as_json, report=False)

    @app.command()
    def evaluate(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        models: str = typer.Option("pop,bpr,sasrec,kgcn,ikgr", help="Comma-separated models to compare."),
        seeds: str = typer.Option("2024,2025,2026", help="Comma-separated training seeds."),
        epochs: Optional[int] = typer.Option(None, help="Epochs for every model (default: each model's)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
        max_seconds: Optional[float] = typer.Option(None, help="Wall-time cap per training run."),
        train_: list[str] = typer.Option(
            [], "--train", help="Per-model training option MODEL.key=value (repeatable), e.g. --train sasrec.epochs=9."),
        set_: list[str] = typer.Option(
            [], "--set", help="Per-model option MODEL.key=value (repeatable), e.g. --set ikgr.lam=0.2."),
        ablations: str = typer.Option(
            "", help="IKGR ablations as extra rows ikgr:<name>: no_aug,exact_only,no_int_scoring,no_int_trans."),
        write_back: bool = typer.Option(False, "--write-back", help="Also write each model's first run back."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Compare models under both protocols; writes results.json, report.md and results.png."""
        names = [m.strip() for m in models.split(",") if m.strip()]
        variants = [a.strip() for a in ablations.split(",") if a.strip()]
        names += [f"ikgr:{a}" for a in variants]  # the full model is a row only when --models names ikgr
        if not names:
            raise ConfigError("nothing to evaluate: give --models and/or --ablations")
        _train_and_report(ctx, names, dataset, _seeds(seeds), epochs, device, None, {}, max_seconds, 10,
                          write_back, as_json, report=True, per_model_train=_parse_model_sets(train_, "--train"),
                          per_model_opts=_parse_model_sets(set_, "--set"))

    @app.command()
    def runs(ctx: typer.Context, dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
             model: Optional[str] = typer.Option(None, help="Filter by model."),
             limit: int = typer.Option(50, help="At most this many runs."),
             extract: bool = typer.Option(False, "--extract", help="List intent-extraction runs instead."),
             as_json: bool = JsonOpt) -> None:
        """List training runs (or, with --extract, intent-extraction runs) recorded in the graph."""
        from ..graph.writeback import list_runs

        with open_graph(ctx) as graph:
            rows = list_runs(graph, dataset=dataset, model=model, limit=limit,
                             kinds=("extract",) if extract else ("train",))
        if as_json:
            print_json(rows)
            return
        if not rows:
            print("no runs recorded" + (f" for {dataset}" if dataset else ""))
            return
        wid = max(len(str(r["id"])) for r in rows) + 2
        wm = max(len(str(r.get("model", ""))) for r in rows) + 2
        wd = max(len(str(r.get("dataset", ""))) for r in rows) + 2
        if extract:
            print(f"{'run':<{wid}}{'model':<{wm}}{'dataset':<{wd}}{'round':>6}{'ok':>8}{'failed':>8}{'skipped':>9}")
            for r in rows:
                print(f"{r['id']:<{wid}}{r.get('model', ''):<{wm}}{r.get('dataset') or '-':<{wd}}"
                      f"{r.get('round', ''):>6}{r.get('ok', ''):>8}{r.get('failed', ''):>8}{r.get('skipped', ''):>9}")
            return
        print(f"{'run':<{wid}}{'model':<{wm}}{'dataset':<{wd}}{'full NDCG@10':>13}{'99-neg NDCG@10':>15}"
              f"{'HR@10 full':>11}")
        for r in rows:
            print(f"{r['id']:<{wid}}{r['model']:<{wm}}{r['dataset']:<{wd}}"
                  f"{r.get('test_full_ndcg10', float('nan')):>13.4f}"
                  f"{r.get('test_sampled99_ndcg10', float('nan')):>15.4f}{r.get('test_full_hr10', float('nan')):>11.4f}")

    @app.command()
    def recommend(
        ctx: typer.Context,
        user: str = typer.Argument(..., help="User id: raw with --dataset, or '<dataset>:<raw id>'."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
        k: int = typer.Option(10, help="How many items."),
        model: Optional[str] = typer.Option(None, help="Model whose newest run to use (default: newest of any)."),
        explain: bool = typer.Option(False, "--explain", help="Explain each item with Cypher paths."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Top-k unseen items for a user from a written-back run, optionally explained."""
        from .. import explain as ex

        with open_graph(ctx) as graph:
            uid, _ = ex.resolve_user(graph, user, dataset)
            run_id, recs = ex.recommend(graph, uid, k=k, model=model)
            if explain:
                for r in recs:
                    r.explanations = ex.explain(graph, uid, r.item, limit=2)
        if as_json:
            print_json({"user": uid, "run": run_id, "items": [dataclasses.asdict(r) for r in recs]})
            return
        print(f"top-{k} for {uid} (run {run_id}):")
        for r in recs:
            print(f"{r.rank:>3}. {r.title or r.item}  [{r.item}]  score {r.score:.4f}")
            if explain:
                if not r.explanations:
                    print("      no explanation found in the graph (no shared intent, KG entity or similar user)")
                for e in r.explanations:
                    print(f"      {e.kind}: {e.text}")

    @app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        user: str = typer.Argument(..., help="User id (raw with --dataset, or full)."),
        item: str = typer.Argument(..., help="Item id (raw with --dataset, or full)."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
        limit: int = typer.Option(3, help="Paths per kind of explanation."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Why this item for this user? Paths through intents, the external KG and similar users."""
        from .. import explain as ex

        with open_graph(ctx) as graph:
            uid, ds = ex.resolve_user(graph, user, dataset)
            iid = item if ":" in item else f"{ds}:{item}"
            exps = ex.explain(graph, uid, iid, limit=limit)
        if as_json:
            print_json({"user": uid, "item": iid, "explanations": [dataclasses.asdict(e) for e in exps]})
            return
        if not exps:
            print(f"no explanation found for {iid} and {uid}: they share no intent, KG entity or similar user")
            return
        for e in exps:
            print(f"[{e.kind}] {e.text}")
        print(f"\nIn Neo4j Browser: :param user => '{uid}'  then  :param item => '{iid}'  then  :param limit => {limit}")
        print("and paste a query from cypher/explain/ (shared_intents, user_intents, kg_paths, similar_users).")


def _row_options(per_row: dict, model: str, variant: str) -> dict:
    return per_row.get(model, {}) | (per_row.get(f"{model}:{variant}", {}) if variant else {})


def _train_and_report(ctx, models, dataset, seeds, epochs, device, ablation, model_opts, max_seconds, k,
                      write_back, as_json, *, report: bool, per_model_train: dict | None = None,
                      per_model_opts: dict | None = None) -> None:
    """Train each of ``models`` (``ikgr:<ablation>`` names an IKGR ablation row) over ``seeds``.

    ``per_model_train`` / ``per_model_opts`` map a model (or row) name to TrainConfig / model-config overrides.
    """
    from ..graph.export import export_recdata
    from ..graph.writeback import write_back as do_write_back
    from ..models import get_spec
    from ..train import TrainConfig, run_seeds

    s = settings(ctx)
    per_model_train = per_model_train or {}
    per_model_opts = per_model_opts or {}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device", "cache_dir", "run_dir"}
    for m in models:
        get_spec(m.split(":", 1)[0])
    known_rows = set(models) | {m.split(":", 1)[0] for m in models}
    for flag, given in (("--train", per_model_train), ("--set", per_model_opts)):
        stray = sorted(set(given) - known_rows)
        if stray:
            raise ConfigError(f"{flag} names {', '.join(stray)}, which is not being evaluated",
                              hint="models/rows here: " + ", ".join(sorted(known_rows)))
    for m, opts in per_model_train.items():
        unknown = sorted(set(opts) - train_fields)
        if unknown:
            raise ConfigError(f"--train {m}: unknown training option(s) {', '.join(unknown)}",
                              hint="one of: " + ", ".join(sorted(train_fields)) + " (seeds and device have their own options)")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = s.resolved_runs_dir / f"{dataset}-{stamp}"
    summaries = []
    with open_graph(ctx) as graph:
        data, rep = export_recdata(graph, dataset)
        info(f"exported {dataset}: {data.summary()} in {rep.seconds:.1f} s")
        for row in models:
            m, _, variant = row.partition(":")
            # a row's options: the model's, then the row's own (``ikgr:no_aug`` over ``ikgr``)
            mcfg = dict(model_opts) | _row_options(per_model_opts, m, variant)
            abl = variant or ablation
            if abl:
                if m != "ikgr":
                    raise ConfigError("--ablation applies to ikgr only")
                from ..models import IKGRConfig

                try:
                    mcfg = dataclasses.asdict(IKGRConfig().ablation(abl)) | mcfg
                except ValueError as e:
                    raise ConfigError(str(e)) from e
            tcfg = _row_options(per_model_train, m, variant)
            cfg = TrainConfig(**({"epochs": epochs, "max_seconds": max_seconds} | tcfg),
                              device=device or s.device, cache_dir=s.home / "candidates",
                              run_dir=out_dir / row.replace(":", "-"))
            summary = run_seeds(m, data, cfg, mcfg or None, seeds=seeds, log=info)
            if variant:
                summary = dataclasses.replace(summary, model_name=row)
            summaries.append(summary)
            info(summary.format())
            if report and len(summaries) < len(models):  # keep finished rows if a long comparison is stopped
                from ..eval.report import write_report

                write_report(summaries, dataset, out_dir, extra={"seeds": seeds, "data": data.summary(),
                                                                 "partial": True})
                info(f"partial report: {out_dir / 'report.md'}")
            if write_back:
                first = summary.results[0]
                wb = do_write_back(graph, first, data, k=k)
                info(f"wrote run {wb.run_id}: {wb.users:,} user and {wb.items:,} item vectors, "
                     f"{wb.recommendations:,} recommendations in {wb.seconds:.1f} s")
    paths = {}
    if report or len(seeds) > 1:
        from ..eval.report import markdown_tables, write_report

        paths = write_report(summaries, dataset, out_dir, extra={"seeds": seeds, "data": data.summary()})
        if not as_json:
            print(markdown_tables(summaries, dataset))
            print(f"report: {paths['markdown']}  plot: {paths['plot']}  json: {paths['json']}")
    if as_json:
        print_json({"dataset": dataset, "models": [sm.to_record() for sm in summaries],
                    "files": {k2: str(v) for k2, v in paths.items()}})
    elif not report:
        for sm in summaries:
            print(sm.format())
