"""Data-parallel training across processes and machines with PyTorch DDP, launched by ``torchrun``.

``torchrun`` starts one process per device and tells each who it is through environment variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Every process holds a full copy of the
model and a disjoint shard of each global batch; after the backward pass DDP averages the gradients
over all processes, so every copy takes the same optimizer step. Gloo carries the traffic on CPU,
NCCL on CUDA. Only rank 0 logs, writes metrics and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a data-parallel job: its global rank, local rank and the job's size."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """This process's place in the job from torchrun's environment variables (a single process without them)."""
    try:
        return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                        int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as exc:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {exc}") from None


def restart_count() -> int:
    """How many times torchrun has restarted this worker group (``--max-restarts``); 0 outside torchrun."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    except ValueError:
        return 0


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group described by the environment (no-op for a single process); returns our place."""
    info = env_info()
    if not info.enabled or dist.is_initialized():
        return current() if dist.is_initialized() else info
    for var in ("MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={info.world_size} but {var} is not set; launch with torchrun "
                               f"(it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size,
                            store=_attempt_store(info) if restart_count() > 0 else None)
    return info


def _attempt_store(info: DistInfo) -> dist.Store:
    """The rendezvous store under a prefix of its own for this restart of the worker group.

    The store can outlive a worker group (torchrun's agent hosts it): without the prefix, a restarted
    worker may read the address its dead predecessor published and fail to connect (seen here in
    about one restart in three with gloo).
    """
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), info.world_size,
                          is_master=not agent_hosts_it and info.rank == 0, multi_tenant=not agent_hosts_it)
    return dist.PrefixStore(f"glassformer/attempt-{restart_count()}", store)


def current() -> DistInfo:
    """This process's place in the initialised process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def device_for(info: DistInfo, requested: str | None = None) -> torch.device:
    """The device this process trains on: `requested`, else its own GPU (cuda:LOCAL_RANK), else the CPU."""
    if requested is not None:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over all processes (the value itself for a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s `obj` on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every process's `obj`, in rank order, on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait until every process reaches this point."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def on_main(fn: Callable[[], Any]) -> Any:
    """``fn()`` computed once, by rank 0, and the same object on every process (a vocabulary learnt before training).

    Every rank then provably holds identical ids: they all hold rank 0's pickled result.
    """
    return broadcast_object(fn() if current().is_main else None)


def write_once(fn: Callable[[], Any]) -> Any:
    """Run `fn` (evaluate, save) on rank 0 only; the others wait at a barrier and receive its result."""
    result = fn() if current().is_main else None
    result = broadcast_object(result)
    barrier()
    return result
