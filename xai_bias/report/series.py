"""Which per-record measurement datasets the explorer shows, and how (internal).

Chosen by shape and schema, never by method name: a dataset with a role axis
(``store._schema.ROLE_AXES``) colours the prompt tokens; ``[L]`` / ``[L+1]`` rows are curves over
layers; ``[L, K]`` rows are one curve per answer letter; ``[G]`` rows with a ``groups``
attribute are bars; one number per record goes into a small table. The attention maps
(``/attention/maps`` + ``/attention/map_grid``) are the image overlay. Anything else is listed
as not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import Catalog
from .encode import floats, num, quantised_map

MAPS = "attention/maps"
MAP_GRID = "attention/map_grid"
ANSWER_ROW = "generation/answer_row"
CHUNK = 64  # records read at a time from wide datasets


@dataclass
class Series:
    """One dataset as the explorer shows it. kind: roles | layers | letters | groups | scalar | map."""

    name: str
    kind: str
    method: str
    shape: tuple[int, ...]  # row shape in the trace
    info: dict[str, Any] = field(default_factory=dict)  # kind-specific (layer offset, groups, reduced axes)
    attrs: dict[str, Any] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "method": self.method, "shape": list(self.shape),
                **self.info, "attrs": {k: v for k, v in self.attrs.items() if isinstance(v, (str, int, float, bool))}}


def classify(trace: Any, cat: Catalog) -> tuple[list[Series], list[str]]:
    """The series to show, and a note per dataset left out."""
    L = int(trace.attrs.get("n_layers") or 0)
    roles = list(trace.attrs.get("roles") or [])
    out, skipped = [], []
    for name in trace.measurement_names():
        if name == MAP_GRID:
            continue
        shape = tuple(trace.shape(name)[1:])
        attrs = dict(trace.dataset_attrs(name) or {})
        s = Series(name, "", cat.method_of(name), shape, attrs=attrs)
        if name == MAPS:
            if trace.has(MAP_GRID) and len(shape) == 2:
                s.kind = "map"
        elif name in cat.role_axes and len(shape) >= 2 and roles and shape[-1] == len(roles) \
                and cat.role_axes[name] == len(shape):
            s.kind = "roles"
            s.info = {"layer_offset": shape[0] - L if L else 0, "reduced": list(shape[1:-1])}
        elif len(shape) == 0:
            s.kind = "scalar"
        elif len(shape) == 1 and L and shape[0] in (L, L + 1):
            s.kind = "layers"
            s.info = {"layer_offset": shape[0] - L}
        elif len(shape) == 1 and len(attrs.get("groups") or ()) == shape[0]:
            s.kind = "groups"
            s.info = {"groups": [str(g) for g in attrs["groups"]]}
        elif len(shape) == 2 and L and shape[0] in (L, L + 1):
            s.kind = "letters"
            s.info = {"layer_offset": shape[0] - L}
        if s.kind:
            out.append(s)
        else:
            skipped.append(f"/{name} {list(shape)}")
    notes = [f"not shown per sample (no view for this shape): {', '.join(skipped)}"] if skipped else []
    return out, notes


def _roles_row(row: np.ndarray) -> Any:
    a = np.asarray(row, dtype=np.float64)
    while a.ndim > 2:  # average the axes between layers and roles (heads)
        a = a.mean(axis=1)
    return floats(a)


def _letters_row(row: np.ndarray, n_options: int) -> Any:
    a = np.asarray(row, dtype=np.float64)
    return floats(a[:, :n_options] if n_options else a)


def _map_row(row: np.ndarray, grid: np.ndarray) -> Any:
    a = np.asarray(row, dtype=np.float64)  # [L, width], NaN after the record's image tokens
    valid = np.isfinite(a).any(axis=0)
    if not valid.any():
        return None
    n = int(np.flatnonzero(valid)[-1]) + 1
    g = np.asarray(grid).reshape(-1, 2)
    grids = [[int(r), int(c)] for r, c in g if r > 0 and c > 0]
    return {**quantised_map(a[:, :n]), "grid": grids}


def record_rows(trace: Any, series: list[Series], rows: np.ndarray) -> dict[str, list[Any]]:
    """name -> one encoded row per index in ``rows`` (None where the record lacks it)."""
    n_opt = np.asarray(trace["records/n_options"]) if trace.has("records/n_options") else None
    out: dict[str, list[Any]] = {s.name: [] for s in series}
    for start in range(0, len(rows), CHUNK):
        idx = rows[start:start + CHUNK]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        for s in series:
            block = trace.rows(s.name, lo, hi)
            grid = trace.rows(MAP_GRID, lo, hi) if s.kind == "map" else None
            for i in idx:
                row = np.asarray(block[i - lo])
                if row.dtype.kind == "f" and row.size and not np.isfinite(row).any():
                    out[s.name].append(None)  # the record did not measure it
                elif s.kind == "roles":
                    out[s.name].append(_roles_row(row))
                elif s.kind == "letters":
                    out[s.name].append(_letters_row(row, int(n_opt[i]) if n_opt is not None else 0))
                elif s.kind == "map":
                    out[s.name].append(_map_row(row, grid[i - lo]))
                elif s.kind == "scalar":
                    out[s.name].append(num(row) if row.dtype.kind == "f" else int(row))
                else:
                    out[s.name].append(floats(row))
    return out
