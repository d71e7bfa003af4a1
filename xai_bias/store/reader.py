"""open_trace / Trace: read a trace file (see the package docstring for the schema)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import TraceError
from ..types import Record
from . import _checks as C
from . import _files as F
from . import _schema as S


def open_trace(path: str | os.PathLike) -> "Trace":
    """Open a trace file for reading (validates it; raises TraceError naming the path and cause)."""
    return Trace(path)


class Trace:
    """A trace file opened for reading; only the ``n_records`` committed rows are visible.

    Columns are read lazily and cached. Use as a context manager or call ``close()``; the file
    handle is also released when the object is garbage-collected.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        p = self.path
        if not p.exists():
            raise TraceError(f"{p}: no such trace file")
        if p.is_dir():
            raise TraceError(f"{p}: is a directory, not a trace file")
        self._through: F.EndAtFileSize | None = None  # see _see_past_the_recorded_end
        try:
            f = _open_readonly(p)
        except (OSError, ValueError) as e:
            # a file whose last write failed (marked in progress) may end before the space its
            # metadata claims; a cleanly closed file that does is truncated (a copy cut short)
            f = self._see_past_the_recorded_end() if F.is_eoa_error(e) or F.is_truncated(e) else None
            if f is not None and not bool(f.attrs.get(S.IN_PROGRESS_ATTR, False)):
                f.close()
                self._through.close()
                f = self._through = None
            if f is None:
                cause = F.open_error_cause(e)
                if "truncated" in cause:
                    raise TraceError(f"{p}: {cause}") from None
                raise TraceError(f"{p}: not an HDF5 file or unreadable ({cause})") from None
        self._file: h5py.File | None = f
        self._cache: dict[str, Any] = {}
        try:
            self._validate()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        f = self._h5
        p = self.path
        attrs = C.decode_attrs(p, "the root", f.attrs)
        if "schema_version" not in attrs or "records" not in f:
            raise TraceError(f"{p}: not an xai_bias trace (no schema_version attribute or no /records group)")
        version = attrs["schema_version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise TraceError(f"{p}: not an xai_bias trace (schema_version is {version!r})")
        if version > S.SCHEMA_VERSION:
            raise TraceError(
                f"{p}: written by a newer xai_bias (schema_version {version}; this version reads "
                f"up to {S.SCHEMA_VERSION}); upgrade xai_bias"
            )
        if version < 1:
            raise TraceError(f"{p}: unsupported schema_version {version}")
        n = attrs.get(S.N_RECORDS_ATTR)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise TraceError(f"{p}: not an xai_bias trace (n_records attribute missing or invalid: {n!r})")
        C.check_root(p, attrs)
        self.attrs: dict[str, Any] = attrs
        self.n_records: int = n
        self.roles: tuple[str, ...] = tuple(attrs.get("roles") or ())
        # written by a writer that has not closed it (running, or killed): the chunk of the
        # record in flight may be half rewritten (see _read)
        self._live = bool(attrs.get(S.IN_PROGRESS_ATTR, False))
        found = dict(C.datasets(f, p))
        for name in S.REQUIRED_RECORD_DATASETS:
            if f"records/{name}" not in found:
                raise TraceError(f"{p}: not a complete xai_bias trace (dataset /records/{name} is missing)")
        self._names = sorted(found, key=lambda s: (not s.startswith("records/"), s))
        self._dataset_attrs: dict[str, dict[str, Any]] = {}
        for name in self._names:
            ds = found[name]
            C.check_dataset(p, name, ds, n, len(self.roles))
            self._dataset_attrs[name] = C.decode_attrs(p, f"dataset /{name}", ds.attrs)

    # ------------------------------------------------------------------ API
    @property
    def _h5(self) -> h5py.File:
        if self._file is None:
            raise TraceError(f"{self.path}: trace is closed")
        return self._file

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except Exception:
                pass
        through, self._through = self._through, None
        if through is not None:
            through.close()

    def _see_past_the_recorded_end(self) -> h5py.File | None:
        """Reopen through ``_files.EndAtFileSize`` (a write that failed midway left metadata
        beyond the end of space the superblock records); None when that does not apply."""
        if self._through is not None:
            return None
        try:
            self._through = F.EndAtFileSize(self.path)
            return h5py.File(self._through, "r")
        except (OSError, ValueError):
            if self._through is not None:
                self._through.close()
                self._through = None
            return None

    def __del__(self) -> None:  # pragma: no cover - GC timing
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return self.n_records

    def __repr__(self) -> str:
        return f"Trace({str(self.path)!r}, n_records={self.n_records}, model_id={self.attrs.get('model_id')!r})"

    def datasets(self) -> list[str]:
        """Dataset names ("records/condition", "attention/mass", ...), records first."""
        return list(self._names)

    def measurement_names(self) -> list[str]:
        """Names of the instrument datasets (everything outside /records)."""
        return [n for n in self._names if not n.startswith("records/")]

    def has(self, name: str) -> bool:
        return _norm(name) in self._names

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of a dataset as readers see it (first dim = n_records)."""
        ds = self._dataset(name)
        return (self.n_records, *ds.shape[1:])

    def dataset_attrs(self, name: str) -> dict[str, Any]:
        self._dataset(name)
        return dict(self._dataset_attrs[_norm(name)])

    def __getitem__(self, name: str) -> Any:
        return self.column(name)

    def __contains__(self, name: str) -> bool:
        return self.has(name)

    def column(self, name: str) -> Any:
        """The first n_records rows of a dataset.

        utf-8 strings -> np.ndarray of str; "records/meta" -> list of dicts; variable-length
        datasets -> list of arrays; numeric -> np.ndarray [R, ...]. Cached; do not modify.
        """
        name = _norm(name)
        if name in self._cache:
            return self._cache[name]
        value = self._read(name, 0, self.n_records)
        self._cache[name] = value
        return value

    def rows(self, name: str, start: int, stop: int) -> Any:
        """Rows [start, stop) of a dataset, decoded like ``column`` (not cached)."""
        name = _norm(name)
        start, stop, _ = slice(start, stop).indices(self.n_records)
        if name in self._cache:
            c = self._cache[name]
            return c[start:stop]
        return self._read(name, start, stop)

    def find(self, sample_id: str | None = None, condition: str | None = None,
             mode: str | None = None) -> np.ndarray:
        """Indices of the records matching every given field."""
        mask = np.ones(self.n_records, bool)
        for field_, want in (("sample_id", sample_id), ("condition", condition), ("mode", mode)):
            if want is not None:
                mask &= self.column(f"records/{field_}") == str(want)
        return np.flatnonzero(mask)

    def keys(self) -> list[tuple[str, str, str]]:
        """(sample_id, condition, mode) of every record, in order."""
        return list(zip(self.column("records/sample_id").tolist(), self.column("records/condition").tolist(),
                        self.column("records/mode").tolist()))

    def record(self, i: int) -> Record:
        """Record ``i`` with ``measurements`` filled from every dataset outside /records.

        A float row that is all NaN (the record did not have that measurement) is left out.
        """
        n = self.n_records
        if not -n <= i < n:
            raise IndexError(f"record {i} out of range: the trace has {n} records")
        i = int(i) % n
        return self.records(i, i + 1)[0]

    def records(self, start: int = 0, stop: int | None = None) -> list[Record]:
        """Records [start, stop) (reads every dataset's rows in one slice each)."""
        start, stop, _ = slice(start, stop).indices(self.n_records)
        k = stop - start
        if k <= 0:
            return []
        col = {name: self.column(f"records/{name}")[start:stop]
               for name in ("sample_id", "condition", "mode", "answer", "prediction", "correct", "status")}
        lp = self.column("records/option_logprobs")[start:stop]
        n_opt = self.column("records/n_options")[start:stop] if self.has("records/n_options") else None
        rt = self.column("records/role_tokens")[start:stop]
        meta = self.column("records/meta")[start:stop]
        ids = self.column("records/input_ids")[start:stop]
        tr = self.column("records/token_roles")[start:stop]
        resp = self.column("records/response")[start:stop] if self.has("records/response") else [""] * k
        meas = {name: self.rows(name, start, stop) for name in self.measurement_names()}
        out = []
        for j in range(k):
            row = lp[j]
            if n_opt is not None:
                row = row[: int(n_opt[j])]
            else:  # strip NaN padding
                finite = np.flatnonzero(~np.isnan(row))
                row = row[: finite[-1] + 1] if finite.size else row[:0]
            out.append(Record(
                sample_id=str(col["sample_id"][j]), condition=str(col["condition"][j]),
                mode=str(col["mode"][j]), answer=str(col["answer"][j]),
                prediction=str(col["prediction"][j]), correct=bool(col["correct"][j]),
                status=str(col["status"][j]), option_logprobs=np.array(row, np.float32),
                role_tokens=np.array(rt[j], np.int32), meta=meta[j],
                input_ids=np.asarray(ids[j], np.int32), token_roles=np.asarray(tr[j], np.int8),
                response=str(resp[j]),
                measurements={name: np.array(v[j]) for name, v in meas.items() if not _absent(v[j])},
            ))
        return out

    # ------------------------------------------------------------------ internals
    def _dataset(self, name: str) -> h5py.Dataset:
        name = _norm(name)
        if name not in self._names:
            raise KeyError(f"{self.path}: no dataset {name!r}; it has {self._names}")
        return self._h5[name]

    def _read(self, name: str, start: int, stop: int) -> Any:
        ds = self._dataset(name)
        try:
            if h5py.check_string_dtype(ds.dtype) is not None:
                raw = ds.asstr()[start:stop] if stop > start else np.zeros(0, object)
                if name == "records/meta":
                    return [self._meta_row(s, start + i) for i, s in enumerate(raw.tolist())]
                return np.array(raw.tolist(), dtype=str) if len(raw) else np.zeros(0, dtype=str)
            if h5py.check_vlen_dtype(ds.dtype) is not None:
                raw = ds[start:stop] if stop > start else []
                return list(raw)
            return self._read_checked(ds, name, start, stop)
        except (OSError, ValueError) as e:
            if F.is_eoa_error(e) and self._live and self._through is None:
                f = self._see_past_the_recorded_end()
                if f is not None:
                    old, self._file = self._file, f
                    old.close()
                    return self._read(name, start, stop)
            raise TraceError(f"{self.path}: cannot read dataset /{name} ({e})") from None

    def _meta_row(self, text: str, i: int) -> dict:
        try:
            value = json.loads(text) if text else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise TraceError(f"{self.path}: /records/meta row {i} is not a JSON object ({text[:60]!r}); "
                             "the file is damaged")
        return value

    def _read_checked(self, ds: h5py.Dataset, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a numeric dataset; a chunk that fails its fletcher32 checksum is
        reported, except the one chunk a live (or killed) writer was rewriting: its committed rows
        are rewritten byte for byte, so they are read without the checksum."""
        try:
            return ds[start:stop]
        except OSError as e:
            if not (ds.fletcher32 and "filter returned failure" in str(e)):
                raise
        rows = ds.chunks[0]
        parts = []
        for a in range(start - start % rows, stop, rows):
            lo, hi = max(a, start), min(a + rows, stop)
            try:
                parts.append(ds[lo:hi])
                continue
            except OSError as e:
                if "filter returned failure" not in str(e):
                    raise
            if not (self._live and a + rows > self.n_records and ds.compression is None):
                raise TraceError(
                    f"{self.path}: dataset /{name}: the chunk of rows {a}-{a + rows - 1} fails its checksum "
                    "(fletcher32): the file is damaged; its other rows are readable") from None
            parts.append(_unchecked_rows(ds, a, lo, hi))
        return np.concatenate(parts) if parts else ds[start:start]

def _unchecked_rows(ds: h5py.Dataset, chunk_start: int, lo: int, hi: int) -> np.ndarray:
    """Rows [lo, hi) of the chunk(s) starting at row ``chunk_start``, from their raw bytes
    (fletcher32 appends its 4-byte checksum; no other filter)."""
    import itertools

    out = np.empty((hi - lo, *ds.shape[1:]), ds.dtype)
    for offs in itertools.product(*(range(0, s, c) for s, c in zip(ds.shape[1:], ds.chunks[1:]))):
        _, raw = ds.id.read_direct_chunk((chunk_start, *offs))
        block = np.frombuffer(raw[:-4], dtype=ds.dtype).reshape(ds.chunks)
        region = tuple(slice(o, min(o + c, s)) for o, c, s in zip(offs, ds.chunks[1:], ds.shape[1:]))
        out[(slice(None), *region)] = block[(slice(lo - chunk_start, hi - chunk_start),
                                             *(slice(0, r.stop - r.start) for r in region))]
    return out


def _open_readonly(p: Path) -> h5py.File:
    # Default file locking first (HDF5 refuses to open one file twice in a process with
    # different locking flags); if another process holds the write lock (a run still writing
    # this trace), read it without locking: only committed (flushed) records are used.
    try:
        return h5py.File(p, "r")
    except OSError as e:
        if not F.is_locked(e):
            raise
    try:
        return h5py.File(p, "r", locking=False)
    except TypeError:  # h5py without the locking argument
        raise OSError("the file is locked by another process") from None


def _absent(row: np.ndarray) -> bool:
    """A float row that is all NaN: the record did not have this measurement."""
    row = np.asarray(row)
    return row.dtype.kind == "f" and row.size > 0 and bool(np.isnan(row).all())


def _norm(name: str) -> str:
    return str(name).strip("/")
