"""Probe suites: each module builds a sample set and registers it by name in ``PROBES``.

A probe is a callable ``build(limit: int | None = None, seed: int = 0, path: str | None = None)
-> xai_bias.samples.SampleSet``. ``xai_bias`` never imports this package; ``cli.py`` does.
"""

from __future__ import annotations

import importlib

from xai_bias.registry import Registry

PROBES: Registry = Registry("probe")

_MODULES = ("hint_conflict", "easy_vqa", "mmmu_pro", "mmmu", "mmstar", "mmbench", "ai2d", "scienceqa",
            "audio_hint", "video_hint")


def load_probes() -> Registry:
    """Import every probe module (each registers itself) and return the registry."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return PROBES
