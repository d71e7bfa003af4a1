"""Shared machinery of the synthetic clip probes (``audio_hint``, ``video_hint``): ground truth in
the clip, a hint in the text that agrees with it, contradicts it, or is absent.

Items rotate over the hint kinds ``correct`` / ``conflicting`` / ``none`` (``meta["hint"]``) and
the two answers, so every prefix is balanced; everything is drawn from a generator seeded by
(seed, item index), and the clips are written once into a folder (``path``, default
``$XDG_CACHE_HOME/xai_bias/probes/<name>-seed<seed>``; files that exist with the same bytes are
kept), so a probe shows the same items on every machine (the encoded video bytes follow
FFmpeg's version; the set's sha256 hashes the clip files).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from xai_bias.types import LETTERS, Sample

HINT_KINDS = ("correct", "conflicting", "none")


def clip_folder(name: str, seed: int, path: str | None) -> Path:
    if path is not None:
        folder = Path(path).expanduser()
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        folder = cache / "xai_bias" / "probes" / f"{name}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_args(name: str, limit: int | None) -> None:
    from xai_bias.errors import UsageError

    if limit is not None and limit < 1:
        raise UsageError(f"probe {name!r}: --limit must be at least 1 (got {limit})")


def hinted_samples(name: str, n: int, seed: int, answers: Sequence[str], question: str,
                   hint: Callable[[str], str], make_clip: Callable[[int, str, np.random.Generator], tuple],
                   kind: str) -> list[Sample]:
    """``n`` items: item k has hint kind ``HINT_KINDS[k % 3]`` and true answer
    ``answers[(k // 3) % len(answers)]``; ``make_clip(k, truth, rng) -> (path, meta)`` writes its
    clip. The options are ``answers`` in order; a conflicting hint names the next answer."""
    out = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        hint_kind = HINT_KINDS[k % len(HINT_KINDS)]
        truth = answers[(k // len(HINT_KINDS)) % len(answers)]
        other = answers[(answers.index(truth) + 1) % len(answers)]
        clip, clip_meta = make_clip(k, truth, rng)
        text = {"correct": hint(truth) + " ", "conflicting": hint(other) + " ", "none": ""}[hint_kind]
        meta = {"probe": name, "kind": kind, "hint": hint_kind, "truth": truth,
                "hinted": {"correct": truth, "conflicting": other, "none": ""}[hint_kind], **clip_meta}
        sample = Sample(id=f"{name}_{k:04d}", question=text + question, options=tuple(answers),
                        answer=LETTERS[answers.index(truth)], meta=meta,
                        **{f"{kind}s": (clip,)})
        out.append(sample)
    return out


def write_once(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` unless it holds exactly these bytes already."""
    if not (path.is_file() and path.read_bytes() == data):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def sample_set(samples: list[Sample], name: str, folder: Path):
    from xai_bias.samples import SampleSet

    h = hashlib.sha256()
    for s in samples:
        clips = [hashlib.sha256(Path(c).read_bytes()).hexdigest() for c in s.videos + s.audios]
        h.update(json.dumps([s.id, s.question, list(s.options), s.answer, clips, dict(s.meta)],
                            sort_keys=True, default=str).encode() + b"\n")
    return SampleSet(tuple(samples), (), name, h.hexdigest(), None,
                     {"source": f"probe {name}", "kind": "probe", "clips": str(folder)})
