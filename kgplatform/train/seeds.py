"""Repeat a run over several seeds; report mean ± standard deviation over seeds and 95 % bootstrap intervals
over users with the seeds pooled (:mod:`kgplatform.eval.stats`)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgplatform.data.candidates import sample_negatives
from kgplatform.data.recdata import RecData
from kgplatform.data.split import leave_one_out
from kgplatform.errors import TrainingError
from kgplatform.eval.evaluate import candidate_policy
from kgplatform.eval.stats import Interval, bootstrap_interval
from kgplatform.models import get_spec
from kgplatform.train.trainer import TrainConfig, Trainer, TrainResult

DEFAULT_SEEDS = (2024, 2025, 2026)
#: metrics that get intervals in records and reports
INTERVAL_METRICS = ("HR@10", "NDCG@10", "MRR", "MRR@10")


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

    @property
    def convention(self) -> str:
        return self.results[0].convention

    def users(self, phase: str = "test"):
        """Graph-index users evaluated in ``phase`` (the same for every seed)."""
        return self.results[0].eval_users[phase]

    def per_user(self, phase: str, protocol: str, metric: str) -> np.ndarray:
        """``[seeds, users]`` per-user values (for intervals and paired differences)."""
        rows = []
        for r in self.results:
            if r.per_user is None:
                raise TrainingError(f"{self.model_name}: run {r.run_id} kept no per-user metrics")
            rows.append(r.per_user[phase][protocol][metric].numpy())
        return np.stack(rows)

    def interval(self, phase: str, protocol: str, metric: str, **kw) -> Interval:
        return bootstrap_interval(self.per_user(phase, protocol, metric), **kw)

    def intervals(self, phase: str = "test", metrics: Sequence[str] = INTERVAL_METRICS) -> dict:
        return {proto: {m: self.interval(phase, proto, m).to_dict() for m in metrics if m in ms}
                for proto, ms in self.stats.get(phase, {}).items()}

    def to_record(self) -> dict:
        return {
            "model": self.model_name,
            "seeds": self.seeds,
            "convention": self.convention,
            "stats": {
                p: {q: {m: list(v) for m, v in ms.items()} for q, ms in ps.items()} for p, ps in self.stats.items()
            },
            "intervals": {"test": self.intervals("test"), "valid": self.intervals("valid")},
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
    policy = candidate_policy(config.convention, get_spec(model).model_cls.needs_sequence)
    cands = sample_negatives(split, checksum, num_negatives=config.num_negatives, seed=config.candidate_seed,
                             cache_dir=config.cache_dir, **policy)
    results = []
    for s in seeds:
        trainer = Trainer(dataclasses.replace(config, seed=s), log=log)
        results.append(trainer.fit(model, data, model_config, split=split, candidates=cands, checksum=checksum))
    return summarize(model, results)
