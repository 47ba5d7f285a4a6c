"""One-change-at-a-time variant studies: which of a model's settings help, measured on validation, and the
chosen one tested against the baselines.

A study is a list of rows (:class:`~kgplatform.experiment.compare.Row`): the base configuration, each variant
(the base with one change), and baselines. Every row is trained over the same seeds on the same split
(:func:`~kgplatform.experiment.compare.run_comparison`, possibly in several processes whose summaries are merged
with :func:`light_summary`). :func:`variant_report` then

- gives each variant's paired difference from the base on **validation** (full ranking, NDCG@10 and HR@10),
- chooses the variant with the best validation full NDCG@10 (the base included; test figures play no part),
- and gives the chosen row's **test** differences from every baseline and from the rows named as its
  ablations (e.g. the same settings without intents).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from kgplatform.experiment.compare import Row, differences
from kgplatform.train.seeds import SeedSummary

METRICS = ("NDCG@10", "HR@10")


def variant_rows(model: str, base: dict[str, Any], variants: dict[str, dict[str, Any]],
                 train: dict[str, dict[str, Any]] | None = None) -> list[Row]:
    """``model:base`` and one row ``model:NAME`` per variant with ``base | variants[NAME]`` as its options;
    ``train[NAME]`` holds a row's own training options (e.g. weight decay)."""
    train = train or {}
    rows = [Row(f"{model}:base", model, "base", dict(base), dict(train.get("base", {})))]
    for name, change in variants.items():
        rows.append(Row(f"{model}:{name}", model, name, dict(base) | dict(change), dict(train.get(name, {}))))
    return rows


def light_summary(s: SeedSummary) -> SeedSummary:
    """The summary without models, splits and embeddings (picklable and small), keeping per-user values."""
    slim = [dataclasses.replace(r, model=None, split=None, user_embeddings=None, item_embeddings=None)
            for r in s.results]
    return dataclasses.replace(s, results=slim)


def _iv(s: SeedSummary, phase: str, proto: str, m: str) -> dict:
    return s.interval(phase, proto, m).to_dict()


def variant_report(summaries: Sequence[SeedSummary], *, base: str, candidates: Sequence[str],
                   baselines: Sequence[str] = (), ablations: dict[str, str] | None = None) -> dict[str, Any]:
    """The study's figures (see the module docstring).

    Args:
        base: the base row's name; ``candidates``: the rows eligible for the choice (the base and its variants).
        baselines: rows the chosen one is tested against.
        ablations: ``{chosen row name: its ablation row}`` pairs tested when that row is chosen (e.g. the
            no-intents version of each candidate that has one).
    """
    by = {s.model_name: s for s in summaries}
    rows = {}
    for name, s in by.items():
        rows[name] = {"seeds": s.seeds, "seconds_per_epoch": s.seconds_per_epoch[0],
                      "best_epochs": [r.best_epoch for r in s.results],
                      "model_config": s.results[0].model_config if s.results else {},
                      "valid": {m: _iv(s, "valid", "full", m) for m in METRICS},
                      "test": {m: _iv(s, "test", "full", m) for m in METRICS}}
    vs_base = differences(summaries, [(c, base, "variant vs base") for c in candidates if c != base], phase="valid",
                          metrics=METRICS)
    vs_base = [d for d in vs_base if d["protocol"] == "full"]
    chosen = max(candidates, key=lambda c: by[c].stats["valid"]["full"]["NDCG@10"][0])
    pairs = [(chosen, b, "chosen vs baseline") for b in baselines]
    abl = (ablations or {}).get(chosen)
    if abl and abl in by:
        pairs.append((chosen, abl, "chosen vs its ablation"))
    if chosen != base:
        pairs.append((chosen, base, "chosen vs base"))
    test = differences(summaries, pairs, phase="test", metrics=METRICS)
    return {"rows": rows, "valid_differences_vs_base": vs_base, "chosen": chosen,
            "chosen_by": "highest mean validation full NDCG@10 over seeds (test figures not used)",
            "test_differences": test}
