"""Evaluation: leave-one-out split, metrics, sampled-negative candidates, full-ranking and sampled evaluation."""
from kgplatform.eval.candidates import SampledCandidates, sample_negatives
from kgplatform.eval.evaluate import FULL, evaluate, rank_counts_for, sampled_label
from kgplatform.eval.metrics import metric_names, rank_counts, rank_metrics
from kgplatform.eval.split import PAD, Split, leave_one_out

__all__ = [
    "FULL", "PAD", "SampledCandidates", "Split", "evaluate", "leave_one_out", "metric_names", "rank_counts",
    "rank_counts_for", "rank_metrics", "sample_negatives", "sampled_label",
]
