"""Probe ``video_hint``: which way does the square move — against a hint in the text.

Each item is an 8-frame clip (64x64, 4 frames per second, MPEG-4 via PyAV) of a bright square
moving ``left`` or ``right`` across a dark, seeded-noise background, at a seeded height and speed
(``meta["speed_px"]`` per frame). The question asks the direction; the hint ("Hint: the square
moves left.") names the true one (``correct``), the other (``conflicting``) or is absent
(``none``), in rotation (``probes/_clips.py``). A frozen, black or shuffled video removes the
motion (``video_frozen``, ``video_black``, ``video_shuffled``).

Default: 60 items; ``limit`` sets the count; ``path`` the folder of the video files.
"""

from __future__ import annotations

import io

import numpy as np

from probes import PROBES
from probes._clips import check_args, clip_folder, hinted_samples, sample_set, write_once

NAME = "video_hint"
DEFAULT_SIZE = 60
SIZE = 64
FRAMES = 8
FPS = 4
SQUARE = 12


def frames(direction: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``[FRAMES, SIZE, SIZE, 3]`` uint8 of a square moving ``direction``."""
    speed = int(rng.integers(4, 7))
    top = int(rng.integers(4, SIZE - SQUARE - 4))
    colour = rng.integers(150, 256, 3)
    base = rng.integers(0, 50, (SIZE, SIZE, 3)).astype(np.uint8)
    out = np.repeat(base[None], FRAMES, axis=0)
    span = speed * (FRAMES - 1)
    start = int(rng.integers(0, SIZE - SQUARE - span + 1))
    for i in range(FRAMES):
        x = start + i * speed if direction == "right" else start + span - i * speed
        out[i, top : top + SQUARE, x : x + SQUARE] = colour
    return out, {"speed_px": speed, "top_px": top}


@PROBES.register(NAME)
def build(limit: int | None = None, seed: int = 0, path: str | None = None):
    """Clips of a square moving left or right, with correct / conflicting / no hints -> SampleSet."""
    from xai_bias.media import write_video

    check_args(NAME, limit)
    folder = clip_folder(NAME, seed, path)

    def make_clip(k, truth, rng):
        clip, meta = frames(truth, rng)
        buf = io.BytesIO()
        write_video(buf, clip, fps=FPS)
        return write_once(folder / f"{NAME}_{k:04d}.mp4", buf.getvalue()), meta

    samples = hinted_samples(NAME, limit or DEFAULT_SIZE, seed, ("left", "right"),
                             "Which way does the square in the video move?",
                             lambda a: f"Hint: the square moves {a}.", make_clip, "video")
    return sample_set(samples, NAME if seed == 0 else f"{NAME}-seed{seed}", folder)
