"""Probe ``easy_vqa``: plain easy-VQA test items (no hint) as multiple-choice questions.

Options come in a fixed order per question type (shape: circle, rectangle, triangle; colour:
the eight colours; yes/no). Question types are balanced (``sample.meta["qtype"]``).
Default: 300 items; ``limit`` sets the count (at most about 3,700).
"""

from __future__ import annotations

from probes import PROBES
from probes.easy_vqa_data import check_build_args, make_sample_set, probe_samples

NAME = "easy_vqa"
DEFAULT_SIZE = 300


@PROBES.register(NAME)
def build(limit: int | None = None, seed: int = 0, path: str | None = None):
    """Plain easy-VQA test items -> SampleSet."""
    check_build_args(NAME, limit, path)
    samples = probe_samples("test", limit or DEFAULT_SIZE, seed, ("none",))
    return make_sample_set(samples, NAME if seed == 0 else f"{NAME}-seed{seed}")
