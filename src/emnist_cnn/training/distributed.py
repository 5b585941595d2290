"""Data-parallel training under torchrun: the few helpers train.py calls, all no-ops in a single process.

torchrun starts one process per device and sets WORLD_SIZE, RANK and LOCAL_RANK. Every rank builds the same
model, draws the same permutation of the training set each epoch (it derives from (seed, epoch)) and trains on
its own share of every global batch (cfg.batch_size images in all); DistributedDataParallel averages the
gradients, so the ranks' weights stay identical. Only rank 0 writes the run directory.
"""
from __future__ import annotations

import gc
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError

# A rank that waits longer than this in a collective (a peer hung or died) raises instead of hanging.
TIMEOUT_SECONDS = float(os.environ.get("EMNIST_CNN_DIST_TIMEOUT", "600"))


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the torchrun job named by the environment, if any; returns the device this rank trains on."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or active():
        return device
    if device.type == "cuda":  # one GPU per process, NCCL between them
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"distributed training on {device.type!r}: expected a cuda or cpu device")
    dist.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_SECONDS),
                            **({"device_id": device} if backend == "nccl" else {}))
    return device


def teardown() -> None:
    """Leave the job together: a rank that tears down gloo while rank 0 still writes the test results can abort
    ("terminate called without an active exception"), so every rank waits for the last one. Objects that hold
    gloo work (a DDP wrapper the caller dropped) are collected first, while the process group still exists."""
    if active():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device, log=print) -> nn.Module:
    """The module the training step calls: DDP (BatchNorm synchronised on GPUs) under torchrun, else model.

    SyncBatchNorm swaps the BatchNorm children of `model` in place, so call this before building the optimiser.
    """
    if not active():
        return model
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif has_bn:  # PyTorch's SyncBatchNorm runs on GPUs only
        log("note: BatchNorm statistics are per rank on CPU (SyncBatchNorm needs GPUs)")
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch of indices (ranks take every world_size-th item)."""
    return batch[rank()::world_size()] if active() else batch


def decorrelate(seed: int, generator: torch.Generator) -> None:
    """Give ranks > 0 their own dropout and augmentation streams; rank 0 keeps the single-process ones."""
    if rank():
        rank_seed = (seed + 0x9E3779B97F4A7C15 * rank()) % 2**63
        torch.manual_seed(rank_seed)
        generator.manual_seed(rank_seed)


def all_sum(*tensors: torch.Tensor) -> None:
    """Sum tensors over ranks, in place."""
    if active():
        for t in tensors:
            dist.all_reduce(t)


def from_main(compute):
    """compute() on rank 0, its (picklable) result on every rank."""
    if not active():
        return compute()
    box = [compute() if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
