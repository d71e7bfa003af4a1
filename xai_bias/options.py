"""Option variants: reduce a sample to k options (MMMU-Pro's "standard 4" from "standard 10")."""

from __future__ import annotations

import dataclasses

import numpy as np

from .conditions import stable_seed
from .errors import UsageError
from .types import LETTERS, Sample


def reduce_options(sample: Sample, k: int = 4, seed: int = 0) -> Sample:
    """Keep the answer and k-1 distractors drawn with a seed stable per sample id.

    The kept options keep their original relative order and are re-lettered A, B, ...; the
    answer letter follows its option. ``meta["original_options"]`` holds the original letters
    of the kept options (e.g. ``("B", "E", "F", "I")``). With k >= the number of options the
    sample is returned unchanged. A sample without an answer keeps k options drawn the same way.
    """
    if k < 2:
        raise UsageError(f"an option variant needs k >= 2 options, got {k}")
    n = len(sample.options)
    if k >= n:
        return sample
    rng = np.random.default_rng(stable_seed(seed, "reduce_options", sample.id))
    ans = sample.answer_index
    if ans is None:
        keep = sorted(int(i) for i in rng.choice(n, size=k, replace=False))
    else:
        others = [i for i in range(n) if i != ans]
        drawn = rng.choice(len(others), size=k - 1, replace=False)
        keep = sorted([ans] + [others[int(j)] for j in drawn])
    options = tuple(sample.options[i] for i in keep)
    answer = None if ans is None else LETTERS[keep.index(ans)]
    meta = dict(sample.meta)
    meta["original_options"] = tuple(LETTERS[i] for i in keep)
    meta["original_answer"] = sample.answer
    meta["option_variant"] = f"standard{k}"
    return dataclasses.replace(sample, options=options, answer=answer, meta=meta)
