"""xai_bias: measure modality bias in multimodal LLMs.

Importing the package has no side effects and imports no heavy dependency; the public names
below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Sample": "types", "TokenRoles": "types", "Record": "types", "PromptView": "types", "ImageRef": "types", "MediaRef": "types",
    "ROLES": "types", "MODALITIES": "types", "CONDITIONS": "types",
    "load_vlm": "models", "tiny_vlm": "models", "VLM": "models", "FAMILIES": "models",
    "load_samples": "samples", "make_view": "conditions", "reduce_options": "options",
    "parse_choice": "answers",
    "TraceWriter": "store", "open_trace": "store", "merge_traces": "store",
    "estimate": "estimate", "Estimate": "estimate",
    "RunConfig": "run", "run_study": "run",
    "METHODS": "instruments", "MethodSettings": "instruments",
    "load_model": "resolve", "PROMPT_STYLES": "prompt_styles",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'xai_bias' has no attribute {name!r}")
