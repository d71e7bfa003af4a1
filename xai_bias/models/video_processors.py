"""Video processors without torchvision: a family's video frames made into model inputs by its own
PIL image processor.

transformers 5.x ships video processors only on the torchvision backend (``BaseVideoProcessor``
requires it; decoding needs torchcodec / PyAV through it). Here a video arrives decoded and
sampled (``xai_bias.media.VideoClip``: the frames, their rate), and each frame goes through the
family's ``*ImageProcessorPil`` with the video's own size settings — the same resize, rescale and
normalisation as an image — before the frames are laid out as the model's video input:

- ``QwenVideoProcessorPil`` (Qwen2-VL, Qwen2.5-VL): each frame's patch rows from the image
  processor (which tiles one image over the temporal patch), consecutive frames paired into one
  temporal patch (an odd last frame repeated, as transformers' video processor pads), ordered
  time-major: ``pixel_values_videos [sum t*h*w, C*2*14*14]`` and ``video_grid_thw [n, 3]``;
  ``video_metadata`` (sampled frame rate) for Qwen2.5-VL's ``second_per_grid_ts``.
- ``OnevisionVideoProcessorPil`` (LLaVA-OneVision): each frame resized to the video ``size``
  (no tiling), rescaled and normalised: ``pixel_values_videos [n, T, C, H, W]``.

A test holds each layout against the family's image path (a two-frame still video equals the
image's patches) and the model's own video forward.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import transformers
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata


def _frames(video: Any) -> list:
    """A video as a list of PIL RGB frames (a ``VideoClip``, a list of PIL images or an array
    ``[T, H, W, 3]``)."""
    from PIL import Image

    if hasattr(video, "pil_frames"):
        return video.pil_frames()
    if isinstance(video, np.ndarray):
        return [Image.fromarray(np.asarray(f, dtype=np.uint8), "RGB") for f in video]
    return [f.convert("RGB") if getattr(f, "mode", "RGB") != "RGB" else f for f in video]


def _rate(video: Any, default: float = 2.0) -> float:
    return float(getattr(video, "fps", None) or default)


class FrameVideoProcessor(VideoProcessorMixin):
    """Base: the family's PIL image processor (``image_processor_class``) built with this video
    processor's settings does the per-frame work; subclasses lay the frames out."""

    image_processor_class = ""
    #: settings of the image processor used per frame (with their defaults)
    frame_settings: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        settings = {k: kwargs.pop(k, v) for k, v in self.frame_settings.items()}
        kwargs.pop("video_processor_type", None)
        super().__init__(**kwargs)
        for k, v in settings.items():
            setattr(self, k, v)

    def frame_processor(self) -> Any:
        cls = getattr(transformers, self.image_processor_class)
        return cls(**{k: getattr(self, k) for k in self.frame_settings})

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({k: getattr(self, k) for k in self.frame_settings})
        out["video_processor_type"] = type(self).__name__
        return out

    def preprocess(self, videos: Any, video_metadata: Any = None, **kwargs: Any) -> BatchFeature:  # noqa: D102
        if not isinstance(videos, (list, tuple)) or (videos and not _is_video(videos[0])):
            videos = [videos]
        videos = list(videos)
        metas = list(video_metadata) if video_metadata is not None else [None] * len(videos)
        metas = [m if m is not None else _metadata(v, len(_frames(v))) for v, m in zip(videos, metas)]
        return self.process(videos, metas, return_tensors=kwargs.get("return_tensors"),
                            return_metadata=bool(kwargs.get("return_metadata", self.return_metadata)))

    def process(self, videos: Sequence[Any], metas: Sequence[VideoMetadata], return_tensors: Any = None,
                return_metadata: bool = False) -> BatchFeature:
        raise NotImplementedError


def _is_video(x: Any) -> bool:
    return hasattr(x, "pil_frames") or (isinstance(x, np.ndarray) and x.ndim == 4) or isinstance(x, (list, tuple))


def _metadata(video: Any, n: int) -> VideoMetadata:
    rate = _rate(video)
    return VideoMetadata(total_num_frames=n, fps=rate, duration=n / rate, frames_indices=list(range(n)),
                         video_backend="xai_bias.media")


class QwenVideoProcessorPil(FrameVideoProcessor):
    """Qwen2-VL / Qwen2.5-VL video layout (module docstring)."""

    image_processor_class = "Qwen2VLImageProcessorPil"
    frame_settings = {"min_pixels": 128 * 28 * 28, "max_pixels": 768 * 28 * 28, "patch_size": 14,
                      "temporal_patch_size": 2, "merge_size": 2,
                      "image_mean": [0.48145466, 0.4578275, 0.40821073],
                      "image_std": [0.26862954, 0.26130258, 0.27577711]}
    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def process(self, videos, metas, return_tensors=None, return_metadata=False):
        proc = self.frame_processor()
        tp, c, p = self.temporal_patch_size, 3, self.patch_size
        rows, grids = [], []
        for video in videos:
            frames = _frames(video)
            out = proc(images=frames, return_tensors="np")
            grid = np.asarray(out["image_grid_thw"])
            if not (grid == grid[0]).all():
                raise ValueError(f"video frames differ in size: grids {grid.tolist()}")
            per = int(np.prod(grid[0]))
            # [frames, patches, C, tp, P, P]: the image processor tiles each frame over tp; keep one
            patches = np.asarray(out["pixel_values"]).reshape(len(frames), per, c, tp, p, p)[:, :, :, 0]
            if pad := -len(frames) % tp:
                patches = np.concatenate([patches, np.repeat(patches[-1:], pad, axis=0)])
            t = patches.shape[0] // tp
            # [t, tp, patches, C, P, P] -> [t, patches, C, tp, P, P] -> rows
            video_rows = patches.reshape(t, tp, per, c, p, p).transpose(0, 2, 3, 1, 4, 5).reshape(t * per, -1)
            rows.append(video_rows)
            grids.append([t, int(grid[0][1]), int(grid[0][2])])
        data = {"pixel_values_videos": np.concatenate(rows).astype(np.float32),
                "video_grid_thw": np.asarray(grids, dtype=np.int64)}
        if return_metadata:
            data["video_metadata"] = list(metas)
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])


class OnevisionVideoProcessorPil(FrameVideoProcessor):
    """LLaVA-OneVision video layout (module docstring)."""

    image_processor_class = "LlavaOnevisionImageProcessorPil"
    frame_settings = {"size": {"height": 384, "width": 384}, "image_mean": [0.5, 0.5, 0.5],
                      "image_std": [0.5, 0.5, 0.5]}
    model_input_names = ["pixel_values_videos"]

    def process(self, videos, metas, return_tensors=None, return_metadata=False):
        proc = self.frame_processor()
        size = self.size
        out = []
        for video in videos:
            frames = [f.resize((size["width"], size["height"]), resample=_bicubic()) for f in _frames(video)]
            arr = np.stack([np.asarray(f, dtype=np.float32) / 255.0 for f in frames])  # [T, H, W, C]
            mean = np.asarray(proc.image_mean, np.float32)
            std = np.asarray(proc.image_std, np.float32)
            out.append(((arr - mean) / std).transpose(0, 3, 1, 2))
        if len({o.shape for o in out}) > 1:
            raise ValueError("videos of one batch must have the same number of frames")
        data = {"pixel_values_videos": np.stack(out).astype(np.float32)}
        if return_metadata:
            data["video_metadata"] = list(metas)
        return BatchFeature(data, tensor_type=return_tensors, skip_tensor_conversion=["video_metadata"])


def _bicubic():
    from PIL import Image

    return Image.Resampling.BICUBIC


VIDEO_PROCESSORS = {cls.__name__: cls for cls in (QwenVideoProcessorPil, OnevisionVideoProcessorPil)}


def video_processor(name: str, **kwargs: Any) -> FrameVideoProcessor:
    """The video processor class ``name`` of this module, built with ``kwargs``."""
    if name not in VIDEO_PROCESSORS:
        raise ValueError(f"unknown video processor {name!r}; known: {', '.join(VIDEO_PROCESSORS)}")
    return VIDEO_PROCESSORS[name](**kwargs)


__all__ = ["FrameVideoProcessor", "QwenVideoProcessorPil", "OnevisionVideoProcessorPil", "VIDEO_PROCESSORS",
           "video_processor"]
