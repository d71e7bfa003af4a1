"""Probe ``mmstar``: MMStar (``Lin-Chen/MMStar``, split ``val``), built so that every item needs
its image: the seed paper's reference for vision-indispensable items."""

from __future__ import annotations

from probes._benchmark import Benchmark, register_benchmark

register_benchmark(Benchmark(
    "mmstar", "Lin-Chen/MMStar", (None,), "val", "mmstar",
    "Chen et al. 2024, Are We on the Right Way for Evaluating Large Vision-Language Models? (arXiv:2403.20330)",
    "1,500", "4",
), "MMStar: vision-indispensable items (answers not guessable from the text alone)")
