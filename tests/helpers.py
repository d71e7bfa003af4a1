"""Small hand-made sample sets for tests (images drawn with PIL under tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int, size: tuple[int, int] = (56, 56)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_samples(folder: Path, n: int = 6, name: str = "samples.jsonl") -> Path:
    """``n`` multiple-choice items with one image each, as a JSONL file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        img = write_image(folder / f"img{i}.png", i)
        lines.append({
            "id": f"s{i}",
            "question": f"<image 1> What is shown in picture {i}?",
            "options": ["a red circle", "a blue square", "a green triangle", "nothing"],
            "answer": "ABCD"[i % 4],
            "image_1": img.name,
            "subject": "toy",
        })
    path = folder / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
