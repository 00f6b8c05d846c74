"""Training on several processes: DistributedDataParallel through torchrun.

    torchrun --nproc-per-node 4 -m archdsl train specs/resnet.arch resnet50 --data cifar10 ...
    archdsl train ... --nproc 4            (the same, launched for you on this machine)

torchrun starts one process per GPU (or per CPU worker) and sets RANK, WORLD_SIZE and
LOCAL_RANK; each process trains on its own shard of every epoch, gradients are averaged by
DDP, metrics are summed across processes, and only rank 0 writes the run directory, logs and
checkpoints. Backend: NCCL on CUDA, gloo on CPU. Across machines, run torchrun on each with
--nnodes, --node-rank and --rdzv-endpoint (docs/training.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .data import DataError


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def sum(self, values: list[float], device) -> list[float]:
        """Sum numbers across processes (every process gets the totals)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def share(self, value):
        """Rank 0's value, on every process."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self, finished: bool = True) -> None:
        """Tear the process group down. After a normal end, wait for every process first and
        free what still refers to the group (the DDP wrapper): tearing it down under a peer
        still finishing, or with the wrapper alive, aborts gloo's threads at exit
        ("terminate called without an active exception")."""
        if self.active and dist.is_initialized():
            if finished:
                import gc

                gc.collect()
                dist.barrier()
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_name: str) -> Processes:
    """Join the process group torchrun describes (or stay a single process)."""
    if not launched_by_torchrun():
        return Processes()
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    # every process checks before joining the group, so none is left waiting for the others
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if cuda and local_world > torch.cuda.device_count():
        gpus = torch.cuda.device_count()
        raise DataError(f"torchrun started {local_world} processes on this machine, which has "
                        f"{gpus} GPU{'s' if gpus != 1 else ''}: each process trains on a GPU "
                        f"of its own. Use --nproc {gpus}, or --device cpu to run the processes "
                        f"on the CPU")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Processes(rank, world, local_rank)


def device_for(processes: Processes, name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", processes.local_rank)
    return torch.device(name)
