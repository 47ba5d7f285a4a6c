"""Training: the ``RecData`` contract, samplers, the one Trainer and the multi-seed helper."""
from kgplatform.train.data import RecData
from kgplatform.train.trainer import TrainConfig, Trainer, TrainResult, load_checkpoint, recommend
from kgplatform.train.seeds import SeedSummary, run_seeds, summarize

__all__ = ["RecData", "TrainConfig", "Trainer", "TrainResult", "load_checkpoint", "recommend", "SeedSummary",
           "run_seeds", "summarize"]
