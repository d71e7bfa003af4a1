"""TraceWriter: append Records to a trace file, record by record, crash-safe (see package docstring)."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from ..errors import OutputError, TraceError
from ..types import ROLES, Record
from . import _schema as S


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("xai-bias")
    except Exception:  # not installed (source checkout)
        return "0+unknown"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class TraceWriter:
    """Write a trace file (HDF5, schema_version 1) one record at a time.

    ``with TraceWriter(path, attrs) as w: w.append(record)``. A new file refuses to replace an
    existing one unless ``overwrite``; ``resume=True`` continues an existing file (its
    ``model_id``, ``schema_version`` and ``roles`` must match ``attrs``) or starts a new one when
    the file is missing. ``done_keys()`` lists the (sample_id, condition, mode) already committed.

    A record's rows land in every dataset first; then the root attribute ``n_records`` is bumped
    and the file flushed. Rows beyond ``n_records`` (a crash in between) are ignored by readers
    and truncated on resume.
    """

    def __init__(self, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None,
                 resume: bool = False, overwrite: bool = False, compression: str | None = None):
        self.path = Path(path)
        if compression not in (None, "gzip", "lzf"):
            raise ValueError(f"compression must be None, 'gzip' or 'lzf', not {compression!r}")
        # Uncompressed by default: a compressed chunk moves in the file each time a record is
        # appended to it, and a process killed mid-flush can then leave committed rows pointing
        # at reused space. Uncompressed chunks are rewritten in place (committed bytes never
        # change), which keeps committed records intact after SIGKILL. Use compression for
        # files written in one go (merge output).
        self._compress: dict[str, Any] = (
            {} if compression is None else
            {"compression": "gzip", "compression_opts": 4} if compression == "gzip" else
            {"compression": "lzf"})
        self._attrs_in = dict(attrs or {})
        self._resume = bool(resume)
        self._overwrite = bool(overwrite)
        self._file: h5py.File | None = None
        self._n = 0
        self._done: set[tuple[str, str, str]] = set()
        self._pending_attrs: dict[str, dict[str, Any]] = {}
        self._ds: dict[str, h5py.Dataset] = {}
        self._ready = False  # True once opened and checked: only then may close() touch the file
        roles = self._attrs_in.get("roles", ROLES)
        self.roles: tuple[str, ...] = tuple(str(r) for r in roles)
        self._open()
        self._index()
        self._ready = True

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        p = self.path
        if p.exists() and p.is_dir():
            raise OutputError(f"{p}: is a directory, not a trace file path")
        if self._resume and p.exists():
            self._open_existing()
            return
        if p.exists() and not self._overwrite:
            raise OutputError(
                f"{p}: file exists; pass --resume to continue it or --overwrite to replace it"
            )
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(p, "w" if self._overwrite else "x")
        except (OSError, ValueError) as e:
            raise OutputError(f"{p}: cannot write the trace file ({_cause(e)})") from None
        try:
            self._init_new()
        except BaseException:
            self.close()
            raise

    def _init_new(self) -> None:
        f = self._file
        assert f is not None
        root = {
            "schema_version": S.SCHEMA_VERSION,
            "created": _now(),
            "xai_bias_version": _package_version(),
        }
        user = {k: v for k, v in self._attrs_in.items() if k not in root and k != S.N_RECORDS_ATTR}
        user["roles"] = list(self.roles)
        S.encode_attrs(f.attrs, {**root, **user})
        f.attrs[S.N_RECORDS_ATTR] = np.int64(0)
        f.attrs[S.IN_PROGRESS_ATTR] = np.bool_(True)
        g = f.create_group("records")
        n_roles = len(self.roles)
        for name, kind in S.RECORD_DATASETS.items():
            if kind in ("str", "json"):
                g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=S.STR, chunks=(1024,))
            elif kind == "bool":
                g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.bool_, chunks=(1024,),
                                 **self._compress)
            elif kind == "int32":
                g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1024,),
                                 **self._compress)
            elif kind == "logprobs":
                g.create_dataset(name, shape=(0, 0), maxshape=(None, None), dtype=np.float32,
                                 chunks=(512, 16), **self._compress,
                                 fillvalue=np.float32(np.nan))
            elif kind == "roles":
                g.create_dataset(name, shape=(0, n_roles), maxshape=(None, n_roles), dtype=np.int32,
                                 chunks=(1024, n_roles), **self._compress)
            elif kind == "vint32":
                g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=S.VLEN_INT32, chunks=(256,))
            elif kind == "vint8":
                g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=S.VLEN_INT8, chunks=(256,))
        f.flush()

    def _open_existing(self) -> None:
        p = self.path
        try:
            with h5py.File(p, "r") as f0:
                clean = not bool(f0.attrs.get(S.IN_PROGRESS_ATTR, True))
                attrs0 = S.decode_attrs(f0.attrs)
                has_records = "records" in f0
        except (OSError, ValueError) as e:
            raise _resume_error(p, e) from None
        self._check_compatible(attrs0, has_records)
        if not clean:
            # The last writer did not close the file (killed, power loss): HDF5 metadata written
            # after its last flush may be inconsistent. Rebuild the file from its committed
            # records instead of writing into it.
            _rebuild(p)
        try:
            f = h5py.File(p, "r+")
        except (OSError, ValueError) as e:
            raise _resume_error(p, e) from None
        self._file = f
        try:
            attrs = S.decode_attrs(f.attrs)
            self._check_compatible(attrs, "records" in f)
            n = int(attrs.get(S.N_RECORDS_ATTR, 0))
            # Drop rows of a record that was in flight when the previous run stopped.
            for name, ds in _walk(f):
                if ds.shape[0] > n:
                    ds.resize(n, axis=0)
                elif ds.shape[0] < n:
                    raise TraceError(
                        f"{p}: dataset /{name} has {ds.shape[0]} rows but the trace has {n} "
                        "committed records; the file is damaged"
                    )
            self._n = n
            g = f["records"]
            keys = zip(*(g[c].asstr()[:n].tolist() if n else [] for c in ("sample_id", "condition", "mode")))
            self._done = set(keys)
            resumes = attrs.get("resumes", [])
            resumes = list(resumes) if isinstance(resumes, list) else []
            resumes.append({"time": _now(), "n_records": n, "command": self._attrs_in.get("command"),
                            "after_crash": not clean})
            S.encode_attrs(f.attrs, {"resumes": resumes})
            f.attrs[S.IN_PROGRESS_ATTR] = np.bool_(True)
            f.flush()
        except BaseException:
            self.close()
            raise

    def _check_compatible(self, attrs: Mapping[str, Any], has_records: bool) -> None:
        p = self.path
        if "schema_version" not in attrs or not has_records:
            raise TraceError(f"{p}: not an xai_bias trace (cannot resume it); choose another --out "
                             "or start again with --overwrite")
        if attrs["schema_version"] != S.SCHEMA_VERSION:
            raise TraceError(
                f"{p}: cannot resume: schema_version {attrs['schema_version']} of the file "
                f"differs from {S.SCHEMA_VERSION} of this xai_bias"
            )
        for key in ("model_id", "roles"):
            if key == "roles":
                want: Any = list(self.roles)
            elif key in self._attrs_in:
                want = S.decode_roundtrip(self._attrs_in[key])
            else:
                continue
            have = attrs.get(key)
            if have != want:
                raise TraceError(
                    f"{p}: cannot resume: {key} of the file ({have!r}) differs from this "
                    f"run's ({want!r}); use another --out or --overwrite"
                )

    # ------------------------------------------------------------------ API
    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def n_records(self) -> int:
        return self._n

    def done_keys(self) -> set[tuple[str, str, str]]:
        """(sample_id, condition, mode) of the records already committed."""
        return set(self._done)

    def set_dataset_attrs(self, name: str, **attrs: Any) -> None:
        """Attach settings (steps, baseline, groups, ...) to dataset ``name`` (e.g. "attribution/ig").

        May be called before the dataset exists; the attributes are written when it is created.
        On a resumed file, settings that differ from those already stored raise TraceError.
        """
        name = name.strip("/")
        f = self._require_open()
        if name in self._ds:
            self._check_or_set_attrs(self._ds[name], name, attrs)
        elif name in f:
            raise TraceError(f"{self.path}: /{name} is a group, not a dataset")
        else:
            self._pending_attrs.setdefault(name, {}).update(attrs)

    def _check_or_set_attrs(self, ds: h5py.Dataset, name: str, attrs: Mapping[str, Any]) -> None:
        have = S.decode_attrs(ds.attrs)
        for k, v in attrs.items():
            if k in have and self._resume and have[k] != S.decode_roundtrip(v):
                raise TraceError(
                    f"{self.path}: cannot resume: setting {k!r} of /{name} is {have[k]!r} in the "
                    f"file but {v!r} in this run"
                )
        S.encode_attrs(ds.attrs, attrs)

    def append(self, record: Record) -> None:
        """Write one record (its /records row and every measurement) and commit it."""
        self.extend([record])

    def extend(self, records: Iterable[Record]) -> None:
        """Write several records and commit them together (one flush)."""
        records = list(records)
        if not records:
            return
        f = self._require_open()
        rows = self._prepare(records)
        n, k = self._n, len(records)
        try:
            for name, block in rows.items():
                ds = self._ds.get(name) or self._create(name, block)
                shape = ds.shape
                new_shape = (n + k, *shape[1:])
                if name == "records/option_logprobs" or _ragged(ds.dtype, shape[1:]):
                    width = max(shape[-1], block.shape[-1])
                    new_shape = (n + k, *shape[1:-1], width)
                    if block.shape[-1] < width:
                        full = np.full((k, *new_shape[1:]), np.nan, block.dtype)
                        full[..., : block.shape[-1]] = block
                        block = full
                if shape != new_shape:
                    if shape[0] > n:  # left-overs of a failed write: drop them first
                        ds.resize(n, axis=0)
                    ds.resize(new_shape)
                _write_rows(ds, n, block)
            # Datasets that none of these records has: fill rows so R stays aligned.
            for name, ds in self._ds.items():
                if name not in rows:
                    shape = ds.shape
                    if shape[0] > n:
                        ds.resize(n, axis=0)
                    ds.resize(n + k, axis=0)
                    ds[n : n + k] = np.full((k, *shape[1:]), S.fill_value(ds.dtype), ds.dtype)
        except BaseException:
            self._rollback()
            raise
        # Phase 1: every dataset's rows (data and metadata) reach the file; phase 2: the commit.
        f.flush()
        f.attrs[S.N_RECORDS_ATTR] = np.int64(n + k)
        f.flush()
        self._n = n + k
        self._done.update(r.key for r in records)

    def close(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        try:
            if self._ready and f.id.valid and f.mode != "r":
                self._truncate(f)
                f.flush()
                f.attrs[S.IN_PROGRESS_ATTR] = np.bool_(False)
                f.flush()
        finally:
            f.close()

    # ------------------------------------------------------------------ internals
    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise OutputError(f"{self.path}: trace writer is closed")
        return self._file

    def _rollback(self) -> None:
        f = self._file
        if f is None:
            return
        try:
            self._truncate(f)
        except Exception:
            pass

    def _truncate(self, f: h5py.File) -> None:
        for _, ds in _walk(f):
            if ds.shape[0] > self._n:
                ds.resize(self._n, axis=0)

    def _index(self) -> None:
        """Cache the dataset objects (h5py lookups are slow next to a row write)."""
        f = self._require_open()
        self._ds = dict(_walk(f))

    def _prepare(self, records: list[Record]) -> dict[str, np.ndarray]:
        """Validate the records and build one block of k rows per dataset (nothing written yet)."""
        k = len(records)
        n_roles = len(self.roles)
        seen = set()
        for r in records:
            if not isinstance(r, Record):
                raise TypeError(f"TraceWriter.append expects a Record, got {type(r).__name__}")
            if r.key in self._done or r.key in seen:
                raise TraceError(f"{self.path}: record {r.key} is already in the trace")
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
                    f"{n_roles} roles {list(self.roles)}"
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

        f = self._require_open()
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
            if name in self._ds:
                ds = self._ds[name]
                shape, dtype = tuple(ds.shape[1:]), ds.dtype
            elif name in f or any(n.startswith(name + "/") for n in self._ds):
                raise TraceError(f"measurement {name!r} names a group in the trace")
            else:
                shape, dtype = tuple(first.shape), first.dtype
            if _ragged(dtype, shape):  # e.g. [L, n_options]: the last axis grows, NaN-padded
                width = max([shape[-1]] + [a.shape[-1] for a in present if a.shape[:-1] == shape[:-1]])
                shape = (*shape[:-1], width)
            block = np.full((k, *shape), S.fill_value(dtype), dtype)
            for i, a in enumerate(arrays):
                if a is None:
                    continue
                fits = tuple(a.shape) == shape or (
                    _ragged(dtype, shape) and a.shape[:-1] == shape[:-1] and a.shape[-1] <= shape[-1])
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

    def _create(self, name: str, block: np.ndarray) -> h5py.Dataset:
        f = self._require_open()
        row_shape = tuple(block.shape[1:])
        dtype = block.dtype
        rows = S.chunk_rows(row_shape, dtype.itemsize)
        maxshape = (None, *row_shape[:-1], None) if _ragged(dtype, row_shape) else (None, *row_shape)
        ds = f.create_dataset(
            name, shape=(self._n, *row_shape), maxshape=maxshape, dtype=dtype,
            chunks=(rows, *row_shape), **self._compress,
            fillvalue=S.fill_value(dtype),
        )
        pending = self._pending_attrs.pop(name, None)
        if pending:
            S.encode_attrs(ds.attrs, pending)
        self._ds[name] = ds
        return ds


def _ragged(dtype: np.dtype, row_shape: tuple[int, ...]) -> bool:
    """Float rows of 2+ axes may differ in their last axis (options per record, say): the
    dataset's last axis then grows to the widest row and shorter rows are NaN-padded."""
    return np.dtype(dtype).kind == "f" and len(row_shape) >= 2


def _write_rows(ds: h5py.Dataset, start: int, block: np.ndarray) -> None:
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


def _rebuild(path: Path) -> None:
    """Rewrite a trace from its committed records into a fresh file, then atomically replace it."""
    from .reader import open_trace

    tmp = path.with_name(path.name + ".rebuild.tmp")
    try:
        with open_trace(path) as src:
            attrs = dict(src.attrs)
            with TraceWriter(tmp, attrs, overwrite=True) as w:
                for name in src.measurement_names():
                    w.set_dataset_attrs(name, **src.dataset_attrs(name))
                step = 512
                for a in range(0, src.n_records, step):
                    w.extend(src.records(a, a + step))
                keep = {k: v for k, v in attrs.items() if k not in (S.N_RECORDS_ATTR, S.IN_PROGRESS_ATTR)}
                f = w._require_open()
                S.encode_attrs(f.attrs, keep)
        os.replace(tmp, path)
    except TraceError as e:
        tmp.unlink(missing_ok=True)
        raise TraceError(f"{path}: cannot resume: the committed records are unreadable ({e})") from None
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise TraceError(f"{path}: cannot resume: rebuilding the interrupted trace failed ({_cause(e)})") from None


def _walk(f: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    out: list[tuple[str, h5py.Dataset]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out.append((name, obj))

    f.visititems(visit)
    return out


def _resume_error(p: Path, e: BaseException) -> TraceError:
    cause = _cause(e)
    if "locked" in cause:
        return TraceError(f"{p}: cannot resume: {cause} (is the run still going?)")
    return TraceError(f"{p}: cannot open the trace to resume ({cause}); the file may be damaged; "
                      "start again with --overwrite")


def _cause(e: BaseException) -> str:
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, PermissionError) or "ermission" in msg:
        return "permission denied"
    if "lock" in msg:
        return "the file is locked: another process has it open for writing"
    return msg
