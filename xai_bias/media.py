"""Decoding and checking a sample's video and audio clips (files, frame folders, data-file cells).

Audio (wav, flac, mp3, ogg, ...): decoded with ``soundfile`` (libsndfile), mixed down to mono
float32 in [-1, 1] and resampled with ``soxr`` to ``AUDIO_RATE`` (16 kHz, the rate of Whisper-style
audio encoders: Qwen2-Audio, Qwen2.5-Omni, Gemma 3n); ``encode`` resamples again if a model's
feature extractor wants another rate. A clip longer than ``MAX_AUDIO_SECONDS`` is refused: those
encoders see a 30 s window and would cut the rest silently.

Video: a video file decoded with PyAV (FFmpeg; no torchvision), or a folder of frame images
(sorted by name, shown at ``FOLDER_FPS`` frames per second). ``VIDEO_FRAMES`` frames are sampled
uniformly from the start (frame ``floor(i * total / n)``, the rule of transformers' Qwen2-VL
video processor); a clip with fewer frames keeps them all. The sampled frames' rate
(``VideoClip.fps`` = n / duration) is what the video processors are told (Qwen2.5-VL's temporal
positions follow it). A video longer than ``MAX_VIDEO_SECONDS`` or with frames larger than
``MAX_FRAME_PIXELS`` is refused.

Every problem is a ``ValueError`` naming the clip and the cause (``xai_bias.samples`` turns it
into the sample's error).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from .types import MediaRef

AUDIO_RATE = 16_000
"""Sampling rate (Hz) audio clips are decoded to."""
MAX_AUDIO_SECONDS = 30.0
"""Longest audio clip accepted: the window of Whisper-style audio encoders."""
VIDEO_FRAMES = 8
"""Frames sampled per video clip."""
MAX_VIDEO_SECONDS = 600.0
"""Longest video accepted (10 minutes)."""
MAX_FRAME_PIXELS = 16_000_000
"""Largest video frame accepted (width x height)."""
FOLDER_FPS = 1.0
"""Frame rate of a folder of frame images (it has none of its own)."""
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

Clip = "Path | MediaRef | str"


# --------------------------------------------------------------------------------------------
# decoded clips


@dataclass(frozen=True)
class AudioClip:
    """A decoded audio clip: ``samples [n]`` float32 mono in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray  # [n] float32
    rate: int = AUDIO_RATE
    source: str = ""

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(np.asarray(self.samples, dtype=np.float32).reshape(-1))
        arr.setflags(write=False)
        object.__setattr__(self, "samples", arr)

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.samples.shape[0] / float(self.rate)

    def at_rate(self, rate: int) -> "AudioClip":
        """The clip resampled to ``rate`` Hz (itself when it has that rate)."""
        if int(rate) == self.rate:
            return self
        import soxr

        return AudioClip(soxr.resample(self.samples, self.rate, int(rate)).astype(np.float32), int(rate), self.source)


@dataclass(frozen=True)
class VideoClip:
    """Decoded, sampled video frames: ``frames [T, H, W, 3]`` uint8 RGB, ``times [T]`` (seconds
    of each frame in the source), ``fps`` = T / duration (the sampled frames' rate) and the
    source's ``duration`` in seconds."""

    frames: np.ndarray  # [T, H, W, 3] uint8
    fps: float
    duration: float
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [T] seconds
    source: str = ""

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames, dtype=np.uint8)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"video frames must be [T>0, H, W, 3], got {frames.shape}")
        frames.setflags(write=False)
        object.__setattr__(self, "frames", frames)
        times = np.asarray(self.times, dtype=np.float64)
        if times.shape != (frames.shape[0],):
            times = np.arange(frames.shape[0]) / max(float(self.fps), 1e-9)
        object.__setattr__(self, "times", times)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a frame."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def pil_frames(self) -> list:
        from PIL import Image

        return [Image.fromarray(f, "RGB") for f in self.frames]

    def with_frames(self, frames: np.ndarray) -> "VideoClip":
        """The same clip (rate, times, source) showing ``frames`` instead."""
        return VideoClip(frames, self.fps, self.duration, self.times, self.source)


# --------------------------------------------------------------------------------------------
# sources


def _source(clip: Any) -> Path | MediaRef:
    return clip if isinstance(clip, MediaRef) else Path(clip)


def _binary(clip: Path | MediaRef) -> Any:
    """What a decoder opens: the path, or a file object over a data-file cell's bytes."""
    if isinstance(clip, MediaRef):
        return io.BytesIO(clip.open_binary().read())
    return str(clip)


def _check_file(clip: Path | MediaRef, kind: str, folder_ok: bool = False) -> None:
    """A file path must be a non-empty regular file (a folder where ``folder_ok``)."""
    if isinstance(clip, MediaRef):
        return
    if folder_ok and clip.is_dir():
        return
    if not clip.exists():
        raise ValueError(f"{kind} not found: {clip}")
    if not clip.is_file():
        raise ValueError(f"{kind} path is not a regular file: {clip}")
    if clip.stat().st_size == 0:
        raise ValueError(f"{kind} is empty (0 bytes): {clip}")


# --------------------------------------------------------------------------------------------
# audio


def _read_audio(clip: Path | MediaRef) -> tuple[np.ndarray, int]:
    import soundfile

    _check_file(clip, "audio")
    try:
        data, rate = soundfile.read(_binary(clip), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError / TypeError for bad data
        raise ValueError(f"audio is corrupt or in a format libsndfile cannot read "
                         f"({exc.__class__.__name__}: {exc}): {clip}") from None
    if data.shape[0] == 0:
        raise ValueError(f"audio holds no samples: {clip}")
    return data.mean(axis=1), int(rate)


def decode_audio(clip: Clip, rate: int = AUDIO_RATE, max_seconds: float = MAX_AUDIO_SECONDS) -> AudioClip:
    """The clip as mono float32 at ``rate`` Hz (ValueError naming the clip for a missing, empty,
    corrupt or too long one)."""
    clip = _source(clip)
    samples, native = _read_audio(clip)
    seconds = samples.shape[0] / native
    if seconds > max_seconds:
        raise ValueError(f"audio is {seconds:.1f} s long, more than the {max_seconds:g} s audio encoders see "
                         f"(cut it first): {clip}")
    if not np.isfinite(samples).all():
        raise ValueError(f"audio holds NaN or infinite samples: {clip}")
    return AudioClip(samples, native, str(clip)).at_rate(rate)


def check_audio(clip: Clip, max_seconds: float = MAX_AUDIO_SECONDS) -> None:
    """Raise ValueError if the audio clip is missing, empty, corrupt or too long (decodes it)."""
    decode_audio(clip, AUDIO_RATE, max_seconds)


# --------------------------------------------------------------------------------------------
# video


def sample_indices(total: int, n: int) -> np.ndarray:
    """``n`` frame indices of ``total``, uniformly from the start (``floor(i * total / n)``);
    all frames when ``total <= n``."""
    if total <= n:
        return np.arange(total)
    return np.floor(np.arange(n) * (total / n)).astype(np.int64)


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise ValueError(f"video folder holds no frame images ({', '.join(FRAME_SUFFIXES)}): {folder}")
    return files


def _decode_folder(folder: Path, n: int) -> VideoClip:
    from .images import check_image, load_rgb

    files = _frame_files(folder)
    idx = sample_indices(len(files), n)
    frames = []
    for i in idx:
        check_image(files[i])
        frames.append(np.asarray(load_rgb(files[i])))
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"video folder frames differ in size ({sorted(s[:2] for s in shapes)}): {folder}")
    _check_frame_size(frames[0].shape[1], frames[0].shape[0], folder)
    duration = len(files) / FOLDER_FPS
    return VideoClip(np.stack(frames), len(idx) / duration, duration, idx / FOLDER_FPS, str(folder))


def _check_frame_size(w: int, h: int, clip: Any) -> None:
    if w * h > MAX_FRAME_PIXELS:
        raise ValueError(f"video frames are {w}x{h}, more than {MAX_FRAME_PIXELS / 1e6:.0f} megapixels: {clip}")
    if w < 1 or h < 1:
        raise ValueError(f"video frames are {w}x{h}: {clip}")


def _open_container(clip: Path | MediaRef):
    import av

    try:
        container = av.open(_binary(clip))
    except Exception as exc:  # av.error.InvalidDataError, FileNotFoundError, ...
        raise ValueError(f"video is corrupt or not a video ({exc.__class__.__name__}: {exc}): {clip}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"file holds no video stream: {clip}")
    return container


def _decode_file(clip: Path | MediaRef, n: int, max_seconds: float) -> VideoClip:
    container = _open_container(clip)
    try:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        _check_frame_size(stream.codec_context.width, stream.codec_context.height, clip)
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if seconds is None and container.duration:
            seconds = container.duration / 1e6
        if seconds is not None and seconds > max_seconds:
            raise ValueError(f"video is {seconds:.0f} s long, more than {max_seconds:g} s: {clip}")
        try:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        except Exception as exc:
            raise ValueError(f"video is corrupt ({exc.__class__.__name__}: {exc}): {clip}") from None
    finally:
        container.close()
    if not frames:
        raise ValueError(f"video holds no decodable frame: {clip}")
    total = len(frames)
    rate = rate or (total / seconds if seconds else 1.0)
    duration = total / rate
    if duration > max_seconds:
        raise ValueError(f"video is {duration:.0f} s long, more than {max_seconds:g} s: {clip}")
    idx = sample_indices(total, n)
    return VideoClip(np.stack([frames[i] for i in idx]), len(idx) / duration, duration, idx / rate, str(clip))


def decode_video(clip: Clip, n_frames: int = VIDEO_FRAMES, max_seconds: float = MAX_VIDEO_SECONDS) -> VideoClip:
    """``n_frames`` frames sampled uniformly from a video file, a data-file cell or a folder of
    frame images (module docstring); ValueError naming the clip for a bad one."""
    clip = _source(clip)
    _check_file(clip, "video", folder_ok=True)
    if isinstance(clip, Path) and clip.is_dir():
        return _decode_folder(clip, n_frames)
    return _decode_file(clip, n_frames, max_seconds)


def check_video(clip: Clip, max_seconds: float = MAX_VIDEO_SECONDS) -> None:
    """Raise ValueError if the video is missing, empty, corrupt, too long or too large."""
    decode_video(clip, 1, max_seconds)


# --------------------------------------------------------------------------------------------
# writing (probes and tests make their clips with these)


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV."""
    import soundfile

    path = Path(path)
    soundfile.write(str(path), np.clip(np.asarray(samples, dtype=np.float32), -1, 1), int(rate), subtype="PCM_16")
    return path


def write_video(path: str | os.PathLike | IO[bytes], frames: np.ndarray, fps: int = 4) -> Any:
    """Write ``frames [T, H, W, 3]`` uint8 as an MPEG-4 video (lossless enough for probes:
    high bit rate, even sizes) with PyAV."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"video frames need even sizes for yuv420p, got {w}x{h}")
    with av.open(str(path) if not hasattr(path, "write") else path, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 8_000_000
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


__all__ = ["AUDIO_RATE", "MAX_AUDIO_SECONDS", "VIDEO_FRAMES", "MAX_VIDEO_SECONDS", "MAX_FRAME_PIXELS",
           "FOLDER_FPS", "AudioClip", "VideoClip", "decode_audio", "check_audio", "decode_video", "check_video",
           "sample_indices", "write_wav", "write_video"]
