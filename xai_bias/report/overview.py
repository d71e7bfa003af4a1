"""The overview's data for one trace: provenance, the estimator's ``Estimate`` (as
``estimate_to_json``) and the ablation study's Tables 1 and 2 (``consistency.report`` as JSON).
Nothing here computes a statistic: the estimator and the consistency module do (internal).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import XaiBiasError


def jsonable(value: Any) -> Any:
    """Attributes as plain JSON values (NaN -> None, numpy scalars and arrays -> Python)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def provenance(trace: Any) -> dict[str, Any]:
    path = Path(trace.path)
    attrs = jsonable(dict(trace.attrs))
    return {"path": str(path), "file": path.name, "bytes": path.stat().st_size, "n_records": trace.n_records,
            "attrs": attrs}


def overview(trace: Any, n_bootstrap: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """{"provenance", "estimate" (or None), "tables" (or None)} and notes on what is missing."""
    from .. import consistency as cons
    from ..estimate import estimate, estimate_to_json

    notes = []
    try:
        est = estimate_to_json(estimate(trace, n_bootstrap=n_bootstrap, seed=seed))
    except XaiBiasError as exc:  # e.g. a predictions-only trace: no measurement to estimate
        est = None
        notes.append(f"no modality estimate: {exc}")
    try:
        tables = json.loads(cons.report(cons.rows_from_trace(trace), fmt="json"))
    except XaiBiasError as exc:
        tables = None
        notes.append(f"no Tables 1 and 2: {exc}")
    return {"provenance": provenance(trace), "estimate": est, "tables": tables}, notes
