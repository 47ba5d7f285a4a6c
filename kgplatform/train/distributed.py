"""Data-parallel training with ``torch.distributed`` and :class:`~torch.nn.parallel.DistributedDataParallel`,
runnable (and checked) on one CPU machine with the ``gloo`` backend.

Every process builds the same model from the same seed and draws the same training batches (the project's
:class:`~kgplatform.train.samplers.PairSampler` with the same generator), then keeps only its shard of each
batch: rows ``rank, rank + W, rank + 2W, ...`` (``W`` processes; disjoint, covering the batch, as
``torch.utils.data.DistributedSampler`` shards a dataset). DDP averages the gradients over the processes in
its backward pass, so with a loss that is a mean over rows and equal shard sizes (a batch size divisible by
``W``) every step is the single-process step on the union batch: :func:`single_process_train` is that
reference, and the test checks the parameters agree after several Adam steps. A loss term that is not a
mean over rows (LightGCN's default RecBole regulariser, a Frobenius norm over the batch) does not split that
way; its ``require_pow`` form does.

This is data parallelism: every process holds the whole model (embedding tables included), so it divides the
time per epoch, not the memory per process; the neighbour loader (``lightgcn.loader=neighbor``) is what bounds
the propagation memory by the batch. On GPUs the same code runs with ``backend="nccl"`` and one device per
process (not checked here: no GPU machine was lent to this work).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from kgplatform.data.recdata import RecData
from kgplatform.errors import TrainingError
from kgplatform.models import get_spec


def shard(batch: dict[str, Tensor], rank: int, world_size: int) -> dict[str, Tensor]:
    """Rows ``rank::world_size`` of every tensor of ``batch`` (disjoint shards that together cover it)."""
    return {k: v[rank::world_size] for k, v in batch.items()}


class _Loss(nn.Module):
    """The model's summed named losses as ``forward`` (DDP synchronises gradients of what forward returns)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return sum(self.net.loss(batch).values())


def _setup(model: str, train: RecData, model_config: Any, seed: int, batch_size: int):
    from kgplatform.train.samplers import PairSampler
    from kgplatform.train.trainer import seed_everything

    spec = get_spec(model)
    if spec.model_cls.sampler != "pairs":
        raise TrainingError(f"data-parallel training is wired for pair-sampled models, not {model}")
    gen = seed_everything(seed)
    net = spec.build(train, spec.make_config(model_config), gen)
    if any(isinstance(m, nn.Embedding) and m.sparse for m in net.modules()):
        raise TrainingError("data-parallel training averages dense gradients; turn sparse_grad off")
    batches = PairSampler(train, batch_size, torch.Generator().manual_seed(seed))
    return net, batches


def _steps(module: nn.Module, batches, steps: int, lr: float, rank: int, world_size: int) -> list[float]:
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr)
    losses = []
    it = iter(batches)
    for _ in range(steps):
        batch = next(it)
        if batch["users"].numel() % world_size:
            raise TrainingError(f"batch of {batch['users'].numel()} rows does not split into {world_size} equal shards")
        loss = module(shard(batch, rank, world_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _worker(rank: int, world_size: int, init_file: str, out: str, model: str, train: RecData, model_config: Any,
            seed: int, steps: int, batch_size: int, lr: float, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        net, batches = _setup(model, train, model_config, seed, batch_size)
        ddp = DistributedDataParallel(_Loss(net))
        losses = torch.tensor(_steps(ddp, batches, steps, lr, rank, world_size))
        dist.all_reduce(losses)  # the union batch's mean loss per step (equal shards)
        if rank == 0:
            torch.save({"state": net.state_dict(), "losses": (losses / world_size).tolist()}, out)
    finally:
        dist.destroy_process_group()


def data_parallel_train(model: str, train: RecData, model_config: Any = None, *, world_size: int = 2,
                        steps: int = 3, batch_size: int = 256, lr: float = 1e-2, seed: int = 2024,
                        threads: int = 1, start_method: str = "fork") -> dict[str, Any]:
    """Train ``steps`` Adam steps of registry model ``model`` on the training view ``train`` with
    ``world_size`` gloo processes under DDP, each on its shard of every batch (see the module docstring).
    Returns ``{"state": state_dict, "losses": [mean loss per step]}`` from rank 0. ``start_method``:
    ``fork`` (fast, POSIX) or ``spawn``."""
    if world_size < 1 or batch_size % world_size:
        raise TrainingError(f"batch_size {batch_size} must split into {world_size} equal shards")
    with tempfile.TemporaryDirectory() as tmp:
        init, out = str(Path(tmp) / "init"), str(Path(tmp) / "out.pt")
        # fork: the workers inherit the imported modules and the data instead of importing and unpickling them
        mp.start_processes(_worker, args=(world_size, init, out, model, train, model_config, seed, steps, batch_size,
                                          lr, threads), nprocs=world_size, join=True, start_method=start_method)
        return torch.load(out, weights_only=True)


def single_process_train(model: str, train: RecData, model_config: Any = None, *, steps: int = 3,
                         batch_size: int = 256, lr: float = 1e-2, seed: int = 2024) -> dict[str, Any]:
    """The reference of :func:`data_parallel_train`: the same steps on the whole (union) batches, one process."""
    net, batches = _setup(model, train, model_config, seed, batch_size)
    losses = _steps(_Loss(net), batches, steps, lr, 0, 1)
    return {"state": net.state_dict(), "losses": losses}
