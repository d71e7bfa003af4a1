"""The bundled demo models: two small Qwen2.5-VL checkpoints with a known, planted modality bias.

``demo-biased`` was trained on easy-VQA items whose hint always names the right answer (the
text is a shortcut: it follows the hint and under-uses the image); ``demo-balanced`` on items
whose hint names a random option (it must look at the image). ``demo`` means ``demo-biased``.
Both are trained by ``scripts/train_demo.py``; each folder's README.md is its model card with
the measured behaviour on the ``hint_conflict`` probe.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo_models"

DEMO_MODELS: dict[str, Path] = {
    "demo": DEMO_DIR / "demo-biased",
    "demo-biased": DEMO_DIR / "demo-biased",
    "demo-balanced": DEMO_DIR / "demo-balanced",
}


def resolve_model_name(name: str) -> str:
    """The path a demo model name stands for; any other name (hub id, folder) unchanged."""
    path = DEMO_MODELS.get(str(name))
    return str(path) if path is not None else str(name)
