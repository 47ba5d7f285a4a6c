"""``kgp embed`` and ``kgp extract``: text vectors and the LLM intent layer."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import info, open_graph, print_json, settings

JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")


def register(app: typer.Typer) -> None:
    @app.command()
    def embed(
        ctx: typer.Context,
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only this dataset's items/users."),
        encoder: Optional[str] = typer.Option(None, help="all-MiniLM-L6-v2 (default), all-mpnet-base-v2, or a local sentence-transformers path. Switching re-embeds."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Encode item/user/intent text with sentence-transformers; vectors + vector indexes in Neo4j."""
        from ..embed import embed_graph

        s = settings(ctx)
        if encoder:
            s = s.model_copy(update={"encoder": encoder})
        with open_graph(ctx) as graph:
            summary = embed_graph(graph, s, dataset=dataset, progress=True)
        if as_json:
            print_json(summary.to_dict())
            return
        print(f"encoder {summary.encoder} ({summary.dimensions}-d)"
              + (f", switched from {summary.switched_from}" if summary.switched_from else ""))
        for label, st in summary.labels.items():
            print(f"  {label:<7} encoded {st.encoded:,}, unchanged {st.unchanged:,}, no text {st.no_text:,}")
        print(f"  {summary.texts_per_s:.0f} texts/s, {summary.seconds:.1f} s in all")

    @app.command()
    def extract(
        ctx: typer.Context,
        round_: str = typer.Option("both", "--round", help="1 (exact intents), 2 (related intents via kNN retrieval), "
                                   "both, knowledge (fused user knowledge from training behaviours; needs -d), or "
                                   "sessions (LLM4SBR session intents of prefixes, localised to items; needs -d)."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Only this dataset's items/users."),
        limit: Optional[int] = typer.Option(None, help="Only the first N items/users of each label (by id, or in --order)."),
        items_only: bool = typer.Option(False, "--items-only", help="Skip users."),
        model: Optional[str] = typer.Option(None, help="smollm2 (default), gemma3-270m, or a path to any .gguf file."),
        endpoint: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL (vLLM, llama.cpp server), or several comma-separated that share the work (failed requests move to another endpoint); --model names the served model."),
        parallel: Optional[int] = typer.Option(
            None, "--parallel", help="Nodes answered together: sequences of the fast llama.cpp engine (same greedy "
                                     "answers as the plain path; 0 = the plain path, one node at a time), or "
                                     "requests in flight per --endpoint. Default 0 (Settings.llm_parallel; the plain path): on 2 CPU cores the engine was not faster on round 1."),
        glossary: Optional[str] = typer.Option(
            None, help="Domain glossary: a bundled name (movies, beauty, ecommerce), a file path, or 'none'. "
                       "Default: the dataset's domain (movies for MovieLens, beauty for Amazon Beauty, ecommerce "
                       "for other catalogues)."),
        related_k: Optional[int] = typer.Option(None, help="Round 2: intents retrieved per node (default 100)."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again nodes that failed before."),
        redo: bool = typer.Option(False, "--redo", help="Redo nodes already done with the same model, prompt and "
                                                        "input (with --no-cache the model is asked again)."),
        shard: Optional[str] = typer.Option(
            None, help="I/N: only the nodes whose id hashes to shard I of N (0-based), to run N extractions side "
                       "by side (separate processes, machines or endpoints)."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not replay answers from the result cache."),
        order: str = typer.Option("id", "--order", help="Rounds 1 and 2: the order nodes are visited in: id, or "
                                  "popular (most training interactions first, so --limit or a run stopped early "
                                  "covers the behaviour that matters most)."),
        views: str = typer.Option("long,short", "--views", help="--round sessions: long (the user's history), "
                                  "short (the current session), or both."),
        train_prefixes: Optional[int] = typer.Option(
            None, "--train-prefixes", help="--round sessions: training prefixes inferred per user (the last M; "
                                           "default 3), besides the validation and test prefix."),
        top_r: Optional[int] = typer.Option(None, "--top-r", help="--round sessions: items each answer is "
                                                                 "localised to (default 5)."),
        floor: Optional[float] = typer.Option(None, "--floor", help="--round sessions: similarity under which an "
                                                                   "answer counts as hallucinated (default 0.7)."),
        report: bool = typer.Option(False, "--report", help="--round sessions or knowledge: report what the graph "
                                                           "holds (hallucination rate / genre agreement, examples) "
                                                           "instead of asking the LLM."),
        run: Optional[str] = typer.Option(None, "--run", help="--round sessions --report: only this run."),
        scope: str = typer.Option("training", "--scope", help="--round knowledge: training (fused from the whole "
                                  "training prefix; what models and the re-ranker read) or tuning (from the prefix "
                                  "before each user's last training item, the answer of their instruction-tuning "
                                  "example; see kgp export --train-knowledge)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """IKGR-style intent extraction: round 1 exact intents, round 2 related intents (resumable); fused user
        knowledge; LLM4SBR session intents."""
        from ..agent import extract as run_extract

        if round_ not in ("1", "2", "both", "knowledge", "sessions"):
            raise ConfigError(f"--round must be 1, 2, both, knowledge or sessions, got {round_!r}")
        from ..agent.extract import ORDERS

        if order not in ORDERS:
            raise ConfigError(f"--order must be one of {', '.join(ORDERS)}, got {order!r}")
        from ..knowledge import SCOPES

        if scope not in SCOPES:
            raise ConfigError(f"--scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if scope != "training" and round_ != "knowledge":
            raise ConfigError(f"--scope applies to --round knowledge, not --round {round_}")
        if order != "id" and round_ in ("knowledge", "sessions"):
            raise ConfigError(f"--order applies to rounds 1 and 2, not --round {round_}")
        if parallel is not None:
            from ..agent.llm import MAX_PARALLEL

            if not 0 <= parallel <= MAX_PARALLEL:
                raise ConfigError(f"--parallel must be from 0 to {MAX_PARALLEL}, got {parallel}")
        if endpoint is not None:
            from ..agent.llm import parse_endpoints

            parse_endpoints(endpoint)  # a bad list fails here, before the graph is opened
        shard_t = None
        if shard is not None:
            try:
                i, n = (int(x) for x in shard.split("/"))
            except ValueError:
                raise ConfigError(f"--shard expects I/N, e.g. 0/2, got {shard!r}") from None
            shard_t = (i, n)
        if round_ == "sessions":
            _sessions(ctx, dataset, views=views, train_prefixes=train_prefixes, top_r=top_r, floor=floor,
                      limit=limit, shard=shard_t, model=model, endpoint=endpoint, redo=redo, use_cache=not no_cache,
                      report=report, run=run, as_json=as_json)
            return
        if round_ == "knowledge":
            from ..knowledge import extract_knowledge

            if not dataset:
                raise ConfigError("--round knowledge needs --dataset (-d)")
            if report:
                _knowledge_report(ctx, dataset, as_json=as_json)
                return
            with open_graph(ctx) as graph:
                ks = extract_knowledge(graph, settings(ctx), dataset, limit=limit, shard=shard_t, model=model,
                                       endpoint=endpoint, retry_failed=retry_failed, redo=redo,
                                       use_cache=not no_cache, scope=scope)
            if as_json:
                print_json(ks.to_dict())
            else:
                for line in ks.lines():
                    print(line)
            return
        rounds = [1, 2] if round_ == "both" else [int(round_)]
        kw = dict(dataset=dataset, limit=limit, items_only=items_only, model=model, endpoint=endpoint,
                  related_k=related_k, shard=shard_t, retry_failed=retry_failed, use_cache=not no_cache, progress=True, redo=redo,
                  parallel=parallel, order=order)
        if glossary is not None:
            kw["glossary"] = None if glossary.lower() == "none" else glossary
        s = settings(ctx)
        out = []
        with open_graph(ctx) as graph:
            for r in rounds:
                summary = run_extract(graph, s, round=r, **kw)
                out.append(summary)
                if not as_json:
                    for line in summary.lines():
                        print(line)
        if as_json:
            print_json([x.to_dict() for x in out])

    def _knowledge_report(ctx: typer.Context, dataset: str, *, as_json: bool) -> None:
        from ..knowledge import knowledge_report

        with open_graph(ctx, migrate=False) as graph:
            doc = knowledge_report(graph, dataset)
        if as_json:
            print_json(doc)
            return
        pct = (lambda x: "-" if x is None else f"{100 * x:.1f}%")
        print(f"fused knowledge of {dataset}: {doc['users_ok']} of {doc['users_in_dataset']} users ok, "
              f"{doc['users_failed']} failed ({', '.join(doc['models']) or 'no model'})")
        print(f"  likes per user {doc['likes_per_user']}, dislikes per user {doc['dislikes_per_user']}; "
              f"likes that echo a title the user took: {pct(doc['like_echo_share'])}")
        print(f"  likes sharing a word with the user's top {doc['reference_top_words']} training {doc['reference']}: "
              f"{pct(doc['like_agreement_share'])} (chance {pct(doc['like_agreement_chance'])}, "
              f"{doc['users_with_reference']} users)")
        for x in doc["sample"]:
            print(f"  {x['user']}: likes {x['likes']}; dislikes {x['dislikes']}; top {doc['reference']} "
                  f"{x['top_reference']}")

    def _sessions(ctx: typer.Context, dataset: Optional[str], *, views: str, train_prefixes: Optional[int],
                  top_r: Optional[int], floor: Optional[float], limit: Optional[int], shard, model, endpoint,
                  redo: bool, use_cache: bool, report: bool, run: Optional[str], as_json: bool) -> None:
        from ..session_intents import check_options, extract_session_intents, parse_views, session_intents_report

        if not dataset:
            raise ConfigError("--round sessions needs --dataset (-d)")
        s = settings(ctx)
        v = parse_views(views)  # bad options fail here, before the graph is opened
        m = s.session_train_prefixes if train_prefixes is None else train_prefixes
        r = s.session_top_r if top_r is None else top_r
        f = s.session_floor if floor is None else floor
        check_options(train_prefixes=m, top_r=r, floor=f, limit=limit, shard=shard)
        with open_graph(ctx, migrate=not report) as graph:
            if report:
                doc = session_intents_report(graph, dataset, floor=f, run=run)
            else:
                summary = extract_session_intents(graph, s, dataset, views=v, train_prefixes=m, top_r=r, floor=f,
                                                  limit=limit, shard=shard, model=model, endpoint=endpoint,
                                                  redo=redo, use_cache=use_cache, log=info)
                doc = summary.to_dict()
        if as_json:
            print_json(doc)
        elif report:
            rate = "-" if doc["hallucination_rate"] is None else f"{100 * doc['hallucination_rate']:.1f}%"
            print(f"session intents of {dataset}: {doc['guesses']} guesses of {doc['users']} users {doc['per_view']};"
                  f" hallucinated (best item < {f}) {rate}; kinds {doc['kinds']}")
            for name, exs in doc["examples"].items():
                for ex in exs:
                    print(f"  [{name}] {ex['user']} {ex['view']}@{ex['prefixEnd']}: {ex['answer']!r} -> "
                          + ", ".join(f"{x['title']} ({x['score']})" for x in ex["localized"][:3]))
        else:
            for line in summary.lines():
                print(line)

    @app.command("intents")
    def intents(ctx: typer.Context, dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
                quality: bool = typer.Option(False, "--quality", help="Intent quality instead of counts: echo, "
                                             "code and shared shares, agreement with genres/categories "
                                             "(against chance), and a sample to read. Needs --dataset."),
                sample: int = typer.Option(10, help="--quality: items in the sample to read (0-100)."),
                as_json: bool = JsonOpt) -> None:
        """The paper's Table 1 figures (#Intents, #IntEdges exact/related, average intent degree), or with
        --quality whether the intents are worth having."""
        from ..agent import intent_quality, intent_stats

        if quality:
            if not dataset:
                raise ConfigError("--quality needs --dataset (-d)")
            if not 0 <= sample <= 100:
                raise ConfigError(f"--sample must be between 0 and 100, got {sample}")
        with open_graph(ctx, migrate=False) as graph:
            if quality:
                st = intent_quality(graph, dataset, sample=sample)
            else:
                st = intent_stats(graph, dataset=dataset)
        if as_json:
            print_json(st)
            return
        if not quality:
            for k, v in st.items():
                print(f"{k:<28}{v}")
            return
        for k, v in st.items():
            if k != "sample":
                print(f"{k:<28}{'-' if v is None else v}")
        if st["sample"]:
            print("\nsample (exact intents):")
            for it in st["sample"]:
                print(f"  {it['title'] or it['item']}: {', '.join(it['intents'])}")
