"""Registering a published benchmark as a probe: where it lives on the hub, its config and
split, its column schema (``xai_bias.schemas``), and what ``xai-bias probes`` lists about it
(citation, item count, option counts).

A benchmark probe's ``build(limit=None, seed=0, path=None, on_error="skip")`` reads ``path``
(a local copy: a hub-layout or ``save_to_disk`` folder, or a ``.parquet`` file) when given,
else ``hf:<hub id>`` (offline from the local Hugging Face cache under ``HF_HUB_OFFLINE=1``).
``seed`` is unused: the items are fixed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from xai_bias.samples import SampleSet, load_samples

from . import PROBES


@dataclass(frozen=True)
class Benchmark:
    """A published benchmark: hub id, configs read (one or several, concatenated), split,
    column schema, and its listing (citation, published item count, option counts)."""

    name: str
    hub: str
    configs: tuple[str | None, ...]
    split: str
    schema: str
    citation: str
    items: str
    options: str

    @property
    def listing(self) -> str:
        configs = (f"{len(self.configs)} configs" if len(self.configs) > 3
                   else ", ".join(c for c in self.configs if c) or "default")
        return (f"{self.items} items, {self.options} options; hf:{self.hub} [{configs}] {self.split}; "
                f"{self.citation}")


def register_benchmark(bench: Benchmark, summary: str) -> Callable[..., SampleSet]:
    """Register ``bench`` as a probe; ``summary`` is the first line of its listing."""

    def build(limit: int | None = None, seed: int = 0, path: str | Path | None = None,
              on_error: str = "skip") -> SampleSet:
        source = str(path) if path is not None else f"hf:{bench.hub}"
        parts: list[SampleSet] = []
        for config in bench.configs:
            left = None if limit is None else limit - sum(len(p) for p in parts)
            if left is not None and left <= 0:
                break
            parts.append(load_samples(source, on_error=on_error, limit=left, subset=config,
                                      split=bench.split, schema=bench.schema))
        if len(parts) == 1:
            return dataclasses.replace(parts[0], name=bench.name)
        import hashlib

        digest = hashlib.sha256("".join(p.sha256 for p in parts).encode()).hexdigest()
        return SampleSet(tuple(s for p in parts for s in p.samples), tuple(e for p in parts for e in p.problems),
                         bench.name, digest, None, {"source": source, "parts": [dict(p.provenance) for p in parts]})

    build.__doc__ = summary
    build.benchmark = bench  # type: ignore[attr-defined]
    build.listing = bench.listing  # type: ignore[attr-defined]
    PROBES.register(bench.name, build)
    return build
