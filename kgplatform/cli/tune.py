"""``kgp tune`` (LoRA instruction tuning) and ``kgp rerank-eval`` (the LLM as a re-ranker): thin over
:mod:`kgplatform.tune`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import info, print_json, settings

DatasetOpt = typer.Option(..., "--dataset", "-d", help="Dataset name (names the default folders).")
BaseOpt = typer.Option("smollm2", "--base", help="Base model: a bundled name (smollm2), a .gguf file or a "
                       "transformers checkpoint folder (local files only).")
DataOpt = typer.Option(None, "--data", help="Folder with train/valid/test.jsonl from `kgp export --format "
                       "instructions` (default <home>/instructions/DATASET).")
DeviceOpt = typer.Option("cpu", "--device", help="cpu | cuda.")
CandOpt = typer.Option(False, "--with-candidates", help="Keep the numbered candidate list in the prompt "
                       "(longer prompts; default: history and knowledge only).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document.")


def _data_dir(ctx: typer.Context, dataset: str, data: Optional[Path]) -> Path:
    return data or settings(ctx).home / "instructions" / dataset


def register(app: typer.Typer) -> None:
    @app.command()
    def tune(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        base: str = BaseOpt,
        data: Optional[Path] = DataOpt,
        out: Optional[Path] = typer.Option(None, "--out", help="Adapter folder (new or empty; default "
                                           "<home>/adapters/DATASET)."),
        steps: int = typer.Option(100, help="Optimiser steps."),
        batch_size: int = typer.Option(4, help="Examples per step."),
        lr: float = typer.Option(2e-4, help="AdamW learning rate."),
        max_length: int = typer.Option(384, help="Tokens per example (the prompt is cut from the left)."),
        lora_r: int = typer.Option(8, help="LoRA rank r."),
        lora_alpha: int = typer.Option(16, help="LoRA alpha (scale alpha/r)."),
        target_modules: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module names."),
        with_candidates: bool = CandOpt,
        seed: int = typer.Option(2024, help="Seed (batch order, dropout)."),
        device: str = DeviceOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """LoRA-tune a small local LLM on the instruction data's train.jsonl; saves the adapter and tune.json."""
        from ..tune import TuneConfig, load_base
        from ..tune import tune as run

        cfg = TuneConfig(steps=steps, lr=lr, batch_size=batch_size, max_length=max_length, r=lora_r,
                         alpha=lora_alpha, target_modules=tuple(t.strip() for t in target_modules.split(",") if t.strip()),
                         with_candidates=with_candidates, seed=seed)
        cfg.check()
        train = _data_dir(ctx, dataset, data) / "train.jsonl"
        if not train.is_file():
            raise ConfigError(f"{train}: no such instruction file",
                              hint=f"kgp export --format instructions -d {dataset} --out DIR, then --data DIR")
        from ..graph.instructions import read_instructions
        from ..tune.base import resolve_base, resolve_device

        read_instructions(train)  # a corrupt file fails here, before the model is loaded
        resolve_base(base, settings(ctx).home)
        resolve_device(device)
        target = out or settings(ctx).home / "adapters" / dataset
        if target.exists() and any(target.iterdir()):
            raise ConfigError(f"--out {target} exists and is not empty", hint="choose a new folder")
        b = load_base(base, settings(ctx).home, device)
        res = run(b, train, target, cfg, dataset=dataset,
                  progress=lambda s, loss: info(f"step {s}/{cfg.steps}: loss {loss:.4f}"))
        m = res.meta
        doc = {"adapter": str(res.out), **{k: m[k] for k in ("base", "examples", "steps", "epochs", "examples_per_s",
                                                               "peak_rss_mb", "probe_loss_before", "probe_loss_after")}}
        if as_json:
            print_json(doc)
        else:
            print(f"tuned {m['base']} on {m['examples']} examples, {m['steps']} steps ({m['examples_per_s']} "
                  f"examples/s, peak RSS {m['peak_rss_mb']} MiB): probe loss {m['probe_loss_before']:.4f} → "
                  f"{m['probe_loss_after']:.4f}; adapter in {res.out}")

    @app.command("rerank-eval")
    def rerank_eval(
        ctx: typer.Context,
        dataset: str = DatasetOpt,
        base: str = BaseOpt,
        adapter: Optional[Path] = typer.Option(None, "--adapter", help="A tuned adapter folder (kgp tune --out); "
                                               "without it only the untuned base is scored."),
        data: Optional[Path] = DataOpt,
        phase: str = typer.Option("test", help="valid | test."),
        users: Optional[int] = typer.Option(None, help="Evaluate a seeded sample of this many users (default all)."),
        score: str = typer.Option("mean", help="Score aggregate reported first: mean | sum (token log-likelihoods)."),
        seed: int = typer.Option(0, help="Seed of the user sample and the bootstrap."),
        with_candidates: Optional[bool] = typer.Option(None, "--with-candidates/--history-only",
                                                       help="Prompt form (default: the adapter's, else history only)."),
        only_knowledge: bool = typer.Option(False, "--only-knowledge", help="Only the users whose prompt shows "
                                            "fused knowledge (before --users draws its sample)."),
        knowledge_ablation: bool = typer.Option(False, "--knowledge-ablation", help="Also score every model on the "
                                                "same users with the knowledge line replaced by '(none yet)'; "
                                                "reports with - without, paired by user."),
        device: str = DeviceOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Re-rank each user's stored candidates by the LLM's likelihood: HR@1/5/10, NDCG@10, MRR with 95 %
        bootstrap intervals, untuned vs tuned (paired difference), and with vs without the fused knowledge."""
        from ..graph.instructions import read_instructions
        from ..tune import (evaluate_with_ablation, load_adapter, load_base, rerank_report, rows_with_knowledge,
                            select_rows)
        from ..tune.lora import read_meta
        from ..tune.rerank import AGGREGATES

        if phase not in ("valid", "test"):
            raise ConfigError(f"unknown --phase {phase!r} (valid|test)")
        if score not in AGGREGATES:
            raise ConfigError(f"unknown --score {score!r} (mean|sum)")
        path = _data_dir(ctx, dataset, data) / f"{phase}.jsonl"
        if not path.is_file():
            raise ConfigError(f"{path}: no such instruction file",
                              hint=f"kgp export --format instructions -d {dataset} --out DIR, then --data DIR")
        meta = read_meta(adapter) if adapter is not None else {}
        wc = with_candidates if with_candidates is not None else bool(meta.get("config", {}).get("with_candidates"))
        from ..tune.base import candidate_titles, resolve_base, resolve_device

        rows = read_instructions(path)
        if only_knowledge:
            rows = rows_with_knowledge(rows)
            if not rows:
                raise ConfigError(f"{path}: no example shows fused knowledge",
                                  hint=f"kgp extract --round knowledge -d {dataset}, then kgp export --format "
                                  "instructions again")
        rows = select_rows(rows, users, seed)
        if not rows:
            raise ConfigError(f"{path}: no examples")
        if knowledge_ablation and not rows_with_knowledge(rows):
            raise ConfigError(f"--knowledge-ablation: no example of {path.name} shows fused knowledge",
                              hint=f"kgp extract --round knowledge -d {dataset}, then kgp export --format "
                              "instructions again")
        for r in rows:
            candidate_titles(r)
        resolve_base(base, settings(ctx).home)
        resolve_device(device)
        b = load_base(base, settings(ctx).home, device)

        def progress(name: str, done: int, total: int) -> None:
            if done % 10 == 0 or done == total:
                info(f"[rerank] {name}: {done}/{total} users")

        runs = evaluate_with_ablation(b, rows, "untuned", knowledge_ablation=knowledge_ablation, with_candidates=wc,
                                      progress=progress)
        if adapter is not None:
            load_adapter(b, adapter)
            runs |= evaluate_with_ablation(b, rows, "tuned", knowledge_ablation=knowledge_ablation,
                                           with_candidates=wc, progress=progress)
        doc: dict = {"dataset": dataset, "phase": phase, "users": len(rows), "score": score, "base": b.model_id,
                     "adapter": str(adapter) if adapter else None, "with_candidates": wc,
                     "only_knowledge": only_knowledge, "with_knowledge": len(rows_with_knowledge(rows)),
                     **rerank_report(runs, score=score, seed=seed)}
        runs_first = next(iter(runs.values()))
        if as_json:
            print_json(doc)
            return
        print(f"{dataset} {phase}: {len(rows)} users ({doc['with_knowledge']} with fused knowledge), "
              f"{runs_first.candidates} candidates each, score {score}")
        for name, m in doc["models"].items():
            cells = "  ".join(f"{k} {m[k]['mean']:.4f} [{m[k]['low']:.4f}, {m[k]['high']:.4f}]"
                              for k in ("HR@1", "NDCG@10", "MRR"))
            print(f"  {name:20} {cells}  ({m['seconds_per_user']} s/user)")
        pairs = [("tuned - untuned", doc.get("tuned_minus_untuned", {}))]
        pairs += [(f"{n}: with - without knowledge", d) for n, d in doc.get("knowledge_minus_none", {}).items()]
        for label, diffs in pairs:
            for k, d in diffs.items():
                if k in ("HR@1", "NDCG@10", "MRR"):
                    print(f"  {label} {k}: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                          f"p={d['p_value']:.3g}", file=sys.stdout)
