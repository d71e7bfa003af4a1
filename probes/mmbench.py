"""Probe ``mmbench``: MMBench dev, English (``lmms-lab/MMBench``, config ``en``, split ``dev``).

Its ``hint`` field is text the model may lean on: it goes before the question and
``meta["has_hint"]`` / ``meta["hint_text"]`` mark the items that have one, so a study can
compare hinted and unhinted items (``xai_bias.schemas``)."""

from __future__ import annotations

from probes._benchmark import Benchmark, register_benchmark

register_benchmark(Benchmark(
    "mmbench", "lmms-lab/MMBench", ("en",), "dev", "mmbench",
    "Liu et al. 2024, MMBench: Is Your Multi-modal Model an All-around Player? (ECCV 2024, arXiv:2307.06281)",
    "4,329", "2-4",
), "MMBench dev (en): perception and reasoning; some items carry a text hint (meta has_hint)")
