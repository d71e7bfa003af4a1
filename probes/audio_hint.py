"""Probe ``audio_hint``: is the tone in the audio high or low — against a hint in the text.

Each item is a 1 s tone (16 kHz, a sine with a soft attack and release, a little seeded noise):
``low`` at 200–300 Hz or ``high`` at 1,000–1,500 Hz (``meta["pitch_hz"]``). The question asks
which it is; the hint ("Hint: the tone is high.") names the true pitch (``correct``), the other
one (``conflicting``) or is absent (``none``), in rotation (``probes/_clips.py``). A model that
listens answers conflicting items as well as hint-free ones; one that follows the text does not.
Run it with the audio conditions (``complete,audio_silent,audio_noise,audio_removed``).

Default: 60 items; ``limit`` sets the count; ``path`` the folder of the WAV files.
"""

from __future__ import annotations

import io

import numpy as np

from probes import PROBES
from probes._clips import check_args, clip_folder, hinted_samples, sample_set, write_once

NAME = "audio_hint"
DEFAULT_SIZE = 60
RATE = 16_000
SECONDS = 1.0
PITCH = {"low": (200.0, 300.0), "high": (1000.0, 1500.0)}


def tone(pitch: float, rng: np.random.Generator, seconds: float = SECONDS, rate: int = RATE) -> np.ndarray:
    """A sine of ``pitch`` Hz with 50 ms attack / release and noise at -40 dB, peak 0.5."""
    t = np.arange(int(seconds * rate)) / rate
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.05)
    x = 0.5 * ramp * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 2 * np.pi))
    return (x + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


@PROBES.register(NAME)
def build(limit: int | None = None, seed: int = 0, path: str | None = None):
    """1 s tones, high or low, with correct / conflicting / no hints -> SampleSet."""
    import soundfile

    check_args(NAME, limit)
    folder = clip_folder(NAME, seed, path)

    def make_clip(k, truth, rng):
        pitch = float(rng.uniform(*PITCH[truth]))
        buf = io.BytesIO()
        soundfile.write(buf, tone(pitch, rng), RATE, format="WAV", subtype="PCM_16")
        return write_once(folder / f"{NAME}_{k:04d}.wav", buf.getvalue()), {"pitch_hz": round(pitch, 1)}

    samples = hinted_samples(NAME, limit or DEFAULT_SIZE, seed, ("high", "low"),
                             "Is the tone in the audio high or low?", lambda a: f"Hint: the tone is {a}.",
                             make_clip, "audio")
    return sample_set(samples, NAME if seed == 0 else f"{NAME}-seed{seed}", folder)
