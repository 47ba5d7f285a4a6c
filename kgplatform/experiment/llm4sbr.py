"""The LLM4SBR experiment: which prefixes got an LLM inference (coverage), the user sub-sample the CPU allowed
(the users whose test prefix was inferred), and paired differences restricted to the users with an inference,
around :func:`kgplatform.experiment.compare.run_comparison`.

On a 2-core CPU the session-intent round (``kgp extract --round sessions``) covers the validation and test prefix
of a few hundred users and their last M training prefixes; every other prefix uses the model's learned fallback.
So the figures are given (a) on the users whose test prefix has an inference (``users="covered"``: the dataset
is cut to them with :meth:`RecData.keep_users`, the whole catalogue kept) and, where asked, (b) on every user.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgplatform.data import RecData, leave_one_out
from kgplatform.data.session_intents import prefix_keys, split_prefix_keys
from kgplatform.data.split import Split
from kgplatform.errors import ConfigError, TrainingError
from kgplatform.experiment.compare import Row, comparison_pairs, differences, run_comparison


#: the paired differences reported on the users with an inferred test prefix: ours and the paper's (its P@20 is the
#: hit rate at 20 of one held-out target, our HR@20; its MRR@20 is ours)
PAPER_METRICS = ("NDCG@10", "HR@10", "HR@20", "MRR@20")


def _inferred_keys(data: RecData) -> Tensor:
    si = data.session_intents
    if si is None or not len(si):
        raise TrainingError(f"{data.dataset}: no session intents exported",
                            hint=f"run kgp extract --round sessions -d {data.dataset} first")
    return torch.unique(si.keys())


def covered(data: RecData, phase: str, split: Split | None = None) -> Tensor:
    """``[n]`` bool over ``split.users(phase)`` (``split`` = ``leave_one_out(data)`` unless given): whether that
    phase's prefix has an inference."""
    split = split or leave_one_out(data)
    users = split.users(phase)
    return torch.isin(prefix_keys(users, split.history_len(phase, users)), _inferred_keys(data))


def inference_coverage(data: RecData) -> dict[str, Any]:
    """How many training prefixes and validation/test users have an LLM inference (any view)."""
    split = leave_one_out(data)
    keys = _inferred_keys(data)
    train_len = split.train_len
    user_of, end_of = split_prefix_keys(keys)
    train_prefixes = int((train_len - 1).clamp(min=0).sum())
    inferred_train = int((end_of < train_len[user_of]).sum())
    out = {"training_prefixes": train_prefixes, "training_prefixes_inferred": inferred_train,
           "training_fraction": inferred_train / max(train_prefixes, 1),
           "users": data.num_users, "users_with_any": int(torch.unique(user_of).numel())}
    for phase in ("valid", "test"):
        m = covered(data, phase, split)
        out[f"{phase}_users"] = int(m.numel())
        out[f"{phase}_users_inferred"] = int(m.sum())
    return out


def covered_users(data: RecData) -> Tensor:
    """Indices of the users whose test prefix has an inference."""
    split = leave_one_out(data)
    return split.users("test")[covered(data, "test", split)]


def llm4sbr_experiment(data: RecData, rows: Sequence[Row], *, seeds: Sequence[int], train: dict[str, Any],
                       out_dir: Path, users: str = "covered", compare: Sequence[tuple[str, str]] = (),
                       with_recbole: Sequence[str] = (), recbole_epochs: dict[str, int] | None = None,
                       recbole_config: dict[str, dict] | None = None, recbole_pairs: dict[str, str] | None = None,
                       command: str | None = None,
                       log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    """Run the rows on ``data`` (``users="covered"``: cut to the users whose test prefix was inferred; ``"all"``:
    every user, with the differences also restricted to those users) and return the results document.
    ``with_recbole`` / ``recbole_epochs`` / ``recbole_config`` / ``recbole_pairs``: RecBole counterparts as in
    :func:`~kgplatform.experiment.compare.run_comparison` (e.g. ``{"sasrec": {"MAX_ITEM_LIST_LENGTH": 20}}``;
    ``recbole_pairs={"sasrec": "llm4sbr:no_llm"}`` pairs RecBole's SASRec with the SASRec backbone alone)."""
    if users not in ("covered", "all"):
        raise ConfigError(f"users must be covered or all, got {users!r}")
    inferred = data.session_intents is not None  # rows that read no inference (the backbone, RecBole) need none
    coverage_all = inference_coverage(data) if inferred or users == "covered" else None
    if users == "covered":
        keep = covered_users(data)
        if keep.numel() < 2:
            raise TrainingError(f"{data.dataset}: {keep.numel()} users have an inferred test prefix; need more",
                                hint=f"run kgp extract --round sessions -d {data.dataset} on more users")
        data = data.keep_users(keep)
        log(f"[llm4sbr] {data.dataset}: the {data.num_users} users whose test prefix has an inference")
    result = run_comparison(data, rows, seeds=seeds, train=train, out_dir=out_dir, compare=compare,
                            with_recbole=with_recbole, recbole_epochs=recbole_epochs,
                            recbole_config=recbole_config, recbole_pairs=recbole_pairs, command=command, log=log)
    doc = result.to_json()
    doc["users"] = users
    doc["coverage"] = inference_coverage(data) if inferred else None
    doc["coverage_whole_dataset"] = coverage_all
    if users == "all" and inferred:
        mask = covered(data, "test").numpy()
        doc["differences_inferred_users"] = differences(
            result.summaries, comparison_pairs(result.summaries, compare), metrics=PAPER_METRICS, users=mask,
            label="inferred test prefix")
    return doc


__all__ = ["PAPER_METRICS", "covered", "covered_users", "inference_coverage", "llm4sbr_experiment"]
