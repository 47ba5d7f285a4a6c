"""Repeat a run over several seeds and report mean ± standard deviation."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgplatform.eval.candidates import sample_negatives
from kgplatform.eval.split import leave_one_out
from kgplatform.train.data import RecData
from kgplatform.train.trainer import TrainConfig, Trainer, TrainResult

DEFAULT_SEEDS = (2024, 2025, 2026)


@dataclass
class SeedSummary:
    """``stats[phase][protocol][metric] = (mean, std)`` over ``results`` (sample std, ``ddof=1``)."""

    model_name: str
    seeds: list[int]
    results: list[TrainResult]
    stats: dict[str, dict[str, dict[str, tuple[float, float]]]]
    seconds_per_epoch: tuple[float, float]

    def format(self, phase: str = "test", metrics: Sequence[str] = ("HR@1", "HR@10", "NDCG@10", "MRR")) -> str:
        lines = []
        for proto, ms in self.stats[phase].items():
            cells = "  ".join(f"{m} {ms[m][0]:.4f}±{ms[m][1]:.4f}" for m in metrics if m in ms)
            lines.append(f"{self.model_name:8s} {phase} {proto:10s} {cells}")
        return "\n".join(lines)

    def to_record(self) -> dict:
        return {
            "model": self.model_name,
            "seeds": self.seeds,
            "stats": {
                p: {q: {m: list(v) for m, v in ms.items()} for q, ms in ps.items()} for p, ps in self.stats.items()
            },
            "seconds_per_epoch": list(self.seconds_per_epoch),
            "runs": [r.run_id for r in self.results],
        }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(model_name: str, results: Sequence[TrainResult]) -> SeedSummary:
    """Mean ± std of every metric of ``results`` (same model, different seeds)."""
    stats: dict = {}
    first = results[0].metrics
    for phase, protos in first.items():
        stats[phase] = {}
        for proto, ms in protos.items():
            stats[phase][proto] = {m: mean_std([r.metrics[phase][proto][m] for r in results]) for m in ms}
    return SeedSummary(
        model_name, [r.seed for r in results], list(results), stats,
        mean_std([r.seconds_per_epoch for r in results]),
    )


def run_seeds(
    model: str,
    data: RecData,
    config: TrainConfig | None = None,
    model_config: Any = None,
    *,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    log: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Train ``model`` once per seed (same split and candidates for all) and summarise."""
    config = config or TrainConfig()
    checksum = data.checksum()
    split = leave_one_out(data)
    cands = sample_negatives(split, checksum, num_negatives=config.num_negatives, seed=config.candidate_seed,
                             cache_dir=config.cache_dir)
    results = []
    for s in seeds:
        trainer = Trainer(dataclasses.replace(config, seed=s), log=log)
        results.append(trainer.fit(model, data, model_config, split=split, candidates=cands, checksum=checksum))
    return summarize(model, results)
