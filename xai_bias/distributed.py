"""Data-parallel runs under torchrun / accelerate launch, and by hand with ``--shard i/n``.

Under a launcher (``WORLD_SIZE`` > 1 in the environment, as torchrun and accelerate set it)
each rank runs the ``RANK``-th of ``WORLD_SIZE`` contiguous blocks of the work items, writes its own trace
``OUT.rank{r}-of-{n}.h5``, the ranks meet at a barrier (gloo process group, CPU or GPU alike),
and rank 0 merges the shard files, in rank order, into ``OUT`` and removes them. With
``--resume`` each rank resumes its own shard file. Without a launcher, ``--shard i/n`` runs
one shard into the requested output; merge the shards with ``python cli.py merge``.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .run import RunConfig, RunSummary, run_study


def launcher_world() -> tuple[int, int]:
    """(rank, world_size) from the launcher's environment; (0, 1) when not launched."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def rank_device(device: str) -> str:
    """``auto`` under a launcher on a GPU machine -> this rank's GPU (``cuda:LOCAL_RANK``)."""
    if device != "auto" or launcher_world()[1] <= 1:
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return device


def shard_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.stem}.rank{rank}-of-{world}{out.suffix}")


def run_distributed(vlm: Any, sample_set: Any, config: RunConfig) -> RunSummary | None:
    """Run ``config``; under a launcher shard by rank and merge on rank 0 (None on others)."""
    rank, world = launcher_world()
    if world <= 1:
        return run_study(vlm, sample_set, config)

    import torch.distributed as dist

    from .store import merge_traces

    out = Path(config.out)
    own = shard_path(out, rank, world)
    if out.exists() and not (config.overwrite or config.resume):  # every rank refuses alike
        from .errors import OutputError

        raise OutputError(f"{out} exists; pass --resume or --overwrite")
    shard_config = replace(config, out=own, shard=(rank, world), progress=config.progress and rank == 0)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))
    try:
        summary = run_study(vlm, sample_set, shard_config)
        dist.barrier()
        if rank != 0:
            return None
        shards = [shard_path(out, r, world) for r in range(world)]
        merge_traces(shards, out, overwrite=True)
        for s in shards:
            s.unlink()
        from .store import open_trace

        with open_trace(out) as merged:  # report the whole run, not rank 0's shard
            return replace(summary, out=out, written=merged.n_records)
    finally:
        if created:
            dist.destroy_process_group()
