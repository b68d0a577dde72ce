"""Data-parallel training over processes and machines with ``torch.distributed``.

Launched by ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
every process builds the same networks from the same seed, takes its own slice of each global
batch (see the batch samplers in ``culturegan.data.datasets``) and, before every optimiser
step, averages the gradients of all processes with one all-reduce of a flattened buffer. This is
what ``DistributedDataParallel`` does, done explicitly as StyleGAN2-ADA / StyleGAN3 do for GANs:
a GAN step runs several forward passes per network and freezes the discriminator between
phases, which the DDP wrapper handles poorly. All networks here use instance norm, which is per
sample, so no norm statistics need synchronising. Only rank 0 writes logs and checkpoints.

Usage::

    torchrun --nproc_per_node=2 -m culturegan train --config cyclegan_tiny --data.root DATA
    # two machines, 4 GPUs each, run on both with --node_rank 0 and 1:
    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=0 --master_addr=HOST0 \\
        --master_port=29500 -m culturegan train --config multidomain --data.root DATA
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where collective buffers live (cuda for NCCL)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Replace every gradient by its mean over processes, as one process would compute it.

        A parameter that got no gradient on some process counts as 0 there; one that got none on
        any process keeps ``None`` everywhere, so Adam skips it as it would in a single process.
        """
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        has = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        params = [p for p, flag in zip(params, has.tolist(), strict=True) if flag > 0]
        if not params:
            return
        for p in params:
            if p.grad is None:  # e.g. a prior's network unused by this process's batch
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on any (e.g. one of them got SIGTERM)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average logged scalars over the processes that logged them (the global batch's loss).

        Processes may log different keys (a prior's loss only when its domain was in the
        process's slice of the batch); every key any process logged is averaged over those.
        """
        if not self.enabled:
            return values
        everyone: list[list[str] | None] = [None] * self.world_size
        dist.all_gather_object(everyone, sorted(values))
        keys = sorted({k for names in everyone for k in names})
        sums = torch.tensor(
            [[float(values.get(k, 0.0)), float(k in values)] for k in keys],
            dtype=torch.float64,
            device=self.device,
        ).reshape(-1, 2)
        dist.all_reduce(sums)
        return {
            k: float(total / count) for k, (total, count) in zip(keys, sums.tolist(), strict=True)
        }

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def broadcast_parameters(self, modules: Iterable[torch.nn.Module]) -> None:
        """Start every replica from rank 0's weights and buffers."""
        if not self.enabled:
            return
        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def replica_checksums(self, modules: Iterable[torch.nn.Module]) -> list[float]:
        """One parameter checksum per process (equal when the replicas are in sync)."""
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for module in modules:
            for p in module.parameters():
                total += p.detach().double().abs().sum().to(self.device)
        if not self.enabled:
            return [float(total)]
        gathered = [torch.zeros_like(total) for _ in range(self.world_size)]
        dist.all_gather(gathered, total)
        return [float(t) for t in gathered]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed() -> DistContext:
    """Join the process group that torchrun set up, or run alone when it did not."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)
