"""Probe ``ai2d``: AI2D test (``lmms-lab/ai2d``): grade-school science diagrams."""

from __future__ import annotations

from probes._benchmark import Benchmark, register_benchmark

register_benchmark(Benchmark(
    "ai2d", "lmms-lab/ai2d", (None,), "test", "ai2d",
    "Kembhavi et al. 2016, A Diagram Is Worth A Dozen Images (ECCV 2016, arXiv:1603.07396)", "3,088", "4",
), "AI2D test: science diagrams with multiple-choice questions")
