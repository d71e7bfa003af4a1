"""Pixel-space images of a condition (white / black / uniform noise) in a model's own input layout.

:class:`PixelAffine` learns from the image processor how it maps a raw pixel intensity to a
model input (per channel: ``black + u * (white - black)``), so :func:`condition_pixels` can
replace every pixel input of a batch (``vlm.sites.pixel_keys``) by a solid or noise image of the
same size, tokens, grids and positions — only the pixels differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

IMAGE_BASELINES = ("white", "black", "noise")


def _solid(vlm: Any, value: int) -> torch.Tensor:
    from PIL import Image

    proc = getattr(vlm.processor, "image_processor", None)
    if proc is None:
        raise ValueError("the model's processor has no image processor")
    img = Image.new("RGB", (224, 224), (value, value, value))
    out = proc(images=[img], return_tensors="pt")
    return torch.as_tensor(out["pixel_values"]).float()


def _varying_axis(t: torch.Tensor) -> tuple[int, torch.Tensor]:
    """The one trailing axis along which a processed solid image varies (the channel axis) and
    its per-channel values; (-1, [t.flatten()[0]]) when it is constant."""
    for ax in range(1, min(t.ndim, 4) + 1):
        moved = t.movedim(-ax, -1).reshape(-1, t.shape[-ax])
        if torch.all(moved == moved[:1]):
            if not torch.all(moved == moved[0, :1]):
                return -ax, moved[0]
    return -1, t.reshape(-1)[:1]


@dataclass(frozen=True)
class PixelAffine:
    """How the image processor maps a raw pixel intensity u in [0, 1] to a model input:
    ``black + u * (white - black)`` broadcast along ``axis`` (the channel axis of the layout)."""

    axis: int
    black: torch.Tensor  # [C] or [1]
    white: torch.Tensor

    @classmethod
    def of(cls, vlm: Any) -> "PixelAffine":
        w, b = _solid(vlm, 255), _solid(vlm, 0)
        ax_w, vw = _varying_axis(w)
        ax_b, vb = _varying_axis(b)
        axis = ax_w if vw.numel() > 1 else ax_b
        if vw.numel() == 1 and vb.numel() > 1:
            vw = vw.expand_as(vb)
        if vb.numel() == 1 and vw.numel() > 1:
            vb = vb.expand_as(vw)
        return cls(axis, vb.clone(), vw.clone())

    def apply(self, pixels: torch.Tensor, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel values of the same layout showing a white / black / uniform-noise image.
        All-zero images (padding images of a batch) stay zero."""
        shape = [1] * pixels.ndim
        n = self.white.numel()
        if n > 1:
            if pixels.shape[self.axis] != n:
                raise ValueError(f"pixel layout {tuple(pixels.shape)} does not match the processor's "
                                 f"channel axis ({n} values on axis {self.axis})")
            shape[self.axis] = n
        black = self.black.to(pixels.device, torch.float32).reshape(shape)
        white = self.white.to(pixels.device, torch.float32).reshape(shape)
        if kind == "white":
            u = torch.ones_like(pixels, dtype=torch.float32)
        elif kind == "black":
            u = torch.zeros_like(pixels, dtype=torch.float32)
        elif kind == "noise":
            u = torch.rand(pixels.shape, generator=generator, dtype=torch.float32).to(pixels.device)
        else:
            raise ValueError(f"unknown image baseline {kind!r} (white, black, noise)")
        out = (black + u * (white - black)).to(pixels.dtype)
        if pixels.ndim >= 4:  # keep padding images (all zeros) as they are
            pad = (pixels == 0).flatten(-3).all(-1)
            out[pad] = 0
        return out


def condition_pixels(vlm: Any, batch: Any, kind: str, affine: PixelAffine, seed: int = 0) -> Mapping[str, torch.Tensor]:
    """Every pixel input of ``batch`` (``vlm.sites.pixel_keys``) showing a white / black / noise
    image instead (noise drawn i.i.d. per pixel value, seeded)."""
    keys = [k for k in vlm.sites.pixel_keys if k in batch.inputs]
    if not keys:
        raise ValueError(f"the batch holds no pixel values (looked for {', '.join(vlm.sites.pixel_keys)})")
    gen = torch.Generator().manual_seed(int(seed))
    return {k: affine.apply(batch.inputs[k], kind, gen) for k in keys}


def has_images(vlm: Any, batch: Any) -> bool:
    """Whether ``batch`` holds any pixel input."""
    return any(k in batch.inputs for k in vlm.sites.pixel_keys)
