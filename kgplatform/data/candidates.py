"""Sampled-negative candidate sets, drawn once and stored so every model is scored on the same candidates.

For each user with a target in a phase, ``num_negatives`` distinct items drawn uniformly from the items the
user *never* interacted with (in train, validation or test): ``exclude="all"``, the ``kgp`` convention.
RecBole's own sampling is available for like-for-like comparisons (the ``recbole`` convention):
``exclude="phase"`` with ``replacement=True`` is RecBole's ``Sampler`` for general models (negatives avoid
the items the user interacted with up to and including the phase's target, drawn independently, so
duplicates can occur), and ``exclude="target"`` with ``replacement=True`` its sequential sampler (only the
target itself is avoided). The draw uses its own seeded CPU generator, in
fixed-size user chunks, so it is identical across runs, machines and devices. Files are keyed by the data
checksum, the seed and the number of negatives: ``neg<K>-<checksum[:16]>-seed<seed>.pt``.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from kgplatform.errors import TrainingError
from kgplatform.data.split import Phase, Split

_CHUNK = 1024  # users per draw; part of the sampling definition (changing it changes the candidates)


@dataclass(frozen=True)
class SampledCandidates:
    """Negatives per phase: ``negatives[phase]`` is ``[len(split.users(phase)), num_negatives]``."""

    checksum: str
    seed: int
    num_negatives: int
    users: dict[str, Tensor]
    negatives: dict[str, Tensor]
    exclude: str = "all"
    replacement: bool = False

    def for_users(self, phase: Phase, users: Tensor) -> Tensor:
        """Negatives of ``users`` (a subset of the phase's users, any order)."""
        all_users = self.users[phase]
        pos = torch.searchsorted(all_users, users.cpu())
        found = all_users[pos.clamp(max=max(all_users.numel() - 1, 0))] if all_users.numel() else all_users
        if bool((pos >= all_users.numel()).any()) or not torch.equal(found, users.cpu()):
            raise TrainingError(f"candidates: some users have no {phase} candidates")
        return self.negatives[phase][pos]

    def file_name(self) -> str:
        return candidate_file_name(self.checksum, self.seed, self.num_negatives, self.exclude, self.replacement)


def candidate_file_name(checksum: str, seed: int, num_negatives: int, exclude: str = "all",
                        replacement: bool = False) -> str:
    variant = "" if (exclude, replacement) == ("all", False) else f"-{exclude}{'-rep' if replacement else ''}"
    return f"neg{num_negatives}-{checksum[:16]}-seed{seed}{variant}.pt"


Exclude = Literal["all", "phase", "target"]


def _draw(split: Split, users: Tensor, k: int, gen: torch.Generator, phase: Phase = "test",
          exclude: Exclude = "all", replacement: bool = False) -> Tensor:
    out = []
    n = split.num_items
    if exclude == "all":
        lens = split.seq_len
    elif exclude == "phase":  # history up to and including the phase's target
        lens = torch.zeros_like(split.seq_len)
        lens[users] = split.history_len(phase, users) + 1
    elif exclude == "target":
        lens = None
    else:
        raise TrainingError(f"unknown candidate exclusion {exclude!r} (all|phase|target)")
    for chunk in users.split(_CHUNK):
        if lens is None:
            tgt = split.targets(phase, chunk)
            if replacement:  # uniform over the other n - 1 items: draw in [0, n-1) and skip the target
                draw = torch.randint(n - 1, (chunk.numel(), k), generator=gen)
                out.append(draw + (draw >= tgt[:, None]).long())
                continue
            weights = torch.rand(chunk.numel(), n, generator=gen)
            weights[torch.arange(chunk.numel()), tgt] = -1.0
            out.append(torch.topk(weights, k, dim=1).indices)
            continue
        if replacement:
            # uniform with replacement over each user's free items: rejection in rounds, seeded
            free_mask = torch.ones(chunk.numel(), n, dtype=torch.bool)
            rows = torch.repeat_interleave(torch.arange(chunk.numel()), lens[chunk])
            starts = split.seq_indptr[chunk]
            cl = lens[chunk]
            offs = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(cl, 0) - cl, cl)
            free_mask[rows, split.seq_items[starts[rows] + offs]] = False
            if bool((free_mask.sum(1) < 1).any()):
                raise TrainingError("candidates: a user has interacted with every item")
            draw = torch.randint(n, (chunk.numel(), k), generator=gen)
            for _ in range(1000):
                bad = ~free_mask.gather(1, draw)
                if not bool(bad.any()):
                    break
                draw[bad] = torch.randint(n, (int(bad.sum()),), generator=gen)
            out.append(draw)
            continue
        weights = torch.rand(chunk.numel(), n, generator=gen)
        rows = torch.repeat_interleave(torch.arange(chunk.numel()), lens[chunk])
        starts = split.seq_indptr[chunk]
        cl = lens[chunk]
        offs = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(cl, 0) - cl, cl)
        weights[rows, split.seq_items[starts[rows] + offs]] = -1.0
        free = (weights >= 0).sum(1)
        if bool((free < k).any()):
            raise TrainingError(
                f"candidates: a user has only {int(free.min())} items they never interacted with, "
                f"fewer than the {k} negatives asked for",
                hint=f"use at most {int(free.min())} negatives on this dataset",
            )
        out.append(torch.topk(weights, k, dim=1).indices)
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long)


def sample_negatives(
    split: Split,
    checksum: str,
    *,
    num_negatives: int = 99,
    seed: int = 2024,
    cache_dir: str | Path | None = None,
    exclude: Exclude = "all",
    replacement: bool = False,
) -> SampledCandidates:
    """Draw (or load from ``cache_dir``) the negatives for the validation and test targets.

    Args:
        split: the leave-one-out split.
        checksum: :meth:`RecData.checksum` of the data the split came from (the cache key).
        num_negatives: negatives per user (99 for the usual 1 + 99 protocol).
        seed: sampling seed, independent of the training seed.
        cache_dir: where the ``.pt`` file is stored; ``None`` keeps it in memory only.
        exclude / replacement: which items a negative must avoid and whether draws may repeat (see the
            module docstring; the defaults are the ``kgp`` convention).
    """
    name = candidate_file_name(checksum, seed, num_negatives, exclude, replacement)
    path = Path(cache_dir) / name if cache_dir else None
    if path is not None and path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt file: say so rather than silently redraw
            raise TrainingError(f"{path}: cannot read candidate file", hint="delete it to redraw") from e
        if blob.get("checksum") != checksum or blob.get("seed") != seed:
            raise TrainingError(f"{path}: candidate file does not match the data checksum/seed")
        return SampledCandidates(checksum, seed, num_negatives, blob["users"], blob["negatives"], exclude,
                                 replacement)
    gen = torch.Generator().manual_seed(seed)
    users = {ph: split.users(ph).clone() for ph in ("valid", "test")}
    negs = {ph: _draw(split, users[ph], num_negatives, gen, ph, exclude, replacement) for ph in ("valid", "test")}
    cands = SampledCandidates(checksum, seed, num_negatives, users, negs, exclude, replacement)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temporary name of this writer's own: two processes drawing the same file at once (two trainings
        # started together) must not write into, or rename away, each other's temporary file
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        torch.save(
            {"checksum": checksum, "seed": seed, "num_negatives": num_negatives, "users": users, "negatives": negs},
            tmp,
        )
        tmp.replace(path)
    return cands
