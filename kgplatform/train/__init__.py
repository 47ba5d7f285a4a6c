"""Training: samplers, the one Trainer and the multi-seed helper (the data contract is :mod:`kgplatform.data`)."""
from kgplatform.train.seeds import SeedSummary, run_seeds, summarize
from kgplatform.train.trainer import EpochLog, TrainConfig, Trainer, TrainResult, load_checkpoint, recommend

__all__ = ["EpochLog", "SeedSummary", "TrainConfig", "TrainResult", "Trainer", "load_checkpoint", "recommend",
           "run_seeds", "summarize"]
