"""Data-parallel runs under torchrun / accelerate launch, and by hand with ``--shard i/n``.

Under a launcher (``WORLD_SIZE`` > 1 in the environment, as torchrun and accelerate set it)
each rank runs the ``RANK``-th of ``WORLD_SIZE`` contiguous blocks of the work items, writes its
own trace ``OUT.rank{r}-of-{n}.h5``, the ranks meet (gloo process group, CPU or GPU alike) and
add up their counts, and — only when every rank did all its items — rank 0 merges the shard
files, in rank order, into ``OUT`` and removes them. A run stopped by a signal (Ctrl-C, SIGTERM,
SIGHUP) keeps its shards; ``--resume`` under the same launcher continues each rank's shard (and
skips what an existing ``OUT`` holds already). Without a launcher, ``--shard i/n`` runs one
shard into the requested output; merge the shards with ``python cli.py merge``.
"""

from __future__ import annotations

import datetime
import os
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from .run import RunConfig, RunSummary, provenance, run_study


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


def check_outputs(config: RunConfig) -> None:
    """Refuse, before any model loads, an output this run cannot write (see
    ``store.check_target``): ``OUT``, or under a launcher this rank's shard file."""
    from .errors import OutputError
    from .store import check_target

    rank, world = launcher_world()
    out = Path(config.out)
    if world <= 1:
        check_target(out, resume=config.resume, overwrite=config.overwrite)
        return
    if out.exists() and not (config.overwrite or config.resume):  # every rank refuses alike
        raise OutputError(f"{out}: file exists; pass --resume to continue it or --overwrite to replace it")
    check_target(shard_path(out, rank, world), resume=config.resume, overwrite=config.overwrite)


def run_distributed(vlm: Any, sample_set: Any, config: RunConfig) -> RunSummary | None:
    """Run ``config``; under a launcher shard by rank and merge on rank 0 (None on others).

    The summary of a distributed run counts every rank (written, already there, failed)."""
    rank, world = launcher_world()
    if world <= 1:
        return run_study(vlm, sample_set, config)

    import torch
    import torch.distributed as dist

    from .store import check_resumable, merge_traces, open_trace

    out = Path(config.out)
    own = shard_path(out, rank, world)
    shard_config = replace(config, out=own, shard=(rank, world), progress=config.progress and rank == 0)
    in_out: frozenset[tuple[str, str, str]] = frozenset()
    if config.resume and out.exists():  # a finished run being extended: skip what OUT holds
        with open_trace(out) as t:
            check_resumable(out, t.attrs, provenance(vlm, sample_set, shard_config))
            in_out = frozenset(t.keys())
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=12))
    try:
        summary = run_study(vlm, sample_set, shard_config, done_elsewhere=in_out)
        counts = torch.tensor([summary.written, summary.skipped_done, summary.failed, int(summary.interrupted)],
                              dtype=torch.int64)
        stop_signal = torch.tensor([summary.stop_signal], dtype=torch.int64)
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        dist.all_reduce(stop_signal, op=dist.ReduceOp.MAX)
        written, skipped, failed, n_interrupted = (int(x) for x in counts)
        total = replace(summary, out=out, written=written, skipped_done=skipped, failed=failed)
        if n_interrupted:  # not every rank did all its items: keep the shards for --resume
            if rank != 0:
                return None
            return replace(total, out=own.parent, interrupted=True, stop_signal=int(stop_signal[0]),
                           resume_command=_launcher_resume_command(config.command, world))
        dist.barrier()
        if rank != 0:
            return None
        shards = [shard_path(out, r, world) for r in range(world)]
        if in_out and not written:  # OUT holds every record already
            pass
        elif in_out:
            staging = out.with_name(f".{out.name}.resumed.tmp")
            merge_traces([out, *shards], staging, overwrite=True)
            os.replace(staging, out)
        else:
            merge_traces(shards, out, overwrite=True)
        for s in shards:
            s.unlink()
        return total
    finally:
        if created:
            dist.destroy_process_group()


def _launcher_resume_command(command: str, world: int) -> str:
    """The command to continue an interrupted distributed run: the same launcher, --resume."""
    parts = [p for p in shlex.split(command) if p not in ("--overwrite", "--resume")]
    if parts[:1] and Path(parts[0]).name.startswith("python"):
        parts = parts[1:]
    return shlex.join(["torchrun", "--nproc_per_node", str(world), *parts, "--resume"])
