"""Model comparisons: rows of (model, variant, options) over seeds on one split, with intervals, paired
differences and RecBole side by side. The CLI's ``kgp evaluate`` is a thin wrapper over :func:`run_comparison`.

A *row* is a registry model, optionally one of its ablations (``ikgr:no_aug``, ``persona-sasrec:no_rerank``), with its own training and model
options. Every row is trained once per seed on the same split and the same stored candidates; per-user
metrics are kept, so each row gets a 95 % bootstrap interval (users resampled, seeds pooled) and every pair
asked for (``compare``), every row against the best baseline (chosen on *validation* full NDCG@10) and every
ablation against its full model gets a paired difference with its interval and p-value
(:mod:`kgplatform.eval.stats`).
"""
from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgplatform.data import RecData
from kgplatform.errors import ConfigError
from kgplatform.eval.stats import align_users, paired_difference
from kgplatform.models import get_spec
from kgplatform.train import SeedSummary, TrainConfig, run_seeds

#: rows that count as baselines when picking "the best baseline"
BASELINES = ("pop", "bpr", "lightgcn", "kgcn", "gru4rec", "sasrec", "srgnn")
#: our registry name → RecBole 1.2.1 model name
RECBOLE_NAMES = {"pop": "Pop", "bpr": "BPR", "lightgcn": "LightGCN", "sasrec": "SASRec", "gru4rec": "GRU4Rec",
                 "srgnn": "SRGNN", "kgcn": "KGCN", "kgat": "KGAT"}
DIFF_METRICS = ("NDCG@10", "HR@10")
#: RecBole settings a side-by-side run may not override: they fix the data, the split, the protocol and the seed
#: that make the two sides comparable (the epoch cap has its own option)
RECBOLE_FIXED = frozenset({"data_path", "dataset", "model", "seed", "epochs", "eval_args", "metrics", "topk",
                           "valid_metric", "benchmark_filename", "load_col", "USER_ID_FIELD", "ITEM_ID_FIELD",
                           "TIME_FIELD", "checkpoint_dir", "device", "use_gpu"})
TRAIN_FIELDS_FIXED = {"seed", "device", "cache_dir", "run_dir", "convention"}


@dataclass
class Row:
    name: str
    model: str
    variant: str = ""
    model_options: dict = field(default_factory=dict)
    train_options: dict = field(default_factory=dict)


def plan_rows(models: Sequence[str], ablations: Sequence[str] = (), *, model_options: dict | None = None,
              per_model_train: dict | None = None, per_model_opts: dict | None = None) -> list[Row]:
    """Check the names and options and return the rows (``ablations`` entries ``model:<name>`` become rows; a bare
    ``<name>`` means ``ikgr:<name>``, as before other models had ablations)."""
    model_options = model_options or {}
    per_model_train = per_model_train or {}
    per_model_opts = per_model_opts or {}
    names = [m for m in models if m] + [a if ":" in a else f"ikgr:{a}" for a in ablations if a]
    if not names:
        raise ConfigError("nothing to evaluate: give --models and/or --ablations")
    if len(set(names)) != len(names):
        raise ConfigError(f"a row is named twice: {', '.join(names)}")
    for n in names:
        m, _, variant = n.partition(":")
        spec = get_spec(m)
        if variant in FEATURE_ROWS:
            if "user_features" not in {f.name for f in dataclasses.fields(spec.config_cls)}:
                raise ConfigError(f"{n}: {m} takes no user features",
                                  hint="models with --user-features knowledge: " + ", ".join(knowledge_models()))
        elif variant:
            known_ablations = getattr(spec.config_cls, "ABLATIONS", ())
            if not known_ablations:
                raise ConfigError(f"{n}: {m} has no ablations",
                                  hint="models with ablations: " + ", ".join(ablation_models()))
            if variant not in known_ablations:
                raise ConfigError(f"unknown ablation {variant!r} of {m}", hint="one of: " + ", ".join(known_ablations))
    known = set(names) | {n.split(":", 1)[0] for n in names}
    for flag, given in (("--train", per_model_train), ("--set", per_model_opts)):
        stray = sorted(set(given) - known)
        if stray:
            raise ConfigError(f"{flag} names {', '.join(stray)}, which is not being evaluated",
                              hint="models/rows here: " + ", ".join(sorted(known)))
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - TRAIN_FIELDS_FIXED
    for m, opts in per_model_train.items():
        unknown = sorted(set(opts) - train_fields)
        if unknown:
            raise ConfigError(f"--train {m}: unknown training option(s) {', '.join(unknown)}",
                              hint="one of: " + ", ".join(sorted(train_fields))
                              + " (seeds, device and convention have their own options)")
        checked = TrainConfig(**opts).validate()  # types and ranges, before anything is exported or trained
        opts.update({k: getattr(checked, k) for k in opts})
    rows = []
    for n in names:
        m, _, variant = n.partition(":")
        opts = dict(model_options) | per_model_opts.get(m, {}) | (per_model_opts.get(n, {}) if variant else {})
        spec = get_spec(m)
        if variant in FEATURE_ROWS:
            opts = opts | {"user_features": variant}
        elif variant:
            opts = dataclasses.asdict(spec.config_cls().ablation(variant)) | opts
        spec.make_config(opts)  # unknown option names fail here, before any training
        tr = per_model_train.get(m, {}) | (per_model_train.get(n, {}) if variant else {})
        rows.append(Row(n, m, variant, opts, tr))
    return rows


#: row variant ``model:knowledge``: the model with the embedded fused user knowledge as a feature
KNOWLEDGE_ROW = "knowledge"
#: row variant ``model:fallback``: its control, the same model with only the learned fallback vector of the users
#: without knowledge (the knowledge term held at zero)
FALLBACK_ROW = "fallback"
FEATURE_ROWS = (KNOWLEDGE_ROW, FALLBACK_ROW)
#: why a ``model:knowledge`` row is paired with ``model``
KNOWLEDGE_PAIR = "with fused knowledge vs without"
#: why a ``model:fallback`` row is paired with ``model``
FALLBACK_PAIR = "fallback vector alone vs without"
#: why ``model:knowledge`` is paired with ``model:fallback``: what the knowledge adds beyond the fallback vector
KNOWLEDGE_VS_FALLBACK = "with fused knowledge vs the fallback vector alone"
#: the pairs :func:`knowledge_differences` repeats on the users who have fused knowledge
KNOWLEDGE_PAIRS = (KNOWLEDGE_PAIR, KNOWLEDGE_VS_FALLBACK, FALLBACK_PAIR)


def knowledge_models() -> list[str]:
    """Registry models whose config has ``user_features`` (rows ``model:knowledge``)."""
    from kgplatform.models import MODELS

    return [n for n, sp in MODELS.items() if "user_features" in {f.name for f in dataclasses.fields(sp.config_cls)}]


def needs_knowledge(rows: Sequence[Row]) -> bool:
    """Whether a row uses the fused user knowledge (the export must then read it)."""
    return any(r.model_options.get("user_features", "none") != "none" for r in rows)


def needs_session_intents(rows: Sequence[Row]) -> tuple[bool, bool]:
    """``(session intents, encoded raw answers)``: whether a row reads the LLM4SBR session intents, and whether one
    reads the raw answers (``semantic=answer``); the export must then read (and encode) them."""
    from kgplatform.models import MODELS

    spec = MODELS["llm4sbr"]
    cfgs = [spec.make_config(r.model_options) for r in rows if r.model == "llm4sbr"]
    return any(c.use_llm for c in cfgs), any(c.use_llm and c.semantic == "answer" for c in cfgs)


def ablation_models() -> list[str]:
    """Registry models whose config declares ``ABLATIONS`` (rows ``model:<ablation>``)."""
    from kgplatform.models import MODELS

    return [n for n, sp in MODELS.items() if getattr(sp.config_cls, "ABLATIONS", ())]


def comparison_pairs(summaries: Sequence[SeedSummary], requested: Sequence[tuple[str, str]] = ()
                     ) -> list[tuple[str, str, str]]:
    """``(a, b, why)``: the requested pairs, each row against the best baseline (validation full NDCG@10),
    each ablation against its full model."""
    names = [s.model_name for s in summaries]
    for a, b in requested:
        for n in (a, b):
            if n not in names:
                raise ConfigError(f"--compare names {n!r}, which is not a row here", hint="rows: " + ", ".join(names))
    pairs: list[tuple[str, str, str]] = [(a, b, "requested") for a, b in requested]
    why_variant = {KNOWLEDGE_ROW: KNOWLEDGE_PAIR, FALLBACK_ROW: FALLBACK_PAIR}
    for s in summaries:  # before the baseline pairs: a knowledge row's pair is named for what it tests
        full, _, variant = s.model_name.partition(":")
        if variant and full in names:
            pairs.append((s.model_name, full, why_variant.get(variant, "ablation vs full model")))
        if variant == KNOWLEDGE_ROW and f"{full}:{FALLBACK_ROW}" in names:
            pairs.append((s.model_name, f"{full}:{FALLBACK_ROW}", KNOWLEDGE_VS_FALLBACK))
    base = [s for s in summaries if s.model_name in BASELINES]
    if base:
        best = max(base, key=lambda s: s.stats["valid"]["full"]["NDCG@10"][0]).model_name
        pairs += [(s.model_name, best, "vs best baseline (validation)") for s in summaries if s.model_name != best]
    seen, out = set(), []
    for a, b, why in pairs:
        if (a, b) not in seen and (b, a) not in seen:
            seen.add((a, b))
            out.append((a, b, why))
    return out


def knowledge_differences(summaries: Sequence[SeedSummary], data: RecData, phase: str = "test",
                          metrics: Sequence[str] = DIFF_METRICS) -> list[dict]:
    """The pairs of the knowledge rows (with fused knowledge vs without, vs the fallback vector alone, the fallback
    alone vs without) again, on the users of ``phase`` who have fused knowledge (knowledge is usually extracted for
    part of the users; the others only get the learned fallback vector, so the all-user difference dilutes the
    effect). Empty when the export read no knowledge or fewer than 2 such users."""
    mask_all = data.user_knowledge_mask
    pairs = [p for p in comparison_pairs(summaries) if p[2] in KNOWLEDGE_PAIRS]
    if mask_all is None or not pairs:
        return []
    users = np.asarray(summaries[0].users(phase), dtype=np.int64)
    mask = mask_all.numpy()[users]
    if int(mask.sum()) < 2:
        return []
    label = f"users with fused knowledge ({int(mask.sum())} of {len(users)})"
    return differences(summaries, pairs, phase, metrics, users=mask, label=label)


def differences(summaries: Sequence[SeedSummary], pairs: Sequence[tuple[str, str, str]], phase: str = "test",
                metrics: Sequence[str] = DIFF_METRICS, *, users: np.ndarray | None = None,
                label: str | None = None) -> list[dict]:
    """Paired differences A − B per (protocol, metric); ``users`` (a ``[users]`` bool mask over
    ``split.users(phase)``) restricts them to those users, ``label`` names that selection in each record."""
    by = {s.model_name: s for s in summaries}
    out = []

    def sel(x):
        return x if users is None else np.asarray(x)[..., users]

    for a, b, why in pairs:
        for proto in by[a].stats[phase]:
            if proto not in by[b].stats[phase]:
                continue
            for m in metrics:
                d = paired_difference(sel(by[a].per_user(phase, proto, m)), sel(by[b].per_user(phase, proto, m)),
                                      names=(a, b))
                out.append({"a": a, "b": b, "why": why, "phase": phase, "protocol": proto, "metric": m,
                            **({"users": label} if label else {}),
                            **d.to_dict(), "excludes_zero": d.excludes_zero, "verdict": d.verdict()})
    return out


@dataclass
class Comparison:
    dataset: str
    convention: str
    seeds: list[int]
    summaries: list[SeedSummary]
    differences: list[dict]
    recbole: list[dict]
    data_summary: dict
    command: str
    partial: bool = False

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "command": self.command,
            "convention": self.convention,
            "seeds": self.seeds,
            "data": self.data_summary,
            "partial": self.partial,
            "interval_method": "95 % percentile bootstrap over users (2000 resamples), seeds pooled",
            "models": [s.to_record() for s in self.summaries],
            "differences": self.differences,
            "recbole": self.recbole,
            "runs": {s.model_name: [r.to_record() for r in s.results] for s in self.summaries},
        }


def _raw(gid: str) -> str:
    return gid.split(":", 1)[1] if ":" in gid else gid


def check_recbole_config(config: dict[str, dict] | None, models: Sequence[str]) -> None:
    """Per-model RecBole settings for a side-by-side run: only models being run, and none of
    :data:`RECBOLE_FIXED`; :class:`~kgplatform.errors.ConfigError` otherwise."""
    stray = sorted(set(config or {}) - set(models))
    if stray:
        raise ConfigError(f"--recbole-set names {', '.join(stray)}, which is not in --with-recbole")
    fixed = sorted({k for opts in (config or {}).values() for k in opts} & RECBOLE_FIXED)
    if fixed:
        raise ConfigError(f"RecBole option(s) {', '.join(fixed)} cannot be set in a side-by-side run: they fix "
                          f"the data, split, protocol or seed both sides share",
                          hint="model and training settings only, e.g. --recbole-set sasrec.MAX_ITEM_LIST_LENGTH=20;"
                               " the epoch cap: --recbole-epochs")


class RecBoleJobs:
    """RecBole 1.2.1 runs on our export of the data (the same split), started before our own training and run
    one at a time in a background thread (each a subprocess in RecBole's own virtualenv), so both sides train
    at once — one thread each on a small machine — and the seconds-per-epoch ratio compares like with like."""

    def __init__(self, data: RecData, models: Sequence[str], work: Path, *, epochs: dict[str, int] | None = None,
                 config: dict[str, dict] | None = None, pairs: dict[str, str] | None = None, seed: int = 2020,
                 parallel: bool = True, train_once: bool = True, log: Callable[[str], None] = print) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from kgplatform.eval.recbole import ensure_recbole, run_recbole
        from kgplatform.graph.export import save_recbole

        ensure_recbole()
        unknown = [m for m in models if m not in RECBOLE_NAMES]
        if unknown:
            raise ConfigError(f"--with-recbole: no RecBole counterpart for {', '.join(unknown)}",
                              hint="one of: " + ", ".join(RECBOLE_NAMES))
        check_recbole_config(config, models)
        stray = sorted(set(pairs or {}) - set(models))
        if stray:
            raise ConfigError(f"RecBole pairing names {', '.join(stray)}, which is not in --with-recbole")
        self.data, self.log, self.seed, self.config = data, log, seed, {m: dict(o) for m, o in (config or {}).items()}
        # RecBole model -> the name of our row its per-user figures are paired with (by default the same name)
        self.pairs = {m: (pairs or {}).get(m, m) for m in models}
        atomic = save_recbole(data, work / "atomic")[0].parent
        self.jobs: list[tuple[str, str, str, Any]] = []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recbole")
        self._pool = pool

        self.train_once = train_once

        def one(m: str, mode: str):
            also = ("uni99",) if train_once else ()
            log(f"[recbole] {RECBOLE_NAMES[m]} {mode}{'+' + ','.join(also) if also else ''} on {data.dataset} started")
            t0 = time.perf_counter()
            res = run_recbole(atomic, data.dataset, RECBOLE_NAMES[m], mode=mode, seed=seed,
                              epochs=(epochs or {}).get(m), config=(config or {}).get(m),
                              workdir=work / f"{m}-{mode}", also_modes=also)
            for r in (res, *res.extra.values()):
                log(f"[recbole] {RECBOLE_NAMES[m]} {r.mode}: test NDCG@10="
                    f"{r.metrics['test'].get('NDCG@10', float('nan')):.4f} "
                    f"({res.seconds_per_epoch or 0:.1f} s/epoch, {time.perf_counter() - t0:.0f} s)")
            return res

        # train_once: one RecBole training per model (early stopping on full-ranking validation, as ours),
        # evaluated under both protocols; otherwise one training per protocol (RecBole's quick_start way)
        modes = (("full", ("full", "uni99")),) if train_once else (("full", ("full",)), ("uni99", ("uni99",)))
        for m in models:
            for mode, reads in modes:
                fut = pool.submit(one, m, mode) if parallel else None
                self.jobs.append((m, mode, reads, fut if parallel else (one, m, mode)))

    def collect(self, summaries: Sequence[SeedSummary]) -> list[dict]:
        by = {s.model_name: s for s in summaries}
        out = []
        try:
            for m, mode, reads, job in self.jobs:
                res = job.result() if hasattr(job, "result") else job[0](job[1], job[2])
                for read in reads:
                    r = res if read == mode else res.extra[read]
                    proto = "full" if read == "full" else "sampled" + read[len("uni"):]
                    row = _pair_with_recbole(self.data, by.get(self.pairs[m]), m, read, proto, r, self.seed)
                    if "ours" in row:
                        row["paired_with"] = self.pairs[m]
                    row["recbole_trained_for"] = mode
                    # the settings asked for, as RecBole's final config holds them
                    row["recbole_options"] = {k: res.config.get(k) for k in self.config.get(m, {})}
                    out.append(row)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return out


def _pair_with_recbole(data: RecData, ours: SeedSummary | None, m: str, mode: str, proto: str, res,
                       seed: int) -> dict:
    row = {"model": m, "recbole_model": RECBOLE_NAMES[m], "protocol": proto, "mode": mode, "seed": seed,
           "recbole": res.metrics["test"], "recbole_valid": res.metrics.get("valid"),
           "recbole_seconds_per_epoch": res.seconds_per_epoch, "recbole_epochs": res.epochs_run,
           "recbole_best_epoch": res.best_epoch, "recbole_version": res.recbole_version,
           "recbole_wall_seconds": res.wall_seconds}
    if ours is None or proto not in ours.stats["test"]:
        return row
    row["ours"] = {k: v[0] for k, v in ours.stats["test"][proto].items()}
    row["ours_seconds_per_epoch"] = ours.seconds_per_epoch[0]
    if res.seconds_per_epoch:
        row["seconds_ratio"] = ours.seconds_per_epoch[0] / res.seconds_per_epoch
    pu = res.per_user.get("test", {})
    if pu.get("users"):
        ids = [_raw(data.user_ids[int(u)]) for u in ours.users("test")]
        row["differences"] = {}
        for metric in DIFF_METRICS:
            if metric not in pu:
                continue
            a, b, common = align_users(ids, ours.per_user("test", proto, metric), [str(u) for u in pu["users"]],
                                       np.asarray([pu[metric]], dtype=np.float64))
            d = paired_difference(a, b, names=(f"ours {m}", f"RecBole {RECBOLE_NAMES[m]}"))
            row["differences"][metric] = {**d.to_dict(), "excludes_zero": d.excludes_zero, "verdict": d.verdict(),
                                          "users_paired": len(common)}
    return row


def run_comparison(
    data: RecData,
    rows: Sequence[Row],
    *,
    seeds: Sequence[int],
    train: dict[str, Any],
    out_dir: Path,
    compare: Sequence[tuple[str, str]] = (),
    with_recbole: Sequence[str] = (),
    recbole_epochs: dict[str, int] | None = None,
    recbole_config: dict[str, dict] | None = None,
    recbole_pairs: dict[str, str] | None = None,
    recbole_parallel: bool = True,
    recbole_train_once: bool = True,
    command: str | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    on_row: Callable[[SeedSummary], None] | None = None,
) -> Comparison:
    """Train every row over ``seeds`` and compare (see the module docstring).

    Args:
        train: TrainConfig fields shared by every row (``device``, ``cache_dir``, ``convention``, …); a row's own
            ``train_options`` win.
        out_dir: run folders, ``results.json``, ``report.md`` and ``results.png`` go here; the report is
            rewritten after each row, so a stopped comparison keeps its finished rows.
        on_row: called with each finished row (e.g. to write the run back to the graph).
        with_recbole / recbole_epochs / recbole_config / recbole_parallel: RecBole 1.2.1 counterparts of these
            rows (``recbole_config``: per-model RecBole settings, e.g. ``{"sasrec": {"MAX_ITEM_LIST_LENGTH": 20}}``;
            the data, split, protocol and seed stay fixed, :data:`RECBOLE_FIXED`) on the same
            split, both protocols; with ``recbole_parallel`` they run beside our training, one torch thread each;
            with ``recbole_train_once`` (default) RecBole trains once per model with early stopping on full-ranking
            validation NDCG@10 (as our Trainer does) and that model is tested under both protocols; otherwise it
            trains once per protocol, early-stopping on that protocol's validation (RecBole's quick_start way).
        recbole_pairs: RecBole model → the name of the row it is paired with, user by user (default: the row of
            the same name, e.g. ``sasrec``); e.g. ``{"sasrec": "llm4sbr:no_llm"}`` pairs RecBole's SASRec with the
            SASRec backbone of LLM4SBR's training. A RecBole model without its row is reported unpaired.
    """
    from kgplatform.experiment.report import write_report

    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    convention = train.get("convention", "kgp")
    summaries: list[SeedSummary] = []

    def snapshot(partial: bool, diffs=None, rb=None) -> Comparison:
        return Comparison(data.dataset, convention, list(seeds), list(summaries), diffs or [], rb or [],
                          data.summary(), command, partial)

    jobs = None
    if with_recbole:
        if recbole_parallel:
            import os

            import torch

            os.environ["OMP_NUM_THREADS"] = "1"  # inherited by RecBole's subprocesses
            torch.set_num_threads(1)
        jobs = RecBoleJobs(data, with_recbole, out_dir / "recbole", epochs=recbole_epochs, config=recbole_config,
                           pairs=recbole_pairs, parallel=recbole_parallel,
                           train_once=recbole_train_once, log=log)
    for row in rows:
        cfg = TrainConfig(**(dict(train) | row.train_options | {"run_dir": out_dir / row.name.replace(":", "-")}))
        summary = run_seeds(row.model, data, cfg, row.model_options or None, seeds=seeds, log=log)
        if row.variant:
            summary = dataclasses.replace(summary, model_name=row.name)
        summaries.append(summary)
        log(summary.format())
        if on_row:
            on_row(summary)
        if len(summaries) < len(rows):
            write_report(snapshot(True), out_dir)
            log(f"partial report: {out_dir / 'report.md'}")
    # knowledge rows: also on the users with knowledge, on validation too (where settings such as knowledge_reg
    # are chosen) as well as test
    diffs = (differences(summaries, comparison_pairs(summaries, compare)) + knowledge_differences(summaries, data)
             + knowledge_differences(summaries, data, phase="valid"))
    rb = jobs.collect(summaries) if jobs is not None else []
    result = snapshot(False, diffs, rb)
    write_report(result, out_dir)
    return result
