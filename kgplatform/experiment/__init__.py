"""Experiments over the trainer: multi-row, multi-seed comparisons with intervals and RecBole side by side,
and their reports. The last library stage before the CLI (it may import every earlier stage)."""
from kgplatform.experiment.compare import (
    BASELINES, RECBOLE_NAMES, Comparison, Row, comparison_pairs, differences, plan_rows, run_comparison,
)

__all__ = ["BASELINES", "RECBOLE_NAMES", "Comparison", "Row", "comparison_pairs", "differences", "plan_rows",
           "run_comparison"]
