"""Probe ``hint_conflict``: easy-VQA test items whose text carries a hint that agrees with the
image, contradicts it, or is absent.

Three kinds, balanced and in rotation (``sample.meta["hint"]``): ``"correct"`` (the hint names
the answer), ``"conflicting"`` (it names another option), ``"none"`` (no hint). Question types
(shape, colour, yes/no; ``meta["qtype"]``) are balanced too. A model that reads the image
answers conflicting items as well as hint-free ones; a model that follows the text answers
them wrongly. The demo models were measured on this probe (see their model cards).

Default: 300 items (100 per kind); ``limit`` sets the count (at most about 3,700).
"""

from __future__ import annotations

from probes import PROBES
from probes.easy_vqa_data import HINT_KINDS, check_build_args, make_sample_set, probe_samples

NAME = "hint_conflict"
DEFAULT_SIZE = 300


@PROBES.register(NAME)
def build(limit: int | None = None, seed: int = 0, path: str | None = None):
    """easy-VQA test items with correct / conflicting / no hints -> SampleSet."""
    check_build_args(NAME, limit, path)
    samples = probe_samples("test", limit or DEFAULT_SIZE, seed, HINT_KINDS)
    return make_sample_set(samples, NAME if seed == 0 else f"{NAME}-seed{seed}")
