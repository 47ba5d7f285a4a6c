"""Instruction tuning (LoRA) of a small local LLM on the exported instruction data, and the tuned model as a
re-ranker over the stored candidates. Sits after export: ``kgp export --format instructions`` → ``kgp tune`` →
``kgp rerank-eval``."""
from .base import Base, load_base
from .lora import TuneConfig, TuneResult, load_adapter, tune
from .rerank import (RerankEval, candidate_scores, evaluate_rerank, evaluate_with_ablation, naive_scores,
                     rerank_report, rows_with_knowledge, select_rows)

__all__ = ["Base", "RerankEval", "TuneConfig", "TuneResult", "candidate_scores", "evaluate_rerank",
           "evaluate_with_ablation", "load_adapter", "load_base", "naive_scores", "rerank_report",
           "rows_with_knowledge", "select_rows", "tune"]
