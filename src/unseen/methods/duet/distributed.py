"""torchrun support for DUET: process group from the environment, DDP, sharded evaluation.

Single GPU / CPU:   unseen train duet --dataset CUB ...
Multi-GPU (1 node): torchrun --standalone --nproc_per_node=8 -m unseen train duet --dataset CUB ...

Every rank runs `fit`; training batches are split across ranks by a `DistributedSampler`
(`set_epoch` each epoch); evaluation rows are split into contiguous shards and the score rows
gathered back in order, so every rank hands the runner the same full score matrix. The runner's
monitor is called on every rank and writes results and checkpoints only on rank 0
(`unseen.parallel.is_main_process`). DUET itself writes only the pixel cache, on rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device_type: str = "cpu") -> DistributedContext:
        """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); a plain run
        (no WORLD_SIZE, or 1) is a single-process context."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: cuda:LOCAL_RANK under torchrun on CUDA."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, device: torch.device, ignored: list[str] = (),
             static: bool = False) -> nn.Module:
        """DistributedDataParallel when distributed. `ignored`: parameters no step uses (left
        out of the reduction); `static`: every step uses the same parameters, so no search for
        unused ones and a static graph. Otherwise (the mask and template branches use
        different heads) DDP searches for unused parameters every step."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        if ignored:
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module,
                                                                                list(ignored))
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids,
                                       find_unused_parameters=not static, static_graph=static)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of `rows` (sizes differ by at most one)."""
        return np.array_split(np.asarray(rows), self.world_size)[self.rank]

    def gather_rows(self, local: Tensor, total: int) -> Tensor:
        """Concatenate every rank's `shard` result in rank order -> [total, ...]."""
        if not self.enabled:
            return local
        sizes = [part.size for part in np.array_split(np.arange(total), self.world_size)]
        width = max(sizes)
        communication_device = local.device
        if dist.get_backend() == "nccl" and local.device.type != "cuda":
            communication_device = torch.device("cuda", torch.cuda.current_device())
        padded = torch.zeros((width, *local.shape[1:]), dtype=local.dtype,
                             device=communication_device)
        padded[:local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).to(
            local.device)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar logs over ranks (same keys on every rank)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}
