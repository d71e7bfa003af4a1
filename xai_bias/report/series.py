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
CHUNK = 64  # at most this many rows read at a time
MAX_GAP = 8  # rows between two wanted ones that are read rather than skipped


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
        elif len(shape) == 1 and len(attrs.get("groups") or ()) == shape[0]:
            s.kind = "groups"
            s.info = {"groups": [str(g) for g in attrs["groups"]]}
        elif len(shape) == 1 and L and shape[0] in (L, L + 1):
            s.kind = "layers"
            s.info = {"layer_offset": shape[0] - L}
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


def blocks(rows: np.ndarray) -> list[np.ndarray]:
    """Ascending ``rows`` cut into runs that are cheap to read as one slice (at most CHUNK rows
    long, gaps of at most MAX_GAP rows)."""
    out, cur = [], []
    for i in np.asarray(rows, dtype=np.int64):
        if cur and (i - cur[-1] > MAX_GAP or i - cur[0] >= CHUNK):
            out.append(np.array(cur))
            cur = []
        cur.append(int(i))
    if cur:
        out.append(np.array(cur))
    return out


def read_rows(trace: Any, name: str, rows: np.ndarray) -> list[Any]:
    """Rows ``rows`` (ascending) of one dataset, decoded like ``Trace.rows``, without reading the
    rows between distant ones."""
    out: list[Any] = []
    for idx in blocks(rows):
        lo = int(idx[0])
        block = trace.rows(name, lo, int(idx[-1]) + 1)
        out.extend(block[i - lo] for i in idx)
    return out


def record_rows(trace: Any, series: list[Series], rows: np.ndarray) -> dict[str, list[Any]]:
    """name -> one encoded row per index in ``rows`` (ascending; None where the record lacks it)."""
    n_opt = np.asarray(trace["records/n_options"]) if trace.has("records/n_options") else None
    out: dict[str, list[Any]] = {}
    for s in series:
        grids = read_rows(trace, MAP_GRID, rows) if s.kind == "map" else None
        enc = []
        for k, (i, row) in enumerate(zip(rows, read_rows(trace, s.name, rows))):
            row = np.asarray(row)
            if row.dtype.kind == "f" and row.size and not np.isfinite(row).any():
                enc.append(None)  # the record did not measure it
            elif s.kind == "roles":
                enc.append(_roles_row(row))
            elif s.kind == "letters":
                enc.append(_letters_row(row, int(n_opt[i]) if n_opt is not None else 0))
            elif s.kind == "map":
                enc.append(_map_row(row, grids[k]))
            elif s.kind == "scalar":
                enc.append(num(row) if row.dtype.kind == "f" else int(row))
            else:
                enc.append(floats(row))
        out[s.name] = enc
    return out
