"""Instruments (methods): attention mass, integrated gradients, Shapley, knockout, logit lens.

Captum is imported only by the attribution module, nnsight only by the intervention module,
and only when such a method is instantiated (importing xai_bias has no side effects).
"""

from __future__ import annotations

import importlib

from .base import METHODS, Method, MethodSettings, Target

_MODULES = ("attention", "attribution", "intervention")


def load_methods():
    """Import every instrument module (each registers its methods) and return ``METHODS``."""
    for name in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return METHODS


__all__ = ["METHODS", "Method", "MethodSettings", "Target", "load_methods"]
