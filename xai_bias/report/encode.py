"""Compact JSON encodings of arrays for the embedded report data (internal).

Floats keep 4 significant digits (NaN -> null, ±inf -> "inf"/"-inf" as in ``estimate_to_json``);
attention maps are quantised to 8 bits per layer (relative to the layer's maximum) and base64
encoded. The page is a viewer, so 4 digits are plenty; every number the estimator computed is
passed through ``estimate_to_json`` unchanged.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np


def num(x: float) -> Any:
    """One float: 4 significant digits; NaN -> None; ±inf -> "inf" / "-inf"."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.4g}")


def floats(a: Any) -> Any:
    """A float array as nested lists of ``num`` values (same nesting as the array)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return num(arr)
    return [floats(row) for row in arr] if arr.ndim > 1 else [num(x) for x in arr.tolist()]


def quantised_map(values: np.ndarray) -> dict[str, Any]:
    """``[L, n]`` non-negative values -> {"n": n, "max": [L], "sum": [L], "q": base64 uint8 [L*n]}
    where q = round(255 * value / max of its layer) (0 where the layer's max is not positive)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    mx = v.max(axis=1) if v.size else np.zeros(v.shape[0])
    scale = np.where(mx > 0, 255.0 / np.where(mx > 0, mx, 1.0), 0.0)
    q = np.clip(np.rint(v * scale[:, None]), 0, 255).astype(np.uint8)
    return {"n": int(v.shape[1]), "max": floats(mx), "sum": floats(v.sum(axis=1)),
            "q": base64.b64encode(q.tobytes()).decode("ascii")}


def dumps(obj: Any) -> str:
    """Compact JSON (no NaN allowed: the encoders above already mapped it)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def script_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: every ``<``, ``>`` and ``&`` is
    written as a unicode escape, so no sample text can close the element or open a comment."""
    return (dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
