"""Instruments (methods) as registered plug-ins: attention mass, integrated gradients, Shapley,
knockout, logit lens (and the estimator-only ablation). See ``base`` for the interface and
``catalog`` for the built-in registrations.

Captum is imported only by the integrated-gradients module (``ig``), nnsight only by the
intervention module, and only when such a method is built (importing xai_bias, listing methods
or parsing their flags imports neither, nor torch).
"""

from __future__ import annotations

from .base import (METHODS, UNITS, DatasetSpec, Method, MethodSettings, MethodSpec, NoSettings, Settings, Target,
                   dataset_spec, load_methods, register_method, runnable_methods, setting)

__all__ = ["METHODS", "UNITS", "DatasetSpec", "Method", "MethodSettings", "MethodSpec", "NoSettings", "Settings",
           "Target", "dataset_spec", "load_methods", "register_method", "runnable_methods", "setting"]
