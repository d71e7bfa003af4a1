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


# ---------------------------------------------------------------------------------------------
# the same prompts for families that take video or audio instead of images


def tone(seed: int, seconds: float = 0.5, rate: int = 16000) -> np.ndarray:
    """A deterministic test tone (mono float32): pitch 200 + 100 * seed Hz plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.01
    return (0.4 * np.sin(2 * np.pi * (200 + 100 * seed) * t) + noise).astype(np.float32)


def moving_frames(seed: int, n: int = 4, size: tuple[int, int] = (56, 56)) -> np.ndarray:
    """``[n, H, W, 3]`` uint8: a bright square moving right over a seeded noise background."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    for i in range(n):
        x = (i * w // max(n, 1)) % (w - 8)
        frames[i, h // 3 : h // 3 + 8, x : x + 8] = (230, 40 + 40 * seed % 200, 40)
    return frames


def media_kind(arch) -> str:
    """The first non-text modality family ``arch`` (a name or a ``Family``) takes ("image" for
    the image families)."""
    from xai_bias.models import FAMILIES

    family = FAMILIES.get(arch) if isinstance(arch, str) else arch
    return family.modalities[0]


def family_view(view, arch):
    """``view`` as family ``arch`` can be shown it: unchanged when it takes images, else every
    image becomes a clip of the family's modality (a tone / a moving square), placeholders dropped."""
    import dataclasses
    import re

    from xai_bias.media import AudioClip, VideoClip

    kind = media_kind(arch)
    if kind == "image" or not view.images:
        return view
    if kind == "audio":
        clips = tuple(AudioClip(tone(i)) for i in range(len(view.images)))
    else:
        clips = tuple(VideoClip(moving_frames(i), fps=2.0, duration=2.0) for i in range(len(view.images)))
    question = re.sub(r"\s*<image \d+>\s*", " ", view.question).strip()
    return dataclasses.replace(view, question=question, images=(), **{f"{kind}s": clips})


def family_sample(sample, arch, folder: Path):
    """``sample`` with its images turned into clip files of family ``arch``'s modality."""
    import dataclasses
    import re

    from xai_bias.media import write_video, write_wav

    kind = media_kind(arch)
    if kind == "image" or not sample.images:
        return sample
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, _ in enumerate(sample.images):
        if kind == "audio":
            clips.append(write_wav(folder / f"{sample.id}_{i}.wav", tone(i + len(sample.id))))
        else:
            clips.append(write_video(folder / f"{sample.id}_{i}.mp4", moving_frames(i)))
    question = re.sub(r"\s*<image \d+>\s*", " ", sample.question).strip()
    return dataclasses.replace(sample, question=question, images=(), **{f"{kind}s": tuple(clips)})
