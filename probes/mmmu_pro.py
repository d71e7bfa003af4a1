"""Probe ``mmmu_pro``: real MMMU-Pro items (``../shared/data/mmmu_pro_tool/data.jsonl``).

``build(limit=None, seed=0, path=None, on_error="skip")`` loads the JSONL (MMMU-Pro layout,
images under ``static/``) through ``xai_bias.samples.load_samples``. Unusable items (the set
has one with a missing image) are skipped by default and listed in ``SampleSet.problems``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xai_bias.errors import UsageError
from xai_bias.samples import SampleSet, load_samples

from . import PROBES

DEFAULT_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmmu_pro_tool" / "data.jsonl"


@PROBES.register("mmmu_pro")
def build(limit: int | None = None, seed: int = 0, path: str | Path | None = None,
          on_error: str = "skip") -> SampleSet:
    """The MMMU-Pro sample set (``seed`` is unused: the items are fixed)."""
    p = Path(path) if path is not None else DEFAULT_PATH
    if not p.is_file():
        raise UsageError(
            f"MMMU-Pro items not found at {p}: pass the data file with --samples PATH "
            "(a JSONL in MMMU-Pro layout: id, question, options, answer, image_1..., images under static/)"
        )
    samples = load_samples(p, on_error=on_error, limit=limit)
    return dataclasses.replace(samples, name="mmmu_pro")
