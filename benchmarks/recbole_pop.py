"""RecBole 1.2.1's ``Pop`` on Amazon Beauty, the yardstick for our POP (README, "POP against RecBole").

RecBole is not a dependency of kgplatform. How it was run here (next to the project's venv, so the same
torch 2.9.1 and NumPy 2):

    .venv/bin/pip install --target /tmp/rbpkgs --no-deps recbole==1.2.1 colorlog colorama texttable thop \
        tensorboard protobuf absl-py pandas==2.2.3 pytz tzdata python-dateutil
    PYTHONPATH=/tmp/rbpkgs .venv/bin/python benchmarks/recbole_pop.py full 2020     # or: uni99 2020

(``ray`` is not needed: this script avoids ``recbole.quick_start``.) It writes ``beauty.inter`` from
``../shared/data/amazon-beauty/user_sequence.txt`` with the position in the sequence as the timestamp, so
RecBole's ``LS: valid_and_test`` + ``order: TO`` is leave-one-out by sequence order, the same split as
``kgplatform.eval.leave_one_out``. Prints the valid and test metrics and the top popularity counts.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

# RecBole 1.2.1 still touches aliases that NumPy 2 removed.
for _name, _type in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, _name):
        setattr(np, _name, _type)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "amazon-beauty" / "user_sequence.txt"
WORK = Path("/tmp/kgp-recbole")


def write_inter(src: Path = DATA, work: Path = WORK) -> None:
    out = work / "beauty" / "beauty.inter"
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in src.open():
            parts = line.split()
            for t, item in enumerate(parts[1:]):
                f.write(f"{parts[0]}\t{item}\t{t}\n")


def main(mode: str = "full", seed: int = 2020) -> None:
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    write_inter()
    os.chdir(WORK)  # RecBole writes log/ and log_tensorboard/ into the working directory
    cfg = {"data_path": str(WORK), "device": "cpu", "use_gpu": False, "seed": seed,
           "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
           "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": mode},
           "metrics": ["Hit", "NDCG", "MRR"], "topk": [1, 5, 10, 20], "valid_metric": "NDCG@10",
           "show_progress": False, "checkpoint_dir": str(WORK / "ckpt")}
    config = Config(model="Pop", dataset="beauty", config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    train, valid, test = data_preparation(config, create_dataset(config))
    model = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, saved=False, show_progress=False)
    # load_best_model=False: torch >= 2.6 refuses RecBole's pickled checkpoints, and Pop's counts live in memory
    print("VALID", {k: round(float(v), 4) for k, v in trainer.evaluate(valid, load_best_model=False).items()})
    print("TEST", {k: round(float(v), 4) for k, v in trainer.evaluate(test, load_best_model=False).items()})
    import torch

    print("top counts", torch.topk(model.item_cnt.view(-1), 12).values.tolist())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "full", int(sys.argv[2]) if len(sys.argv) > 2 else 2020)
