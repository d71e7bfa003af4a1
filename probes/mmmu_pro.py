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
from ._benchmark import Benchmark, register_benchmark

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


# The released Hugging Face dataset, one probe per config (the seed paper's Table 1 compares
# "standard 4" and "standard 10"; its "Image w/ B-P" uses the vision config's screenshots, joined
# to the standard configs by id when the vision config is in the same source).
_CITATION = "Yue et al. 2024, MMMU-Pro: A More Robust Multi-discipline Multimodal Understanding Benchmark (arXiv:2409.02813)"
for _name, _config, _options, _summary in (
    ("mmmu_pro_standard10", "standard (10 options)", "up to 10", "MMMU-Pro standard, 10 options (HF dataset)"),
    ("mmmu_pro_standard4", "standard (4 options)", "4", "MMMU-Pro standard, 4 options (HF dataset)"),
    ("mmmu_pro_vision", "vision", "up to 10 (inside the screenshot)",
     "MMMU-Pro vision: question and options in a screenshot (run with --conditions image_only)"),
):
    register_benchmark(Benchmark(_name, "MMMU/MMMU_Pro", (_config,), "test", "mmmu_pro_vision" if _config == "vision"
                                 else "mmmu", _CITATION, "1,730", _options), _summary)
