"""Structural checks of a trace file before anything in it is read (internal; numpy + h5py).

A trace is data, not a pointer: links to other files, virtual datasets and external raw
storage are refused; every dataset's dtype must be the one its name stands for; declared
shapes and the record count must fit the bytes the file really stores (a crafted header cannot
make a reader allocate gigabytes). Each problem is a TraceError naming the file and dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import TraceError
from . import _schema as S

#: Deflate compresses at most about 1032:1; a dataset may not declare more bytes per stored
#: byte than that (plus a little slack for chunk overheads).
MAX_RATIO = 1100
SLACK_BYTES = 1 << 20


def datasets(f: h5py.File, p: Path) -> list[tuple[str, h5py.Dataset]]:
    """Every dataset by name, refusing soft and external links (walks links, not objects)."""
    out: list[tuple[str, h5py.Dataset]] = []

    def walk(group: h5py.Group, prefix: str) -> None:
        for key in group.keys():
            name = f"{prefix}{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise TraceError(f"{p}: /{name} is an external link (to {link.filename}:{link.path}); a trace "
                                 "must hold its data itself, refused")
            if isinstance(link, h5py.SoftLink):
                raise TraceError(f"{p}: /{name} is a soft link (to {link.path}); a trace holds no links, refused")
            obj = group[key]
            if isinstance(obj, h5py.Group):
                walk(obj, name + "/")
            elif isinstance(obj, h5py.Dataset):
                out.append((name, obj))

    walk(f, "")
    return out


def _file_type_size(ds: h5py.Dataset) -> int:
    return int(ds.id.get_type().get_size())


def check_dataset(p: Path, name: str, ds: h5py.Dataset, n: int, n_roles: int | None) -> None:
    """Refuse a dataset that points outside the file, has a dtype its name does not allow, a
    wrong shape, or declares more committed bytes than the file stores for it."""
    if ds.is_virtual:
        raise TraceError(f"{p}: /{name} is a virtual dataset (its data lives in other files); refused")
    if ds.external:
        raise TraceError(f"{p}: /{name} uses external storage (its bytes are read from "
                         f"{ds.external[0][0]!s}); a trace must hold its data itself, refused")
    _check_dtype(p, name, ds)
    if ds.ndim == 0:
        raise TraceError(f"{p}: dataset /{name} has the wrong shape {ds.shape} (no record axis)")
    if ds.shape[0] < n:
        raise TraceError(f"{p}: dataset /{name} has the wrong shape {ds.shape}: {ds.shape[0]} rows for "
                         f"{n} records")
    try:
        axis = S.role_axis(name, ds.attrs)
    except (TypeError, ValueError):
        raise TraceError(f"{p}: dataset /{name} has a role_axis attribute that is not an integer "
                         f"({ds.attrs.get('role_axis')!r})") from None
    if axis is not None and n_roles:
        if ds.ndim <= axis or ds.shape[axis] != n_roles:
            raise TraceError(f"{p}: dataset /{name} has the wrong shape {ds.shape}: its role axis {axis} "
                             f"should have {n_roles} entries")
    row_bytes = int(np.prod(ds.shape[1:], dtype=np.float64)) * _file_type_size(ds)
    declared = float(n) * row_bytes
    if declared > SLACK_BYTES:
        stored = ds.id.get_storage_size()
        if declared > MAX_RATIO * stored + SLACK_BYTES:
            raise TraceError(
                f"{p}: dataset /{name} declares {n} records of {row_bytes} bytes ({declared:.3g} bytes) "
                f"but the file stores {stored} bytes for it; the file is damaged or crafted, refused")


def _check_dtype(p: Path, name: str, ds: h5py.Dataset) -> None:
    dt = ds.dtype
    if dt.names is not None or dt.kind == "V":
        raise TraceError(f"{p}: dataset /{name} has a compound dtype {dt}; traces hold numbers and strings only")
    is_str = h5py.check_string_dtype(dt) is not None
    vlen = h5py.check_vlen_dtype(dt)
    short = name[len("records/"):] if name.startswith("records/") else None
    kind = S.RECORD_DATASETS.get(short) if short else None
    want: str | None = None
    if kind in ("str", "json"):
        ok, want = is_str, "utf-8 strings"
    elif kind == "bool":
        ok, want = dt.kind == "b", "booleans"
    elif kind in ("int32", "roles"):
        ok, want = dt.kind in "iu" and not is_str, "integers"
    elif kind == "logprobs":
        ok, want = dt.kind == "f" and ds.ndim == 2, "a 2-D float array"
    elif kind in ("vint32", "vint8"):
        ok, want = vlen is not None and not is_str and np.dtype(vlen).kind in "iu", "variable-length integers"
    else:  # an instrument's dataset (or a /records dataset of a later schema): numbers
        ok = (dt.kind in "biuf") or (short is not None and (is_str or vlen is not None))
        want = "numbers"
    if not ok:
        raise TraceError(f"{p}: dataset /{name} has dtype {_dtype_text(dt)}, expected {want}")


def _dtype_text(dt: np.dtype) -> str:
    if h5py.check_string_dtype(dt) is not None:
        return "string"
    vlen = h5py.check_vlen_dtype(dt)
    return f"variable-length {np.dtype(vlen)}" if vlen is not None else str(dt)


def decode_attrs(p: Path, where: str, attrs: Any) -> dict[str, Any]:
    """``S.decode_attrs`` with a TraceError naming the object and the attribute."""
    try:
        return S.decode_attrs(attrs)
    except S.AttrError as e:
        msg = f"{p}: {where} attribute {e.key!r} is not valid JSON ({e.cause}); the file is damaged"
        raise TraceError(msg) from None
    except (OSError, ValueError, TypeError) as e:
        raise TraceError(f"{p}: unreadable attributes of {where} ({e})") from None


def check_root(p: Path, attrs: dict[str, Any]) -> None:
    roles = attrs.get("roles")
    if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        raise TraceError(f"{p}: root attribute 'roles' is {roles!r}, not a list of role names")
