"""Model names the CLI accepts: ``demo`` / ``demo-biased`` / ``demo-balanced`` (the bundled
demo models), ``tiny:ARCH`` (a small random model of a family, built offline), a hub id or a
local folder (``load_vlm``)."""

from __future__ import annotations

from pathlib import Path
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
    if name not in DEMO_MODELS and "/" not in name and not Path(name).exists():
        # neither a bundled model, nor a local folder, nor an org/name hub id
        from .registry import Registry

        known: Registry = Registry("model")
        for key in (*DEMO_MODELS, *(f"{TINY_PREFIX}{f}" for f in _families())):
            known.register(key, key)
        known.get(name)
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


def _families() -> list[str]:
    from .models import FAMILIES

    return FAMILIES.names()
