"""Ranks of a multi-process ``genrm train`` (``torchrun`` / ``accelerate launch``): who samples, who writes.

A run launched with several processes shares one accelerate state with TRL's trainers (created
here with ``cpu=True`` when there is no accelerator, as TRL's ``use_cpu=True`` does: gloo ranks).
Rank 0 is the only writer of the run folder; the other ranks wait at :func:`barrier`. STaR
sampling gives each rank its share of the missing shards (:func:`my_share`) and collects every
rank's records on all ranks (:func:`gather_records`), so rank 0 saves all shards. In a single
process every function here is a no-op or the identity.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def launched_world_size() -> int:
    """Processes in the launch (``WORLD_SIZE`` from torchrun / accelerate), 1 without a launcher."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(use_cpu: bool | None = None) -> None:
    """Create the accelerate state of a multi-process launch (no-op for a single process).

    ``use_cpu``: gloo CPU ranks (``None``: when torch sees no CUDA device), the state TRL's
    trainers then reuse with ``use_cpu=True``.
    """
    if launched_world_size() <= 1:
        return
    import torch
    from accelerate import PartialState

    PartialState(cpu=use_cpu if use_cpu is not None else not torch.cuda.is_available())


def _state():
    from accelerate import PartialState

    if launched_world_size() <= 1 or not PartialState._shared_state:
        return None
    return PartialState()


def rank() -> int:
    state = _state()
    return state.process_index if state is not None else 0


def world_size() -> int:
    state = _state()
    return state.num_processes if state is not None else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (no-op in a single process)."""
    state = _state()
    if state is not None:
        state.wait_for_everyone()


def my_share(items: list[T]) -> list[T]:
    """This rank's items: every ``world_size``-th one, starting at its rank."""
    return items[rank() :: world_size()]


def gather_records(mine: dict[int, Any]) -> dict[int, Any]:
    """Every rank's ``{shard: records}`` merged, on every rank (the identity in a single process)."""
    if world_size() == 1:
        return dict(mine)
    import torch.distributed as dist

    everyone: list[dict[int, Any] | None] = [None] * world_size()
    dist.all_gather_object(everyone, mine)
    merged: dict[int, Any] = {}
    for part in everyone:
        merged.update(part or {})
    return merged
