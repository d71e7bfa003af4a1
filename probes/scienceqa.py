"""Probe ``scienceqa``: ScienceQA test, image subset (``lmms-lab/ScienceQA``, config
``ScienceQA-IMG``); the item's ``hint`` (its context) goes before the question, marked in meta."""

from __future__ import annotations

from probes._benchmark import Benchmark, register_benchmark

register_benchmark(Benchmark(
    "scienceqa", "lmms-lab/ScienceQA", ("ScienceQA-IMG",), "test", "scienceqa",
    "Lu et al. 2022, Learn to Explain: Multimodal Reasoning via Thought Chains for Science Question "
    "Answering (NeurIPS 2022, arXiv:2209.09513)", "2,017", "2-5",
), "ScienceQA test, image subset: science questions with a context hint (meta has_hint)")
