"""Audio features of silence in a model's own input layout: the absent-audio baseline.

:func:`silent_features` runs the model's processor on all-zero clips of the very lengths the
batch's clips have (``Encoded.media.audio_samples``), so its ``sites.audio_keys`` inputs (e.g.
Qwen2-Audio's ``input_features``) are exactly what a silent clip of that length produces — same
padding, same mask, same number of audio tokens; only the sound differs (the audio analogue of
``pixels.condition_pixels``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def has_audio(vlm: Any, batch: Any) -> bool:
    """Whether ``batch`` holds any audio-feature input."""
    return any(k in batch.inputs for k in vlm.sites.audio_keys)


def silent_features(vlm: Any, batch: Any) -> Mapping[str, torch.Tensor]:
    """Every audio-feature input of ``batch`` (``vlm.sites.audio_keys``) computed from silence of
    each clip's length, in the batch's order of clips (items in order, clips in order)."""
    proc = vlm.processor
    token = getattr(proc, "audio_token", None)
    fe = getattr(proc, "feature_extractor", None)
    if token is None or fe is None:
        raise ValueError(f"{type(proc).__name__} has no audio token / feature extractor to build silence with")
    lengths = [n for media in batch.media for n in getattr(media, "audio_samples", ())]
    keys = [k for k in vlm.sites.audio_keys if k in batch.inputs]
    if not lengths:
        raise ValueError("the batch records no audio clip lengths (Encoded.media.audio_samples)")
    rate = int(getattr(fe, "sampling_rate", 16000))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    for n in lengths:
        out = proc(text=[token], audio=[np.zeros(n, np.float32)], sampling_rate=rate, return_tensors="pt")
        for k in keys:
            parts[k].append(out[k])
    result = {}
    for k in keys:
        t = torch.cat(parts[k], dim=0).to(batch.inputs[k].device, batch.inputs[k].dtype)
        if t.shape != batch.inputs[k].shape:
            raise ValueError(f"silence features {k} {tuple(t.shape)} do not match the batch's "
                             f"{tuple(batch.inputs[k].shape)}")
        result[k] = t
    return result


__all__ = ["has_audio", "silent_features"]
