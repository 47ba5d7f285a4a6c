"""``kgp export | train | evaluate | runs | recommend | explain``: the trainer loop over the graph."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError, NotFound
from .common import info, open_graph, print_json, settings

DatasetOpt = typer.Option(..., "--dataset", "-d", help="Dataset name in the graph (e.g. movielens-100k).")
ConventionOpt = typer.Option(
    "kgp", "--convention",
    help="kgp: mask history for every model, negatives never interacted with; recbole: RecBole 1.2.1's "
         "(sequential models unmasked, its negative sampling, truncated MRR@k).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")


def parse_assignments(values: list[str], flag: str = "--set") -> dict:
    """:func:`kgplatform.models.options.parse_assignments`, imported when called (it brings torch)."""
    from ..models.options import parse_assignments as parse

    return parse(values, flag)


def _parse_model_sets(values: list[str], flag: str) -> dict[str, dict]:
    """:func:`kgplatform.models.options.parse_model_assignments`, imported when called (it brings torch)."""
    from ..models.options import parse_model_assignments

    return parse_model_assignments(values, flag)


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
        fmt: str = typer.Option("pyg", "--format", help="pyg (HeteroData + id maps), recbole (atomic files) or "
                                "instructions (train/valid/test JSONL for LLM tuning: knowledge + candidates → "
                                "next item)."),
        out: Path = typer.Option(..., "--out", help="Output folder."),
        no_kg: bool = typer.Option(False, "--no-kg", help="Leave out the external KG."),
        no_intents: bool = typer.Option(False, "--no-intents", help="Leave out intent edges."),
        since: Optional[float] = typer.Option(None, help="Keep interactions with ts >= since (unix s)."),
        until: Optional[float] = typer.Option(None, help="Keep interactions with ts < until (unix s)."),
        device: str = typer.Option("cpu", help="pyg only: put the HeteroData on cpu or cuda."),
        graph_kind: str = typer.Option(
            "train", "--graph", help="pyg only: train (training interactions only, leave-one-out; what a model may "
                                     "learn from) or serving (every interaction, validation/test included)."),
        seed: int = typer.Option(2024, help="instructions only: the candidate draw's seed (the stored 99 "
                                            "negatives of valid/test use it too)."),
        train_candidates: int = typer.Option(20, help="instructions only: candidates per training example "
                                                      "(the target + N-1 unseen items)."),
        train_knowledge: str = typer.Option(
            "training", "--train-knowledge", help="instructions only: the profiles training examples show: "
            "training (fused from the whole training prefix, which holds the example's target) or tuning (fused "
            "from the prefix before it: kgp extract --round knowledge --scope tuning). Valid/test always show the "
            "training-scope profile."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Export a dataset's subgraph to PyTorch Geometric or RecBole atomic files."""
        from ..graph.export import export_recdata, item_titles, save_pyg, save_recbole
        from ..train.trainer import resolve_device

        if fmt not in ("pyg", "recbole", "instructions"):
            raise ConfigError(f"unknown --format {fmt!r} (pyg|recbole|instructions)")
        if graph_kind not in ("train", "serving"):
            raise ConfigError(f"unknown --graph {graph_kind!r} (train|serving)")
        if train_candidates < 2:
            raise ConfigError(f"--train-candidates must be >= 2, got {train_candidates}")
        if train_knowledge not in ("training", "tuning"):
            raise ConfigError(f"--train-knowledge must be training or tuning, got {train_knowledge!r}")
        knowledge = tuning = None
        with open_graph(ctx) as graph:
            data, rep = export_recdata(graph, dataset, kg=not no_kg, intents=not no_intents, since=since,
                                       until=until)
            titles = item_titles(graph, dataset) if fmt in ("recbole", "instructions") else None
            if fmt == "instructions":
                from ..graph.instructions import user_knowledge_texts

                knowledge = user_knowledge_texts(graph, dataset)
                if train_knowledge == "tuning":
                    tuning = user_knowledge_texts(graph, dataset, "tuning")
                    if not tuning:
                        raise ConfigError(f"--train-knowledge tuning: {dataset} has no tuning-scope knowledge",
                                          hint=f"run kgp extract --round knowledge --scope tuning -d {dataset}")
        try:
            if fmt == "instructions":
                from ..graph.instructions import instruction_examples, save_instructions

                examples = instruction_examples(data, titles or {}, knowledge or {}, seed=seed,
                                                train_candidates=train_candidates,
                                                cache_dir=settings(ctx).home / "candidates", train_knowledge=tuning)
                files = save_instructions(examples, out)
            elif fmt == "pyg":
                files = [save_pyg(data, out, graph=graph_kind, device=str(resolve_device(device)))]
            else:
                files = save_recbole(data, out, titles=titles)
        except OSError as e:
            raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})",
                              hint="choose a folder you can write to") from None
        doc = {"dataset": dataset, "format": fmt, "files": [str(f) for f in files], "summary": data.summary(),
               "seconds": round(rep.seconds, 2), "edges_per_s": round(rep.edges_per_s)}
        if as_json:
            print_json(doc)
        else:
            print(f"exported {dataset} ({rep.edges:,} edges, {rep.edges_per_s:,.0f} edges/s) to {out}")

    @app.command()
    def train(
        ctx: typer.Context,
        model: str = typer.Argument(..., help="pop | bpr | lightgcn | gru4rec | sasrec | srgnn | kgcn | ikgr | "
                                              "persona-sasrec | llm4sbr"),
        dataset: str = DatasetOpt,
        seeds: str = typer.Option("2024", help="Comma-separated training seeds (mean ± std when several)."),
        epochs: Optional[int] = typer.Option(None, min=1, help="Epochs (default: the model's)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default KGP_DEVICE)."),
        ablation: Optional[str] = typer.Option(
            None, help="Ablation: ikgr no_aug | exact_only | no_int_scoring | no_int_trans; persona-sasrec "
                       "no_persona | mean_persona | no_llm_init | no_rerank | anonymous; llm4sbr no_llm | long_only | "
                       "short_only | no_localization | no_align."),
        set_: list[str] = typer.Option([], "--set", help="Model option key=value (repeatable), e.g. --set embedding_dim=128."),
        train_: list[str] = typer.Option(
            [], "--train", help="Training option key=value (repeatable), e.g. --train batch_size=4096 --train lr=0.01."),
        max_seconds: Optional[float] = typer.Option(None, min=1, help="Stop training after this much wall time."),
        convention: str = ConventionOpt,
        k: int = typer.Option(10, min=1, max=1000, help="Top-k recommendations materialised per user."),
        no_write_back: bool = typer.Option(False, "--no-write-back", help="Do not write the run back to the graph."),
        user_features: str = typer.Option(
            "none", "--user-features", help="none | knowledge: add the embedded fused user knowledge (kgp extract "
                                            "--round knowledge) to the user representation (bpr, lightgcn, sasrec, ikgr); "
                                            "fallback: its control, the learned vector of the users without it alone."),
        backbone: Optional[str] = typer.Option(
            None, "--backbone", help="llm4sbr: srgnn (default) | sasrec, the behavioural session model."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Train a model on a dataset exported from the graph, evaluate it (both protocols), write it back."""
        from ..experiment.compare import plan_rows
        from ..nn.user_features import USER_FEATURES

        if user_features not in USER_FEATURES:
            raise ConfigError(f"--user-features must be one of {', '.join(USER_FEATURES)}, got {user_features!r}")
        opts = parse_assignments(set_)
        if backbone is not None:
            if model != "llm4sbr":
                raise ConfigError(f"--backbone is an llm4sbr option, not {model}'s")
            opts["backbone"] = backbone
        if user_features != "none":
            opts["user_features"] = user_features
        train_opts = parse_assignments(train_, "--train")
        rows = plan_rows([f"{model}:{ablation}" if ablation else model], model_options=opts,
                         per_model_train={model: train_opts} if train_opts else {})
        _run(ctx, dataset, rows, _seeds(seeds), epochs=epochs, device=device, max_seconds=max_seconds,
             convention=convention, k=k, write_back=not no_write_back, as_json=as_json, report=False)

    @app.command()
    def evaluate(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        models: str = typer.Option("pop,bpr,lightgcn,sasrec,kgcn,ikgr",
                                   help="Comma-separated models (or MODEL:ABLATION rows) to compare."),
        seeds: str = typer.Option("2024,2025,2026", help="Comma-separated training seeds."),
        epochs: Optional[int] = typer.Option(None, min=1, help="Epochs for every model (default: each model's)."),
        device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
        max_seconds: Optional[float] = typer.Option(None, min=1, help="Wall-time cap per training run."),
        train_: list[str] = typer.Option(
            [], "--train", help="Per-model training option MODEL.key=value (repeatable), e.g. --train sasrec.epochs=9."),
        set_: list[str] = typer.Option(
            [], "--set", help="Per-model option MODEL.key=value (repeatable), e.g. --set ikgr.lam=0.2."),
        ablations: str = typer.Option(
            "", help="Ablations as extra rows, MODEL:NAME (a bare NAME is ikgr's): ikgr:no_aug,exact_only,"
                     "no_int_scoring,no_int_trans; persona-sasrec:no_persona,mean_persona,no_llm_init,no_rerank,"
                     "anonymous; llm4sbr:no_llm,long_only,short_only,no_localization,no_align; "
                     "bpr/lightgcn/sasrec/ikgr:knowledge (with the fused user knowledge), "
                     "MODEL:fallback (its control: the fallback vector alone)."),
        compare: list[str] = typer.Option(
            [], "--compare", help="A,B: report the paired difference A − B with its interval (repeatable)."),
        convention: str = ConventionOpt,
        with_recbole: str = typer.Option(
            "", "--with-recbole", help="Also run RecBole 1.2.1 on the same split: MODEL[,MODEL] "
                                       "(pop,bpr,lightgcn,sasrec,gru4rec,srgnn,kgcn,kgat)."),
        recbole_epochs: list[str] = typer.Option(
            [], "--recbole-epochs", help="MODEL=N: RecBole's epoch cap for that model (repeatable)."),
        recbole_set: list[str] = typer.Option(
            [], "--recbole-set", help="MODEL.KEY=value: a RecBole setting for that model (repeatable), e.g. "
                                      "--recbole-set sasrec.MAX_ITEM_LIST_LENGTH=20; not the data, split, "
                                      "protocol or seed."),
        recbole_pair: list[str] = typer.Option(
            [], "--recbole-pair", help="MODEL=ROW: pair RecBole's MODEL user by user with our row ROW instead of the "
                                       "row of its own name (repeatable), e.g. --recbole-pair "
                                       "sasrec=llm4sbr:no_llm; without a row to pair with it is reported unpaired."),
        results: Optional[str] = typer.Option(
            None, "--results", help="Also save the report as results/<dataset>/<NAME>.json and .md in the checkout."),
        write_back: bool = typer.Option(False, "--write-back", help="Also write each model's first run back."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Compare models under both protocols with 95 % intervals; results.json, report.md, results.png."""
        from ..experiment.compare import check_recbole_config, plan_rows

        names = [m.strip() for m in models.split(",") if m.strip()]
        variants = [a.strip() for a in ablations.split(",") if a.strip()]
        rows = plan_rows(names, variants, per_model_train=_parse_model_sets(train_, "--train"),
                         per_model_opts=_parse_model_sets(set_, "--set"))
        pairs = _parse_pairs(compare, [r.name for r in rows])
        rb_models = [m.strip() for m in with_recbole.split(",") if m.strip()]
        rb_epochs = _parse_epochs(recbole_epochs, rb_models)
        rb_config = _parse_model_sets(recbole_set, "--recbole-set")
        check_recbole_config(rb_config, rb_models)
        rb_pairs = _parse_recbole_pairs(recbole_pair, rb_models, [r.name for r in rows])
        if results is not None and (not results or "/" in results or results.startswith(".")):
            raise ConfigError(f"--results expects a plain file name, got {results!r}")
        _run(ctx, dataset, rows, _seeds(seeds), epochs=epochs, device=device, max_seconds=max_seconds,
             convention=convention, k=10, write_back=write_back, as_json=as_json, report=True, compare=pairs,
             with_recbole=rb_models, recbole_epochs=rb_epochs, recbole_config=rb_config, recbole_pairs=rb_pairs,
             results_name=results)

    @app.command()
    def runs(ctx: typer.Context, dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
             model: Optional[str] = typer.Option(None, help="Filter by model."),
             limit: int = typer.Option(50, help="At most this many runs."),
             extract: bool = typer.Option(False, "--extract", help="List intent-extraction runs instead."),
             personas: bool = typer.Option(False, "--personas", help="List persona runs instead."),
             as_json: bool = JsonOpt) -> None:
        """List training runs (or intent-extraction / persona runs) recorded in the graph."""
        from ..graph.writeback import list_runs

        if extract and personas:
            raise ConfigError("--extract and --personas: choose one")
        kind = "extract" if extract else "persona" if personas else "train"
        with open_graph(ctx) as graph:
            rows = list_runs(graph, dataset=dataset, model=model, limit=limit, kinds=(kind,))
        if as_json:
            print_json(rows)
            return
        if not rows:
            print("no runs recorded" + (f" for {dataset}" if dataset else ""))
            return
        wid = max(len(str(r["id"])) for r in rows) + 2
        wm = max(len(str(r.get("model", ""))) for r in rows) + 2
        wd = max(len(str(r.get("dataset", ""))) for r in rows) + 2
        if personas:
            print(f"{'run':<{wid}}{'model':<{wm}}{'dataset':<{wd}}{'personas':>9}{'members':>9}  finished")
            for r in rows:
                print(f"{r['id']:<{wid}}{r.get('model', ''):<{wm}}{r.get('dataset') or '-':<{wd}}"
                      f"{r.get('personas', ''):>9}{r.get('memberships', ''):>9}  {r.get('finished', '')}")
            return
        if extract:
            print(f"{'run':<{wid}}{'model':<{wm}}{'dataset':<{wd}}{'round':>10}{'ok':>8}{'failed':>8}{'skipped':>9}"
                  "  status")
            for r in rows:
                print(f"{r['id']:<{wid}}{r.get('model', ''):<{wm}}{r.get('dataset') or '-':<{wd}}"
                      f"{r.get('round', ''):>10}{r.get('ok', ''):>8}{r.get('failed', ''):>8}{r.get('skipped', ''):>9}"
                      f"  {r.get('status', 'done')}")
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
        user: Optional[str] = typer.Argument(None, help="User id: raw with --dataset, or '<dataset>:<raw id>'."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
        k: int = typer.Option(10, help="How many items (1-1000)."),
        model: Optional[str] = typer.Option(None, help="Model whose newest run to use (default: newest of any)."),
        session: Optional[str] = typer.Option(
            None, "--session", help="ITEM,ITEM,…: recommend for an anonymous session (no user id; the newest "
                                    "persona-sasrec run infers its persona from the items)."),
        explain: bool = typer.Option(False, "--explain", help="Explain each item with Cypher paths."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Top-k unseen items for a user from a written-back run (or for an anonymous --session), explained."""
        from .. import explain as ex

        ex.check_range("--k", k, 1, ex.MAX_K)  # before connecting: a bad option never reaches the database
        if session is not None:
            if user is not None:
                raise ConfigError("give a USER or --session, not both")
            if not dataset:
                raise ConfigError("--session needs --dataset (-d)")
            _recommend_session(ctx, dataset, session, k, explain, as_json)
            return
        if user is None:
            raise ConfigError("missing USER (or --session ITEM,ITEM,…)", hint="kgp recommend USER -d DATASET")
        with open_graph(ctx) as graph:
            uid, _ = ex.resolve_user(graph, user, dataset)
            run_id, recs = ex.recommend(graph, uid, k=k, model=model)
            if explain:
                run = {"id": run_id, "model": _run_model(graph, run_id)}
                done = ex.explain_items(graph, uid, [r.item for r in recs], dataset=uid.split(":", 1)[0], run=run,
                                        limit=2)
                for r, (se, exps) in zip(recs, done):
                    r.explanations = exps
                    r.terms = se.terms if se is not None else []
        if as_json:
            print_json({"user": uid, "run": run_id, "items": [dataclasses.asdict(r) for r in recs]})
            return
        print(f"top-{k} for {uid} (run {run_id}):")
        for r in recs:
            print(f"{r.rank:>3}. {r.title or r.item}  [{r.item}]  score {r.score:.4f}")
            if explain:
                if r.terms:
                    print(f"      {ex.summarize_terms(r.terms)}")
                if not r.explanations:
                    print("      no explanation found in the graph (no shared intent, KG entity or similar user)")
                for e in r.explanations:
                    print(f"      {e.kind}: {e.text}")

    @app.command("cold-start")
    def cold_start(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        items: Optional[str] = typer.Option(
            None, "--items", help="ITEM,ITEM,…: the new items (raw or full ids); default: every item of the dataset "
                                  "the newest IKGR run did not train on."),
        users: Optional[str] = typer.Option(
            None, "--users", help="USER,USER,… or 'new': recommend for new users (from their few interactions and "
                                  "profile) instead of adding new items; 'new' = every user the run never saw."),
        k: int = typer.Option(10, help="--users: recommendations per new user (1-1000)."),
        no_extract: bool = typer.Option(False, "--no-extract", help="Do not extract round-1 intents for them."),
        llm: Optional[str] = typer.Option(None, "--llm", help="LLM for their intents (as kgp extract --model)."),
        evaluate_: bool = typer.Option(False, "--evaluate", help="Measure it instead: hold out --fraction of the "
                                       "items with everything about them, train IKGR on the rest, rank the cold "
                                       "items for the users who took them against text-only and popularity."),
        evaluate_users: bool = typer.Option(False, "--evaluate-users", help="Measure the user side: hold out "
                                            "--fraction of the users, give each their first --few items, rank "
                                            "the rest against popularity and text-only."),
        few: int = typer.Option(5, min=1, help="--evaluate-users: items a new user gives."),
        fraction: float = typer.Option(0.1, help="--evaluate/--evaluate-users: share of the items (users) held out."),
        epochs: int = typer.Option(20, min=1, help="--evaluate: IKGR epochs on the warm items."),
        seed: int = typer.Option(2024, help="--evaluate: seed of the cold items and the training."),
        results: Optional[str] = typer.Option(None, "--results", help="--evaluate: also save results/<dataset>/"
                                                                      "<NAME>.json in the checkout."),
        as_json: bool = JsonOpt,
    ) -> None:
        """New items into the newest IKGR run without retraining: text vector, round-1 intents, an inductive
        IKGR vector (eq. 3 over their KG neighbours and intents), and a place in every user's top-k where they
        rank. With --users, recommendations for new users the same way; with --evaluate, measure it on
        held-out items."""
        from ..coldstart import cold_start_items

        if evaluate_ or evaluate_users:
            if evaluate_ and evaluate_users:
                raise ConfigError("give --evaluate or --evaluate-users, not both")
            _cold_start_evaluate(ctx, dataset, fraction, epochs, seed, results, as_json,
                                 users_few=few if evaluate_users else None)
            return
        if users is not None:
            if items is not None:
                raise ConfigError("give --items or --users, not both")
            _cold_start_users(ctx, dataset, users, k, as_json)
            return
        ids = None
        if items is not None:
            ids = [x.strip() for x in items.split(",") if x.strip()]
            if not ids:
                raise ConfigError("--items is empty: give the new items as ITEM,ITEM,…")
        with open_graph(ctx) as graph:
            rep = cold_start_items(graph, settings(ctx), dataset, ids, extract_intents=not no_extract, model=llm,
                                   progress=not as_json)
        if as_json:
            print_json(rep.to_dict())
            return
        if not rep.items:
            print(f"no new items in {dataset}: every item was in the training data of run {rep.run}")
            return
        print(f"run {rep.run}: {len(rep.items)} new item(s), {rep.new_intents} intent(s) new to the run; "
              f"{rep.recommendations_added} recommendation(s) added for {rep.users_updated} of {rep.users_scored} "
              f"users; {rep.seconds_per_item * 1000:.1f} ms per item (inductive part), "
              f"{rep.extract_seconds:.1f} s encoding and extraction, {rep.seconds:.1f} s in all")
        for i, info_i in rep.per_item.items():
            print(f"  {i}: in the top-k of {info_i['users_reached']} user(s); intents: "
                  f"{', '.join(info_i['intents']) or '-'}")

    @app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        user: str = typer.Argument(..., help="User id (raw with --dataset, or full)."),
        item: str = typer.Argument(..., help="Item id (raw with --dataset, or full)."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
        limit: int = typer.Option(3, help="Paths per kind of explanation (1-100)."),
        model: Optional[str] = typer.Option(None, help="Model whose newest run's score to split into terms "
                                                       "(default: the newest run of any model)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Why this item for this user? The run's score split into its terms (IKGR: embedding and intent
        matches; dot-product models: one term), then graph evidence: paths through intents, the external KG,
        similar users, personas, similar content and the user's fused knowledge."""
        from .. import explain as ex

        ex.check_range("--limit", limit, 1, ex.MAX_LIMIT)
        with open_graph(ctx) as graph:
            uid, ds = ex.resolve_user(graph, user, dataset)
            iid = ex.resolve_item(graph, item, ds)
            se, exps = ex.explain_with_score(graph, uid, iid, dataset=ds, model=model, limit=limit)
            if model is not None and se is None:
                raise NotFound(f"no training run of model {model!r} with recommendations for dataset {ds!r}",
                               hint=f"kgp train {model} --dataset {ds}")
        if as_json:
            print_json({"user": uid, "item": iid,
                        "run": se.run if se else None, "model": se.model if se else None,
                        "score": se.score if se else None, "terms": se.terms if se else [],
                        "lambda": se.lam if se else None, "note": se.note if se else None,
                        "recommended_rank": se.recommended_rank if se else None,
                        "recommended_score": se.recommended_score if se else None,
                        "explanations": [dataclasses.asdict(e) for e in exps]})
            return
        if se is not None:
            where = (f"rank {se.recommended_rank} of the user's top-k" if se.recommended_rank
                     else "not in the user's materialised top-k")
            head = f"score {se.score:.4f}" if se.score is not None else "score unknown"
            print(f"model {se.model}, run {se.run}: {head} ({where})")
            if se.terms:
                print("  the score is the sum of (largest first):")
                for t in se.terms:
                    print(f"    {ex.describe_term(t)}")
            if se.note:
                print(f"  note: {se.note}")
            print()
        if not exps:
            print(f"no graph evidence found for {iid} and {uid}: they share no intent, KG entity or similar user")
            return
        print("graph evidence" + (" (paths in the graph, not the model's reason):" if not (se and se.terms)
                                  else " (paths in the graph; the terms above are the model's reason):"))
        for e in exps:
            print(f"[{e.kind}] {e.text}")
        print(f"\nIn Neo4j Browser: :param user => '{uid}'  then  :param item => '{iid}'  then  :param limit => {limit}")
        print("and run the queries on the guide's 'Why this item' slides (kgp browser shows how to open it),")
        print("or paste them from cypher/explain/ (shared_intents, user_intents, kg_paths, similar_users,")
        print("persona_peers, similar_content, knowledge_match, session_intents; score_inputs holds what the score")
        print("terms are computed from).")


def _cold_start_users(ctx, dataset: str, users: str, k: int, as_json: bool) -> None:
    from .. import explain as ex
    from ..coldstart import cold_start_users

    ex.check_range("--k", k, 1, ex.MAX_K)
    ids = None if users.strip().lower() == "new" else [x.strip() for x in users.split(",") if x.strip()]
    if ids is not None and not ids:
        raise ConfigError("--users is empty: give USER,USER,… or 'new'")
    with open_graph(ctx) as graph:
        rep = cold_start_users(graph, settings(ctx), dataset, ids, k=k, progress=not as_json)
    if as_json:
        print_json(rep.to_dict())
        return
    if not rep.users:
        print(f"no new users in {dataset}: every user was in the training data of run {rep.run}")
        return
    print(f"run {rep.run}: {len(rep.users)} new user(s), {rep.recommendations} recommendation(s) written; "
          f"{rep.seconds_per_user * 1000:.1f} ms per user (inductive part), {rep.seconds:.1f} s in all")
    for u, info_u in rep.per_user.items():
        print(f"  {u}: {info_u['interactions']} interaction(s) ({info_u['known_items']} with trained items), "
              f"{len(info_u['intents'])} intent(s); kgp recommend {u} shows the top-{k}")


def _cold_start_evaluate(ctx, dataset: str, fraction: float, epochs: int, seed: int, results: str | None,
                         as_json: bool, users_few: int | None = None) -> None:
    import sys

    from ..experiment.coldstart import cold_start_experiment, cold_user_experiment
    from ..graph.export import export_recdata

    if not 0 < fraction < 1:
        raise ConfigError(f"--fraction must be between 0 and 1, got {fraction}")
    if results is not None and (not results or "/" in results or results.startswith(".")):
        raise ConfigError(f"--results expects a plain file name, got {results!r}")
    s = settings(ctx)
    with open_graph(ctx) as graph:
        data, _ = export_recdata(graph, dataset)
    if users_few is None:
        out = cold_start_experiment(data, fraction=fraction, seed=seed, epochs=epochs, device=s.device,
                                    cache_dir=s.home / "candidates", log=info)
    else:
        out = cold_user_experiment(data, fraction=fraction, few=users_few, seed=seed, epochs=epochs,
                                   device=s.device, cache_dir=s.home / "candidates", log=info)
    out["command"] = "kgp " + " ".join(sys.argv[1:])
    if results:
        dest = Path.cwd() / "results" / dataset
        dest.mkdir(parents=True, exist_ok=True)
        (dest / f"{results}.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        info(f"saved results/{dataset}/{results}.json")
    if as_json:
        print_json(out)
        return
    if users_few is None:
        print(f"{dataset}: {out['cold_items']} cold items, {out['users']} users who took them; {out['protocol']}")
    else:
        print(f"{dataset}: {out['users']} cold users; {out['protocol']}")
    for name, ms in out["rows"].items():
        print(f"  {name:<16}" + "  ".join(f"{m} {v['mean']:.4f} [{v['low']:.4f}, {v['high']:.4f}]"
                                          for m, v in ms.items()))
    for name, ms in out["differences"].items():
        print(f"  {name:<30}" + "  ".join(f"{m} {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
                                          for m, d in ms.items()))
    if users_few is None:
        print(f"  inductive step: {out['latency_ms_per_item']:.2f} ms per new item (vector + scores for every user)")
    else:
        print(f"  inductive step: {out['latency_ms_per_user']:.2f} ms per new user (vector + scores over every item)")


def _run_model(graph, run_id: str) -> str | None:
    row = graph.read_one("recommend/run_record", run=run_id)
    return row["model"] if row else None


def _recommend_session(ctx, dataset: str, session: str, k: int, explain: bool, as_json: bool) -> None:
    from ..session import SessionRecommender, describe_persona

    items = [x for x in session.split(",")]
    with open_graph(ctx) as graph:
        svc = SessionRecommender.load(graph, dataset, None)
        res = svc.recommend(items, k=k)
        info_p = describe_persona(graph, res) if res.persona is not None else None
    if as_json:
        print_json({"run": res.run, "dataset": res.dataset, "session": res.session, "persona": res.persona,
                    "persona_weight": res.persona_weight, "persona_info": info_p, "seconds": res.seconds,
                    "items": [dataclasses.asdict(i) for i in res.items]})
        return
    print(f"top-{k} for an anonymous session of {len(res.session)} items (run {res.run}):")
    if res.persona is not None:
        label = f" {info_p['label']!r}" if info_p else ""
        print(f"  inferred persona {res.persona}{label} (weight {res.persona_weight:.2f})"
              + (f"; typical: {'; '.join((info_p.get('topEntities') or [])[:3])}" if info_p else ""))
    for r in res.items:
        print(f"{r.rank:>3}. {r.title or r.item}  [{r.item}]  score {r.score:.4f}")
        if explain and r.closest_session_item:
            t = svc.titles.get(r.closest_session_item) or r.closest_session_item
            print(f"      session intent: closest to {t!r} in the session (text cosine {r.session_similarity:.2f})")
            if info_p:
                print(f"      persona: {info_p['label']!r} — typical {'; '.join((info_p.get('topItems') or [])[:2])}")


def _parse_pairs(values: list[str], rows: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for v in values:
        parts = [p.strip() for p in v.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"--compare expects A,B, got {v!r}")
        for p in parts:
            if p not in rows:
                raise ConfigError(f"--compare names {p!r}, which is not a row here", hint="rows: " + ", ".join(rows))
        pairs.append((parts[0], parts[1]))
    return pairs


def _parse_epochs(values: list[str], models: list[str]) -> dict[str, int]:
    out = {}
    for v in values:
        m, _, n = v.partition("=")
        if m.strip() not in models:
            raise ConfigError(f"--recbole-epochs names {m.strip()!r}, which is not in --with-recbole")
        try:
            out[m.strip()] = int(n)
        except ValueError:
            raise ConfigError(f"--recbole-epochs expects MODEL=N, got {v!r}") from None
        if out[m.strip()] < 1:
            raise ConfigError(f"--recbole-epochs {v!r}: N must be at least 1")
    return out


def _parse_recbole_pairs(values: list[str], models: list[str], rows: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        m, sep, row = (x.strip() for x in v.partition("="))
        if not sep or not m or not row:
            raise ConfigError(f"--recbole-pair expects MODEL=ROW, got {v!r}")
        if m not in models:
            raise ConfigError(f"--recbole-pair names {m!r}, which is not in --with-recbole")
        if row not in rows:
            raise ConfigError(f"--recbole-pair names the row {row!r}, which is not a row here",
                              hint="rows: " + ", ".join(rows))
        if m in out:
            raise ConfigError(f"--recbole-pair pairs {m!r} twice")
        out[m] = row
    return out


def _new_folder(path: Path) -> Path:
    """Create ``path``, or ``path-2``, ``path-3``… if it exists (mkdir is atomic: never one folder for two runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create a run folder next to {path}: 999 exist already")


def _run(ctx, dataset: str, rows, seeds: list[int], *, epochs, device, max_seconds, convention: str, k: int,
         write_back: bool, as_json: bool, report: bool, compare=(), with_recbole=(), recbole_epochs=None,
         recbole_config=None, recbole_pairs=None, results_name: str | None = None) -> None:
    """Export the dataset once, run :func:`kgplatform.experiment.run_comparison`, print and save."""
    from ..eval.evaluate import check_convention
    from ..experiment import run_comparison
    from ..experiment.compare import needs_knowledge, needs_session_intents
    from ..graph.export import export_recdata
    from ..graph.writeback import write_back as do_write_back

    s = settings(ctx)
    try:
        check_convention(convention)
    except Exception as e:
        raise ConfigError(str(e)) from None
    if with_recbole:
        from ..eval.recbole import ensure_recbole
        from ..experiment import RECBOLE_NAMES

        unknown = [m for m in with_recbole if m not in RECBOLE_NAMES]
        if unknown:
            raise ConfigError(f"--with-recbole: no RecBole counterpart for {', '.join(unknown)}",
                              hint="one of: " + ", ".join(RECBOLE_NAMES))
        ensure_recbole()  # fail before any training when RecBole cannot run here
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = s.resolved_runs_dir / f"{dataset}-{stamp}"  # made unique (-2, -3…) once the export has worked
    train = {"epochs": epochs, "max_seconds": max_seconds, "device": device or s.device,
             "cache_dir": s.home / "candidates", "convention": convention}
    with open_graph(ctx) as graph:
        sessions, answers = needs_session_intents(rows)
        encode = None
        if answers:  # the "no localisation" ablation reads the raw answers, encoded like the item texts
            from ..embed import load_encoder, recorded_encoder

            rec = recorded_encoder(graph)
            encode = load_encoder(s, rec["name"] if rec else None).encode
        data, rep = export_recdata(graph, dataset, knowledge=needs_knowledge(rows), session_intents=sessions,
                                   encode_answers=encode)
        info(f"exported {dataset}: {data.summary()} in {rep.seconds:.1f} s")

        def on_row(summary) -> None:
            if write_back:
                first = summary.results[0]
                if first.model is not None and first.model.trainable and first.epochs_run == 0:
                    info(f"not writing back {first.run_id}: it trained no epoch")
                    return
                wb = do_write_back(graph, first, data, k=k)
                info(f"wrote run {wb.run_id}: {wb.users:,} user and {wb.items:,} item vectors, "
                     f"{wb.recommendations:,} recommendations in {wb.seconds:.1f} s")
                learned = getattr(first.model, "personas", None)
                if learned is not None:  # a persona-aware model: its personas become the dataset's personas
                    from ..experiment.personas import persona_run
                    from ..graph.personas import write_personas

                    pr = persona_run(learned, data, graph, s, run_id=first.run_id, model=first.model_name,
                                     log=info, params={"from": first.run_id}, user_vectors=True,
                                     record_id=f"{first.run_id}-personas")
                    pw = write_personas(graph, pr)
                    info(f"wrote {pw.personas} personas of run {first.run_id} ({pw.memberships:,} HAS_PERSONA edges)")

        out_dir = _new_folder(out_dir)  # two commands started in the same second must not share one
        result = run_comparison(data, rows, seeds=seeds, train=train, out_dir=out_dir, compare=compare,
                                with_recbole=with_recbole, recbole_epochs=recbole_epochs,
                                recbole_config=recbole_config, recbole_pairs=recbole_pairs, log=info,
                                on_row=on_row)
    from ..experiment.report import differences_table, markdown_tables, recbole_table

    paths = {"json": out_dir / "results.json", "markdown": out_dir / "report.md", "plot": out_dir / "results.png"}
    if results_name:
        dest = Path.cwd() / "results" / dataset
        dest.mkdir(parents=True, exist_ok=True)
        import shutil

        shutil.copyfile(paths["json"], dest / f"{results_name}.json")
        md = paths["markdown"].read_text()
        if paths["plot"].exists():  # the report's plot beside it, under the same name (no shared results.png)
            shutil.copyfile(paths["plot"], dest / f"{results_name}.png")
            md = md.replace("](results.png)", f"]({results_name}.png)")
        (dest / f"{results_name}.md").write_text(md)
        info(f"saved results/{dataset}/{results_name}.json, .md and .png")
    if as_json:
        print_json({"dataset": dataset, "convention": convention, "models": [sm.to_record() for sm in result.summaries],
                    "differences": result.differences, "recbole": result.recbole,
                    "files": {k2: str(v) for k2, v in paths.items()}})
    elif report:
        print(markdown_tables(result.summaries, dataset, convention=convention))
        print(differences_table(result.differences))
        print(recbole_table(result.recbole))
        print(f"report: {paths['markdown']}  plot: {paths['plot']}  json: {paths['json']}")
    else:
        for sm in result.summaries:
            print(sm.format())
