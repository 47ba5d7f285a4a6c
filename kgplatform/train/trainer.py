"""The one Trainer for every registry model.

``Trainer(TrainConfig(...)).fit("sasrec", data)`` splits the data leave-one-out, draws (or loads) the
sampled-negative candidates, builds the model from :data:`kgplatform.models.MODELS`, trains with Adam on the
model's named losses, evaluates validation full-ranking NDCG@10 every ``eval_every`` epochs, stops early
after ``patience`` evaluations without improvement, restores the best weights, grid-searches the model's
inference-time parameters (IKGR's :math:`\\lambda`) on validation, and scores the test split under both
protocols. The returned :class:`TrainResult` carries everything a run record needs.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from kgplatform.errors import TrainingError
from kgplatform.data.candidates import SampledCandidates, sample_negatives
from kgplatform.eval.evaluate import FULL, candidate_policy, check_convention, evaluate, sampled_label
from kgplatform.data.contract import training_view
from kgplatform.data.split import Split, leave_one_out
from kgplatform.models import MODELS, Recommender, get_spec
from kgplatform.models.base import prefix_kwargs
from kgplatform.data.recdata import RecData
from kgplatform.train.samplers import PairSampler, PrefixSampler, SequenceSampler

EARLY_STOP_METRIC = "NDCG@10"


@dataclass
class TrainConfig:
    """Training settings; ``None`` fields take the model's defaults from its registry entry.

    Args:
        epochs / batch_size / lr / eval_every: as named (``eval_every`` in epochs).
        weight_decay: Adam L2 weight decay.
        patience: evaluations without a new best validation NDCG@10 before stopping.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        seed: training seed (model init, batch order, negatives).
        candidate_seed / num_negatives: the stored sampled-negative candidates (fixed across models and
            training seeds so every run is scored on the same candidates).
        eval_batch_size: users per evaluation batch.
        ties: tie policy of the metrics (see :mod:`kgplatform.eval.metrics`).
        cache_dir: where candidate files live (``None``: memory only).
        run_dir: where the checkpoint, ``log.jsonl`` and ``run.json`` go (``None``: nothing written).
        max_seconds: stop training after this much wall time (checked between epochs).
        grad_clip: clip the gradient norm (``None``: off).
        fused_adam: Adam's fused single-pass step where the device has one (CPU and CUDA): the same update
            up to float rounding, several times faster over large embedding tables (35,928 x 64 IKGR node
            vectors on MovieLens-100k: about 3.5 ms instead of 20 ms a step on CPU).
        tune: grid-search the model's ``eval_grid()`` on validation after training.
        convention: ``kgp`` or ``recbole`` (history masking and candidate sampling; see
            :mod:`kgplatform.eval.evaluate`), for validation and test alike.
        ema_decay: keep an exponential moving average of the parameters,
            :math:`\bar\theta \leftarrow \beta\bar\theta + (1 - \beta)\theta` after every step
            (:math:`\beta` = ``ema_decay``, e.g. 0.99), and validate, keep and return the *averaged* weights
            (Polyak averaging), meant to smooth a noisy validation curve. ``None`` (default): the raw weights.
            On IKGR / MovieLens-100k it smoothed the curve a little and lifted validation NDCG@10, but not test
            (README, ``results/movielens-100k/ikgr-ema.json``). Each step then also touches every parameter
            once, so with ``sparse_grad`` the step is O(table) again.
    """

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    eval_every: int | None = None
    weight_decay: float = 0.0
    patience: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 2024
    candidate_seed: int = 2024
    num_negatives: int = 99
    eval_batch_size: int = 1024
    ties: Literal["average", "optimistic", "pessimistic"] = "average"
    cache_dir: Path | None = None
    run_dir: Path | None = None
    max_seconds: float | None = None
    grad_clip: float | None = None
    fused_adam: bool = True
    tune: bool = True
    convention: Literal["kgp", "recbole"] = "kgp"
    ema_decay: float | None = None

    #: the fields ``--train key=value`` checks (:meth:`validate`): kind, bounds, whether each bound is open;
    #: ``None`` is allowed for the optional ones (the model's default)
    _CHECKS = {"epochs": ("int", 1, None, False, False), "batch_size": ("int", 1, None, False, False),
               "eval_every": ("int", 1, None, False, False), "patience": ("int", 1, None, False, False),
               "num_negatives": ("int", 1, None, False, False), "eval_batch_size": ("int", 1, None, False, False),
               "seed": ("int", 0, None, False, False), "candidate_seed": ("int", 0, None, False, False),
               "lr": ("float", 0.0, None, True, False), "weight_decay": ("float", 0.0, None, False, False),
               "max_seconds": ("float", 0.0, None, True, False), "grad_clip": ("float", 0.0, None, True, False),
               "ema_decay": ("float", 0.0, 1.0, True, True),
               "fused_adam": ("bool", None, None, False, False), "tune": ("bool", None, None, False, False)}
    _OPTIONAL = ("epochs", "batch_size", "lr", "eval_every", "max_seconds", "grad_clip", "ema_decay")

    def validate(self) -> TrainConfig:
        """Check (and coerce: ``4096.0`` for an int, ``1`` for a float) the fields a user sets with ``--train``;
        ``None`` keeps the model's default. A bad one is one :class:`TrainingError` line naming it."""
        from kgplatform.models.options import _bounds, _in_range, as_float, as_int

        for name, (kind, lo, hi, lo_open, hi_open) in self._CHECKS.items():
            v = getattr(self, name)
            if v is None and name in self._OPTIONAL:
                continue
            if kind == "bool":
                got, ok, what = v, isinstance(v, bool), "true or false"
            else:
                got = as_int(v) if kind == "int" else as_float(v)
                what = f"{'an integer' if kind == 'int' else 'a finite number'} {_bounds(lo, hi, lo_open, hi_open)}"
                ok = got is not None and _in_range(got, lo, hi, lo_open, hi_open)
            if not ok:
                raise TrainingError(f"training option {name} must be {what}, got {v!r}",
                                    hint=f"--train {name}=VALUE")
            setattr(self, name, got)
        return self

    def resolved(self, model: str) -> TrainConfig:
        spec = get_spec(model)
        check_convention(self.convention)
        d = spec.train_defaults
        return dataclasses.replace(
            self,
            epochs=self.epochs if self.epochs is not None else d.get("epochs", 100),
            batch_size=self.batch_size or d.get("batch_size", 2048),
            lr=self.lr or d.get("lr", 1e-3),
            eval_every=self.eval_every or d.get("eval_every", 1),
        )


@dataclass
class EpochLog:
    epoch: int
    losses: dict[str, float]
    train_seconds: float
    cpu_seconds: float = 0.0  # process CPU time of the training part (all threads); robust to other load
    eval_seconds: float = 0.0
    valid: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' requested but CUDA is not available", hint="use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise TrainingError(f"unknown device {device!r} (auto|cpu|cuda)")
    return torch.device(device)


class Optimizers:
    """Several optimisers stepped as one (``zero_grad`` / ``step``): Adam over the dense parameters and
    ``SparseAdam`` over the sparse-gradient embedding tables (:func:`make_adam`)."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = list(optimizers)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()


class _ParamAverage:
    """An exponential moving average of a model's parameters (``TrainConfig.ema_decay``), updated in place after
    each optimiser step; :meth:`swap_in` puts the averages into the model (returning the live values) and
    :meth:`restore` puts the live values back."""

    def __init__(self, net: torch.nn.Module, decay: float) -> None:
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.avg = [p.detach().clone() for p in self.params]
        self.weight = 1.0 - float(decay)

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.avg, [p.detach() for p in self.params], self.weight)

    @torch.no_grad()
    def swap_in(self) -> list[Tensor]:
        live = [p.detach().clone() for p in self.params]
        for p, a in zip(self.params, self.avg):
            p.copy_(a)
        return live

    @torch.no_grad()
    def restore(self, live: list[Tensor]) -> None:
        for p, v in zip(self.params, live):
            p.copy_(v)


def sparse_parameters(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of ``net``'s embedding tables built with ``sparse=True`` (their gradient is sparse)."""
    return [m.weight for m in net.modules()
            if isinstance(m, torch.nn.Embedding) and m.sparse and m.weight.requires_grad]


def make_adam(net: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer | Optimizers:
    """The training optimiser: Adam, fused where ``cfg.fused_adam`` and the device supports it.

    A model whose embedding tables have sparse gradients (``nn.Embedding(sparse=True)``, e.g. BPR-MF's
    ``sparse_grad``) gets ``SparseAdam`` for those tables — lazy Adam: a step updates the moments and values of
    the rows the batch touched only, so its cost follows the batch, not the table — and Adam for the rest.
    Weight decay and gradient clipping need dense gradients and are refused with sparse tables."""
    sparse = sparse_parameters(net)
    ids = {id(p) for p in sparse}
    params = [p for p in net.parameters() if p.requires_grad and id(p) not in ids]
    fused = bool(cfg.fused_adam and device.type in ("cpu", "cuda") and params
                 and all(p.dtype.is_floating_point and not p.is_sparse for p in params))
    if not sparse:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
    if cfg.weight_decay or cfg.grad_clip:
        raise TrainingError("sparse embedding gradients do not combine with weight_decay or grad_clip",
                            hint="set them to 0 (use the model's reg_weight for L2) or turn the sparse option off")
    opts: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(sparse, lr=cfg.lr)]
    if params:
        opts.append(torch.optim.Adam(params, lr=cfg.lr, fused=fused or None))
    return Optimizers(*opts)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU generator for the samplers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def versions() -> dict[str, str]:
    import torch_geometric

    import kgplatform

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": np.__version__,
        "kgplatform": kgplatform.__version__,
        "platform": platform.platform(),
    }


def _jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass
class TrainResult:
    """Everything one training run produced.

    ``metrics[phase][protocol][metric]`` with phase ``valid``/``test`` and protocol ``full`` or
    ``sampled<K>``. ``user_embeddings``/``item_embeddings`` are CPU tensors (``None`` for POP); sequential
    models' user vectors encode the user's full sequence. ``model``/``split`` stay attached for
    :meth:`recommend`.
    """

    run_id: str
    model_name: str
    dataset: str
    model_config: dict
    train_config: dict
    seed: int
    device: str
    versions: dict[str, str]
    data_checksum: str
    data_summary: dict
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    train_seconds: float
    cpu_seconds_per_epoch: float
    eval_params: dict[str, float]
    metrics: dict[str, dict[str, dict[str, float]]]
    log: list[EpochLog]
    user_embeddings: Tensor | None
    item_embeddings: Tensor | None
    checkpoint_path: Path | None = None
    model: Recommender | None = field(default=None, repr=False)
    split: Split | None = field(default=None, repr=False)
    #: ``per_user[phase][protocol][metric]``: one value per user of ``eval_users[phase]`` (for intervals)
    per_user: dict | None = field(default=None, repr=False)
    eval_users: dict | None = field(default=None, repr=False)
    convention: str = "kgp"

    @torch.no_grad()
    def recommend(
        self, user_idx: int | Sequence[int] | Tensor, k: int = 10, exclude_seen: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Top-``k`` item indices and scores for the given users, ``[B, k]`` each (CPU).

        Scores use everything known about the user (the full sequence, test item included); with
        ``exclude_seen`` every item the user interacted with is left out.
        """
        if self.model is None or self.split is None:
            raise TrainingError("this result has no model attached (loaded from a record?)")
        return recommend(self.model, self.split, user_idx, k, exclude_seen)

    def to_record(self) -> dict:
        """A JSON-serialisable run record (no tensors, no secrets)."""
        return _jsonable(
            {
                "run_id": self.run_id,
                "model": self.model_name,
                "dataset": self.dataset,
                "model_config": self.model_config,
                "train_config": self.train_config,
                "seed": self.seed,
                "device": self.device,
                "versions": self.versions,
                "data_checksum": self.data_checksum,
                "data": self.data_summary,
                "best_epoch": self.best_epoch,
                "epochs_run": self.epochs_run,
                "seconds_per_epoch": self.seconds_per_epoch,
                "cpu_seconds_per_epoch": self.cpu_seconds_per_epoch,
                "train_seconds": self.train_seconds,
                "eval_params": self.eval_params,
                "metrics": self.metrics,
                "convention": self.convention,
                "checkpoint": self.checkpoint_path,
                "log": [e.to_dict() for e in self.log],
            }
        )


@torch.no_grad()
def recommend(
    model: Recommender, split: Split, user_idx: int | Sequence[int] | Tensor, k: int = 10, exclude_seen: bool = True
) -> tuple[Tensor, Tensor]:
    """Top-``k`` recommendations of ``model`` (see :meth:`TrainResult.recommend`)."""
    users = torch.as_tensor(user_idx, dtype=torch.long).view(-1).cpu()
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= split.num_users):
        raise TrainingError("user index out of range")
    device = next(iter(list(model.parameters()) + list(model.buffers()))).device
    was = model.training
    model.eval()
    model.prepare_eval()
    try:
        seq = None
        if model.needs_sequence:
            seq = split.history_sequences(None, users, model.max_seq_len)[0].to(device)
        kw = prefix_kwargs(model, split.seq_len[users].to(device))  # serving: the prefix after the test item
        scores = model.full_scores(users.to(device), seq=seq, **kw).float()
        if exclude_seen:
            lens = split.seq_len[users]
            rows = torch.repeat_interleave(torch.arange(users.numel()), lens)
            offs = torch.arange(rows.numel()) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
            items = split.seq_items[split.seq_indptr[users][rows] + offs]
            scores[rows.to(device), items.to(device)] = float("-inf")
        top = torch.topk(scores, min(k, split.num_items), dim=1)
    finally:
        model.train(was)
    return top.indices.cpu(), top.values.cpu()


def _embeddings(model: Recommender, split: Split, batch_size: int) -> tuple[Tensor | None, Tensor | None]:
    model.eval()
    model.prepare_eval()
    device = next(iter(list(model.parameters()) + list(model.buffers()))).device
    with torch.no_grad():
        item = model.item_embeddings()
        chunks = []
        for ub in torch.arange(split.num_users).split(batch_size):
            seq = split.history_sequences(None, ub, model.max_seq_len)[0].to(device) if model.needs_sequence else None
            u = model.user_embeddings(ub.to(device), seq=seq, **prefix_kwargs(model, split.seq_len[ub].to(device)))
            if u is None:
                chunks = None
                break
            chunks.append(u.float().cpu())
    users = torch.cat(chunks) if chunks else None
    return users, (item.detach().float().cpu().clone() if item is not None else None)


@dataclass
class PreparedRun:
    """Everything :meth:`Trainer.fit` sets up before the first epoch (see :meth:`Trainer.prepare`)."""

    model_name: str
    spec: Any
    config: TrainConfig
    model_config: Any
    device: torch.device
    checksum: str
    split: Split
    train: RecData  # the training view: the only data the model and its sampler see
    candidates: SampledCandidates
    net: Recommender
    generator: torch.Generator
    run_id: str
    run_dir: Path | None


@dataclass
class LoopResult:
    history: list[EpochLog]
    best_epoch: int
    epochs_run: int
    train_seconds: float


class Trainer:
    """Trains and evaluates any registry model (see the module docstring).

    :meth:`fit` = :meth:`prepare` (split, candidates, training view, model) → :meth:`train_loop` (epochs,
    validation, early stopping, best weights) → :meth:`tune` (inference-time parameters on validation) →
    :meth:`finish` (test metrics under both protocols, per-user values, embeddings, checkpoint, record).

    Args:
        config: training settings.
        log: a callable receiving progress lines (default: print to stderr).
    """

    def __init__(self, config: TrainConfig | None = None, *, log: Callable[[str], None] | None = None) -> None:
        self.config = config or TrainConfig()
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def fit(
        self,
        model: str,
        data: RecData,
        model_config: Any = None,
        *,
        split: Split | None = None,
        candidates: SampledCandidates | None = None,
        checksum: str | None = None,
    ) -> TrainResult:
        """Train registry model ``model`` on ``data`` and evaluate it.

        Args:
            model: a key of :data:`kgplatform.models.MODELS`.
            data: the dataset (full: the split and the training view are made here).
            model_config: the model's typed config, a dict of its fields, or ``None`` for defaults.
            split / candidates / checksum: reuse precomputed ones (e.g. across seeds).
        """
        run = self.prepare(model, data, model_config, split=split, candidates=candidates, checksum=checksum)
        loop = self.train_loop(run)
        self.tune(run)
        return self.finish(run, data, loop)

    # ------------------------------------------------------------------ steps
    def prepare(self, model: str, data: RecData, model_config: Any = None, *, split: Split | None = None,
                candidates: SampledCandidates | None = None, checksum: str | None = None) -> PreparedRun:
        spec = get_spec(model)
        cfg = self.config.resolved(model)
        mcfg = spec.make_config(model_config)
        device = resolve_device(cfg.device)
        checksum = checksum or data.checksum()
        split = split or leave_one_out(data)
        if split.valid_users.numel() == 0 or split.test_users.numel() == 0:
            raise TrainingError(f"{data.dataset}: no user has enough interactions for validation and test")
        policy = candidate_policy(cfg.convention, spec.model_cls.needs_sequence)
        if (candidates is None or candidates.checksum != checksum
                or (candidates.exclude, candidates.replacement) != (policy["exclude"], policy["replacement"])):
            candidates = sample_negatives(split, checksum, num_negatives=cfg.num_negatives, seed=cfg.candidate_seed,
                                          cache_dir=cfg.cache_dir, **policy)
        gen = seed_everything(cfg.seed)
        train = training_view(data, split)
        try:
            net = spec.build(train, mcfg, gen).to(device)
        except (ValueError, TypeError) as e:  # a model refusing its options (e.g. heads not dividing the size)
            raise TrainingError(f"{model}: {e}", hint="check the --set options") from e
        # a random suffix: two identical trainings started in the same second get two run ids
        run_id = f"{model}-{data.dataset}-s{cfg.seed}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:4]}"
        run_dir = Path(cfg.run_dir) / run_id if cfg.run_dir else None
        if run_dir:
            run_dir.mkdir(parents=True, exist_ok=True)
        self.log(f"[{model}] {data.dataset}: {data.num_users} users, {data.num_items} items, "
                 f"{train.num_interactions} train interactions; device={device}, seed={cfg.seed}, "
                 f"convention={cfg.convention}")
        return PreparedRun(model, spec, cfg, mcfg, device, checksum, split, train, candidates, net, gen, run_id,
                           run_dir)

    def _valid_score(self, run: PreparedRun) -> dict[str, float]:
        cfg = run.config
        m = evaluate(run.net, run.split, "valid", protocols=(FULL,), batch_size=cfg.eval_batch_size, ties=cfg.ties,
                     convention=cfg.convention)
        return m[FULL]

    def _sampler(self, run: PreparedRun):
        kind = run.spec.model_cls.sampler
        if kind == "pairs":
            return PairSampler(run.train, run.config.batch_size, run.generator)
        if kind == "sequences":
            return SequenceSampler(run.train, run.net.max_seq_len, run.config.batch_size, run.generator,
                                   stride=int(getattr(run.net, "train_stride", 1)))
        if kind == "prefixes":
            return PrefixSampler(run.train, run.net.max_seq_len, run.config.batch_size, run.generator)
        raise TrainingError(f"{run.model_name}: trainable model with sampler {kind!r}")

    def train_loop(self, run: PreparedRun) -> LoopResult:
        """Epochs with validation every ``eval_every``, early stopping, best weights restored."""
        cfg, net, device, model = run.config, run.net, run.device, run.model_name
        history: list[EpochLog] = []
        if not (net.trainable and cfg.epochs > 0):
            return LoopResult(history, 0, 0, 0.0)
        best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        best_score, best_epoch, bad = -1.0, 0, 0
        train_time = 0.0
        epochs_run = 0
        sampler = self._sampler(run)
        opt = make_adam(net, cfg, device)
        ema = _ParamAverage(net, cfg.ema_decay) if cfg.ema_decay else None
        log_fh = (run.run_dir / "log.jsonl").open("w") if run.run_dir else None
        start_all = time.perf_counter()
        try:
            for epoch in range(1, cfg.epochs + 1):
                net.train()
                t0, c0 = time.perf_counter(), time.process_time()
                sums: dict[str, float] = {}
                n_batches = 0
                for batch in sampler:
                    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                    losses = net.loss(batch)
                    total = sum(losses.values())
                    if not torch.isfinite(total):
                        raise TrainingError(
                            f"{model}: loss became {float(total)} at epoch {epoch}", hint="lower the learning rate"
                        )
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    if cfg.grad_clip:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    opt.step()
                    if ema is not None:
                        ema.update()
                    for k, v in losses.items():
                        sums[k] = sums.get(k, 0.0) + float(v.detach())
                    n_batches += 1
                if device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                train_time += dt
                epochs_run = epoch
                entry = EpochLog(epoch, {k: v / max(n_batches, 1) for k, v in sums.items()}, dt,
                                 time.process_time() - c0)
                stop = False
                if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                    t1 = time.perf_counter()
                    live = ema.swap_in() if ema is not None else None  # validate (and keep) the averaged weights
                    try:
                        entry.valid = self._valid_score(run)
                        entry.eval_seconds = time.perf_counter() - t1
                        score = entry.valid[EARLY_STOP_METRIC]
                        if score > best_score:
                            best_score, best_epoch, bad = score, epoch, 0
                            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                        else:
                            bad += 1
                            stop = bad >= cfg.patience
                    finally:
                        if live is not None:
                            ema.restore(live)
                history.append(entry)
                loss_txt = " ".join(f"{k}={v:.4f}" for k, v in entry.losses.items())
                val_txt = f" valid NDCG@10={entry.valid[EARLY_STOP_METRIC]:.4f}" if entry.valid else ""
                self.log(f"[{model}] epoch {epoch} {loss_txt} ({dt:.1f}s){val_txt}")
                if log_fh:
                    log_fh.write(json.dumps(_jsonable(entry.to_dict())) + "\n")
                    log_fh.flush()
                if stop:
                    self.log(f"[{model}] early stop: no improvement in {cfg.patience} evaluations")
                    break
                if cfg.max_seconds and time.perf_counter() - start_all > cfg.max_seconds:
                    self.log(f"[{model}] time budget of {cfg.max_seconds:.0f}s reached")
                    break
        finally:
            if log_fh:
                log_fh.close()
        net.load_state_dict(best_state)
        return LoopResult(history, best_epoch, epochs_run, train_time)

    def tune(self, run: PreparedRun) -> dict[str, float]:
        """Grid-search the model's inference-time parameters (IKGR's lambda) on validation."""
        if not run.config.tune:
            return {}
        net, chosen = run.net, {}
        for name, grid in net.eval_grid().items():
            scores = []
            for v in grid:
                net.set_eval_param(name, v)
                scores.append(self._valid_score(run)[EARLY_STOP_METRIC])
            best = grid[int(np.argmax(scores))]
            net.set_eval_param(name, best)
            chosen[name] = best
            self.log(f"[{run.model_name}] tuned {name}={best} on validation "
                     f"({', '.join(f'{g}:{s:.4f}' for g, s in zip(grid, scores))})")
        return chosen

    def finish(self, run: PreparedRun, data: RecData, loop: LoopResult) -> TrainResult:
        """Evaluate valid and test under both protocols (means and per-user values) and build the result."""
        cfg, net, split, candidates = run.config, run.net, run.split, run.candidates
        per_user = {
            phase: evaluate(net, split, phase, protocols=(FULL, "sampled"), candidates=candidates,
                            batch_size=cfg.eval_batch_size, ties=cfg.ties, per_user=True, convention=cfg.convention)
            for phase in ("valid", "test")
        }
        metrics = {ph: {proto: {k: float(v.mean()) if v.numel() else float("nan") for k, v in ms.items()}
                        for proto, ms in protos.items()} for ph, protos in per_user.items()}
        user_emb, item_emb = _embeddings(net, split, cfg.eval_batch_size)
        ckpt = None
        if run.run_dir:
            ckpt = run.run_dir / "model.pt"
            torch.save(
                {"model": run.model_name, "model_config": dataclasses.asdict(run.model_config),
                 "state_dict": net.state_dict(), "data_checksum": run.checksum, "best_epoch": loop.best_epoch,
                 "eval_params": net.eval_params(), "dataset": data.dataset, "item_ids": list(data.item_ids),
                 "num_users": data.num_users, "convention": cfg.convention,
                 "inductive": _inductive_state(net, data)},
                ckpt,
            )
        epochs_run = loop.epochs_run
        result = TrainResult(
            run_id=run.run_id,
            model_name=run.model_name,
            dataset=data.dataset,
            model_config=_jsonable(dataclasses.asdict(run.model_config)),
            train_config=_jsonable(dataclasses.asdict(cfg)),
            seed=cfg.seed,
            device=str(run.device),
            versions=versions(),
            data_checksum=run.checksum,
            data_summary=data.summary(),
            best_epoch=loop.best_epoch,
            epochs_run=epochs_run,
            seconds_per_epoch=loop.train_seconds / epochs_run if epochs_run else 0.0,
            train_seconds=loop.train_seconds,
            cpu_seconds_per_epoch=sum(e.cpu_seconds for e in loop.history) / epochs_run if epochs_run else 0.0,
            eval_params=net.eval_params(),
            metrics=metrics,
            log=loop.history,
            user_embeddings=user_emb,
            item_embeddings=item_emb,
            checkpoint_path=ckpt,
            model=net,
            split=split,
            per_user={ph: {proto: {k: v.cpu() for k, v in ms.items()} for proto, ms in protos.items()}
                      for ph, protos in per_user.items()},
            eval_users={ph: split.users(ph).clone() for ph in ("valid", "test")},
            convention=cfg.convention,
        )
        if run.run_dir:
            (run.run_dir / "run.json").write_text(json.dumps(result.to_record(), indent=2))
        t = metrics["test"]
        lab = sampled_label(candidates.num_negatives)
        self.log(f"[{run.model_name}] test full NDCG@10={t[FULL]['NDCG@10']:.4f} HR@10={t[FULL]['HR@10']:.4f} | "
                 f"{lab} NDCG@10={t[lab]['NDCG@10']:.4f} HR@10={t[lab]['HR@10']:.4f}")
        return result


def _inductive_state(net: Recommender, data: RecData) -> dict | None:
    """The model's state for embedding nodes unseen in training (IKGR's cold start), with the id lists that
    name its rows; ``None`` for models without one."""
    fn = getattr(net, "inductive_state", None)
    state = fn() if fn is not None else None
    if state is not None:
        state["ids"] = {"users": list(data.user_ids), "items": list(data.item_ids),
                        "entities": list(data.entity_ids or []), "intents": list(data.intent_keys),
                        "relations": list(data.relation_names)}
    return state


def load_checkpoint(path: str | Path, data: RecData, split: Split | None = None, device: str = "cpu") -> Recommender:
    """Rebuild a model from a Trainer checkpoint (the data must have the recorded checksum)."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=False)
    if blob["data_checksum"] != data.checksum():
        raise TrainingError(f"{path}: checkpoint was trained on different data (checksum mismatch)")
    spec = get_spec(blob["model"])
    split = split or leave_one_out(data)
    net = spec.build(training_view(data, split), spec.make_config(blob["model_config"]),
                     torch.Generator().manual_seed(0))
    net.load_state_dict(blob["state_dict"])
    for k, v in blob.get("eval_params", {}).items():
        try:
            net.set_eval_param(k, v)
        except KeyError:
            pass
    return net.to(resolve_device(device))


__all__ = ["MODELS", "TrainConfig", "TrainResult", "Trainer", "EpochLog", "recommend", "load_checkpoint",
           "resolve_device", "seed_everything", "versions"]
