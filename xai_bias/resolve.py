"""Model names the CLI accepts: ``demo`` / ``demo-biased`` / ``demo-balanced`` (the bundled
demo models), ``tiny:ARCH`` (a small random model of a family, built offline), a hub id or a
local folder (``load_vlm``)."""

from __future__ import annotations

from typing import Any

TINY_PREFIX = "tiny:"


def load_model(name: str, device: str = "auto", dtype: str = "auto",
               trust_remote_code: bool = False, device_map: str | None = None) -> Any:
    """Load the model a CLI name denotes (see module docstring) -> ``VLM``."""
    from .models import load_vlm, tiny_vlm

    if name.startswith(TINY_PREFIX):
        vlm = tiny_vlm(name[len(TINY_PREFIX):])
        return vlm.to(device=device, dtype=dtype) if (device, dtype) != ("auto", "auto") else vlm
    from .demo import DEMO_MODELS

    path = DEMO_MODELS.get(name, name)
    kwargs = {"device_map": device_map} if device_map else {}
    return load_vlm(str(path), device=device, dtype=dtype, trust_remote_code=trust_remote_code, **kwargs)


def describe_models() -> str:
    """Plain-text listing of the supported families and the bundled demo models."""
    from .demo import DEMO_MODELS
    from .models import FAMILIES

    lines = ["Supported families (any Hugging Face checkpoint of these; tiny:ARCH builds a small random one):"]
    for name, fam in FAMILIES.items():
        doc = getattr(fam, "description", "") or ""
        lines.append(f"  {name:18s} {doc}")
    lines.append("Bundled demo models:")
    for name, path in DEMO_MODELS.items():
        lines.append(f"  {name:18s} {path}")
    return "\n".join(lines)
