"""``kgp personas``: HDGI personas learned from the training graph, labelled by the LLM, written back."""
from __future__ import annotations

from typing import Optional

import typer

from ..errors import ConfigError, TrainingError
from .common import info, open_graph, print_json, settings


def register(app: typer.Typer) -> None:
    @app.command()
    def personas(
        ctx: typer.Context,
        dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name in the graph."),
        k: int = typer.Option(0, "--k", min=0, max=1000,
                              help="Number of personas (0: the K of 4-16 with the best silhouette)."),
        metapaths: str = typer.Option("UIU,UIEIU,UITIU", help="Metapaths (those the graph lacks are skipped)."),
        vectors: str = typer.Option("hdgi", help="hdgi (the paper) or mean (users' mean item text vectors)."),
        epochs: int = typer.Option(300, min=1, max=100000, help="HDGI epochs (early stop on the DGI loss)."),
        hidden: int = typer.Option(64, min=1, max=4096, help="HDGI embedding size."),
        seed: int = typer.Option(2024, help="Seed (HDGI init, corruption, k-means)."),
        label: bool = typer.Option(True, "--label/--no-label", help="Ask the LLM for a short label per persona."),
        model: Optional[str] = typer.Option(None, help="LLM for labels: smollm2, gemma3-270m or a .gguf path."),
        endpoint: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint for labels."),
        show: bool = typer.Option(False, "--show", help="Print the dataset's current personas; learn nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Learn personas (HDGI over the training graph, k-means), label them, write them back in one transaction."""
        from ..models.personas import HDGIConfig

        names = tuple(m.strip() for m in metapaths.split(",") if m.strip())
        try:
            cfg = HDGIConfig(hidden=hidden, epochs=epochs, metapaths=names, k=k, user_vectors=vectors).validate()
        except TrainingError as e:
            raise ConfigError(e.message.replace("personas: ", "--"), hint=e.hint) from None
        s = settings(ctx)
        with open_graph(ctx) as graph:
            if show:
                from ..graph.personas import list_personas

                rows = list_personas(graph, dataset)
                if as_json:
                    print_json(rows)
                    return
                if not rows:
                    print(f"no personas for {dataset}: run kgp personas -d {dataset}")
                    return
                _table(rows)
                return
            from ..experiment.personas import run_personas

            rep = run_personas(graph, s, dataset, config=cfg, seed=seed, label=label, llm_model=model,
                               endpoint=endpoint, log=info)
        if as_json:
            print_json(rep.to_dict())
            return
        sm = rep.run.summary
        sil = sm.get("silhouette") or {}
        print(f"personas run {rep.run.run_id}: K={len(rep.run.personas)}"
              + (f" (silhouette {', '.join(f'{kk}:{v:.3f}' for kk, v in sil.items())})" if sil else " (given)"))
        if sm.get("metapaths"):
            print("metapaths (semantic attention): " + ", ".join(f"{n} {w:.2f}" for n, w in sm["metapaths"].items()))
        print(f"written: {rep.written.personas} Persona nodes, {rep.written.memberships:,} HAS_PERSONA edges, "
              f"{rep.written.user_vectors:,} emb_hdgi vectors in {rep.written.seconds:.1f} s; "
              f"timings {rep.seconds}; HDGI {rep.hdgi_seconds_per_epoch or 0:.3f} s/epoch; "
              f"peak RSS {rep.peak_rss_mb:.0f} MB")
        _table([{"index": p.index, "size": p.size, "label": p.label, "labelSource": p.label_source,
                 "topEntities": p.top_entities, "topItems": p.top_items} for p in rep.run.personas])


def _table(rows: list[dict]) -> None:
    for p in sorted(rows, key=lambda r: -int(r.get("size") or 0)):
        src = "" if p.get("labelSource") == "llm" else f" [{p.get('labelSource')}]"
        print(f"{p['index']:>3}. {p.get('label')}{src}  ({p.get('size')} users)")
        if p.get("topEntities"):
            print("      typical: " + "; ".join(p["topEntities"][:4]))
        if p.get("topItems"):
            print("      items:   " + "; ".join(p["topItems"][:4]))
