"""Records -> one block of rows per dataset, and the low-level row write (internal)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from ..errors import TraceError
from ..types import Record
from . import _schema as S


def prepare_rows(records: list[Record], path: Path, roles: tuple[str, ...], done: set[tuple[str, str, str]],
                 datasets: Mapping[str, h5py.Dataset], f: h5py.File) -> dict[str, np.ndarray]:
    """Validate ``records`` (new keys, role counts, numeric measurements of the dataset's shape)
    and build one block of k rows per dataset; nothing is written."""
    k = len(records)
    n_roles = len(roles)
    seen = set()
    for r in records:
        if not isinstance(r, Record):
            raise TypeError(f"TraceWriter.append expects a Record, got {type(r).__name__}")
        if r.key in done or r.key in seen:
            raise TraceError(f"{path}: record {r.key} is already in the trace")
        seen.add(r.key)
    blocks: dict[str, np.ndarray] = {}
    for name in ("sample_id", "condition", "mode", "answer", "prediction", "status", "response"):
        blocks[f"records/{name}"] = np.array([str(getattr(r, name) or "") for r in records], dtype=object)
    blocks["records/correct"] = np.array([bool(r.correct) for r in records], dtype=np.bool_)
    blocks["records/meta"] = np.array([S.dumps(dict(r.meta)) for r in records], dtype=object)
    lps = [np.asarray(r.option_logprobs, dtype=np.float32).reshape(-1) for r in records]
    width = max(len(x) for x in lps)
    lp = np.full((k, width), np.nan, np.float32)
    for i, x in enumerate(lps):
        lp[i, : len(x)] = x
    blocks["records/option_logprobs"] = lp
    blocks["records/n_options"] = np.array([len(x) for x in lps], np.int32)
    rt = np.zeros((k, n_roles), np.int32)
    for i, r in enumerate(records):
        x = np.asarray(r.role_tokens).reshape(-1)
        if x.shape[0] != n_roles:
            raise TraceError(
                f"record {r.key}: role_tokens has {x.shape[0]} entries, the trace has "
                f"{n_roles} roles {list(roles)}"
            )
        rt[i] = x
    blocks["records/role_tokens"] = rt
    ids = np.empty(k, dtype=object)
    tr = np.empty(k, dtype=object)
    for i, r in enumerate(records):
        ids[i] = np.asarray(r.input_ids, dtype=np.int32).reshape(-1)
        tr[i] = np.asarray(r.token_roles, dtype=np.int8).reshape(-1)
    blocks["records/input_ids"] = ids
    blocks["records/token_roles"] = tr

    names = sorted({str(m).strip("/") for r in records for m in r.measurements})
    for name in names:
        if not name or name.startswith("records/") or name == "records":
            raise TraceError(f"record measurement name {name!r} is not allowed (reserved)")
        rows = [r.measurements.get(name) if name in r.measurements
                else r.measurements.get("/" + name) for r in records]
        arrays = [None if x is None else np.asarray(x) for x in rows]
        present = [a for a in arrays if a is not None]
        first = present[0]
        if first.dtype.kind not in "biuf":
            raise TraceError(f"measurement {name!r}: dtype {first.dtype} is not numeric")
        if name in datasets:
            ds = datasets[name]
            shape, dtype = tuple(ds.shape[1:]), ds.dtype
        elif name in f or any(n.startswith(name + "/") for n in datasets):
            raise TraceError(f"measurement {name!r} names a group in the trace")
        else:
            shape, dtype = tuple(first.shape), first.dtype
        if ragged(dtype, shape):  # e.g. [L, n_options]: the last axis grows, NaN-padded
            width = max([shape[-1]] + [a.shape[-1] for a in present if a.shape[:-1] == shape[:-1]])
            shape = (*shape[:-1], width)
        block = np.full((k, *shape), S.fill_value(dtype), dtype)
        for i, a in enumerate(arrays):
            if a is None:
                continue
            fits = tuple(a.shape) == shape or (
                ragged(dtype, shape) and a.shape[:-1] == shape[:-1] and a.shape[-1] <= shape[-1])
            if not fits:
                raise TraceError(
                    f"record {records[i].key}: measurement {name!r} has shape {tuple(a.shape)}, "
                    f"expected {shape}"
                )
            if a.ndim:
                block[i][..., : a.shape[-1]] = a
            else:
                block[i] = a
        blocks[name] = block
    return blocks



def ragged(dtype: np.dtype, row_shape: tuple[int, ...]) -> bool:
    """Float rows of 2+ axes may differ in their last axis (options per record, say): the
    dataset's last axis then grows to the widest row and shorter rows are NaN-padded."""
    return np.dtype(dtype).kind == "f" and len(row_shape) >= 2


def write_rows(ds: h5py.Dataset, start: int, block: np.ndarray) -> None:
    """Write rows [start, start+k) with one low-level write (h5py's __setitem__ costs more than
    the write itself, and reshapes equal-length variable-length rows into a 2-D array)."""
    k = len(block)
    shape = ds.shape
    fspace = ds.id.get_space()
    fspace.select_hyperslab((start,) + (0,) * (len(shape) - 1), (k, *shape[1:]))
    mspace = h5py.h5s.create_simple((k, *shape[1:]))
    if block.dtype == object:
        mtype = h5py.h5t.py_create(ds.dtype)
    else:
        block = np.ascontiguousarray(block)
        mtype = h5py.h5t.py_create(block.dtype)
    ds.id.write(mspace, fspace, block, mtype=mtype)
