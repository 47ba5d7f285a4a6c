"""Evaluation: metrics and full-ranking / sampled-negative evaluation of a model on a split.

The split and the stored candidates are part of the data contract (:mod:`kgplatform.data`).
"""
from kgplatform.eval.evaluate import FULL, evaluate, rank_counts_for, sampled_label
from kgplatform.eval.metrics import metric_names, rank_counts, rank_metrics

__all__ = ["FULL", "evaluate", "metric_names", "rank_counts", "rank_counts_for", "rank_metrics", "sampled_label"]
