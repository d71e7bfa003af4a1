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
from . import _files as F
from . import _schema as S
from ._resume import check_resumable, check_target, rebuild, resume_error
from ._rows import prepare_rows, ragged as _ragged, write_rows as _write_rows


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
    existing one unless ``overwrite``; ``resume=True`` continues an existing file (every
    record-relevant attribute of ``attrs`` must equal the file's, see
    ``_schema.RECORD_NEUTRAL_KEYS`` for those that may differ) or starts a new one when the file
    is missing. ``done_keys()`` lists the (sample_id, condition, mode) already committed.

    A new file is written under a temporary name in the same folder and replaces ``path`` at its
    first committed record (``atomic=True``: only when closed cleanly), never while another
    process holds ``path`` open for writing; a writer that fails before that leaves ``path`` as it
    was. A record's rows land in every dataset first; then the root attribute ``n_records`` is
    bumped and the file flushed. Rows beyond ``n_records`` (a crash in between) are ignored by
    readers and truncated on resume. A failed write (disk full, ...) raises OutputError and
    leaves the file marked in progress, so that a resume rebuilds it from its committed records.
    """

    def __init__(self, path: str | os.PathLike, attrs: Mapping[str, Any] | None = None,
                 resume: bool = False, overwrite: bool = False, compression: str | None = None,
                 atomic: bool = False):
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
        # Fixed-size chunks carry a fletcher32 checksum (HDF5 cannot filter variable-length data).
        # A checksummed chunk keeps its size, so it is still rewritten in place.
        self._compress["fletcher32"] = True
        self._attrs_in = dict(attrs or {})
        self._resume = bool(resume)
        self._overwrite = bool(overwrite)
        self._atomic = bool(atomic)
        self._tmp: Path | None = None  # a new file's temporary name until it is published
        self._failed = False  # a write failed: the file is left marked in progress
        self._file: h5py.File | None = None
        self._n = 0
        self._done: set[tuple[str, str, str]] = set()
        self._pending_attrs: dict[str, dict[str, Any]] = {}
        self._ds: dict[str, h5py.Dataset] = {}
        self._chunking: dict[str, tuple[int, int]] = {}  # name -> (rows per chunk, bytes per chunk)
        self._ready = False  # True once opened and checked: only then may close() touch the file
        roles = self._attrs_in.get("roles", ROLES)
        self.roles: tuple[str, ...] = tuple(str(r) for r in roles)
        self._open()
        self._index()
        self._ready = True

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        p = self.path
        check_target(p, resume=self._resume, overwrite=self._overwrite)
        if self._resume and p.exists():
            self._open_existing()
            return
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            F.remove_stale_temps(p)
            self._tmp = F.temp_path(p)
            self._file = h5py.File(self._tmp, "x")
        except (OSError, ValueError) as e:
            self._tmp = None
            raise OutputError(f"{p}: cannot write the trace file ({F.open_error_cause(e)})") from None
        try:
            self._init_new()
        except BaseException:
            self._discard()
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
            if not (F.is_truncated(e) or F.is_eoa_error(e)):
                raise resume_error(p, e) from None
            # a write that failed midway left the file shorter than its metadata claims: the
            # reader sees past that when the file is marked in progress (else it is truncated)
            from .reader import open_trace

            try:
                with open_trace(p) as t0:
                    attrs0, clean, has_records = dict(t0.attrs), False, True
            except TraceError:
                raise resume_error(p, e) from None
        self._check_compatible(attrs0, has_records)
        if not clean:
            # The last writer did not close the file (killed, power loss): HDF5 metadata written
            # after its last flush may be inconsistent. Rebuild the file from its committed
            # records instead of writing into it.
            rebuild(p)
        try:
            f = h5py.File(p, "r+")
        except (OSError, ValueError) as e:
            raise resume_error(p, e) from None
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
            entry = {"time": _now(), "n_records": n, "command": self._attrs_in.get("command"),
                     "after_crash": not clean}
            changed = S.neutral_differences(attrs, self._attrs_in)
            if changed:
                entry["changed"] = changed
            resumes.append(entry)
            S.encode_attrs(f.attrs, {"resumes": resumes})
            f.attrs[S.IN_PROGRESS_ATTR] = np.bool_(True)
            f.flush()
        except BaseException:
            self._close(error=True)
            raise

    def _check_compatible(self, attrs: Mapping[str, Any], has_records: bool) -> None:
        if not has_records:
            raise TraceError(f"{self.path}: not an xai_bias trace (cannot resume it); choose another --out "
                             "or start again with --overwrite")
        check_resumable(self.path, attrs, {**self._attrs_in, "roles": list(self.roles)})

    # ------------------------------------------------------------------ API
    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._close(error=exc_type is not None)

    @property
    def n_records(self) -> int:
        return self._n

    def done_keys(self) -> set[tuple[str, str, str]]:
        """(sample_id, condition, mode) of the records already committed."""
        return set(self._done)

    def set_attrs(self, **attrs: Any) -> None:
        """Set root attributes (e.g. ``partial``); never ``n_records`` (that is the commit)."""
        if S.N_RECORDS_ATTR in attrs:
            raise ValueError(f"{S.N_RECORDS_ATTR} is set by the commit, not by set_attrs")
        f = self._require_open()
        try:
            S.encode_attrs(f.attrs, attrs)
        except (OSError, RuntimeError) as e:
            self._failed = True
            raise F.write_error(self.path, e, 0, self._n) from None

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
        """Write several records and commit them together (one flush).

        Before writing, the free space of the device is checked against what the records need;
        a write that fails anyway (disk full, file size limit, I/O error) raises OutputError, the
        committed records stay, and the writer refuses further records."""
        records = list(records)
        if not records:
            return
        f = self._require_open()
        if self._failed:
            raise OutputError(f"{self.path}: an earlier write to this trace failed; continue with --resume")
        rows = self._prepare(records)
        n, k = self._n, len(records)
        needed = self._bytes_needed(rows, n, k)
        F.check_free_space(self.path, self._tmp or self.path, needed, n, self._atomic)
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
            # Phase 1: every dataset's rows (data and metadata) reach the file; phase 2: the commit.
            f.flush()
            f.attrs[S.N_RECORDS_ATTR] = np.int64(n + k)
            f.flush()
        except (OSError, RuntimeError) as e:  # the file system refused a write
            self._failed = True
            raise F.write_error(self.path, e, needed, n, self._atomic) from None
        except BaseException:
            self._rollback()
            raise
        self._n = n + k
        self._done.update(r.key for r in records)
        if self._tmp is not None and not self._atomic:
            self._publish()

    def close(self) -> None:
        """Commit nothing more; mark the file closed cleanly (a new one replaces ``path`` now)."""
        self._close(error=False)

    def _close(self, error: bool) -> None:
        """``error``: an exception is in flight. A new file that never got a record (or an
        atomic one) is then discarded; otherwise errors of the close itself are not raised over
        it. A writer whose write failed leaves the file marked in progress."""
        f, self._file = self._file, None
        if f is None:
            return
        if self._tmp is not None and (error or self._failed or not self._ready):
            self._discard(f)
            return
        failure: BaseException | None = None
        try:
            if self._ready and not self._failed and f.id.valid and f.mode != "r":
                self._truncate(f)
                f.flush()
                f.attrs[S.IN_PROGRESS_ATTR] = np.bool_(False)
                f.flush()
                if self._tmp is not None:
                    self._publish()
        except (OSError, RuntimeError) as e:
            failure = F.write_error(self.path, e, 0, self._n, self._atomic)
        except OutputError as e:  # publishing was refused
            failure = e
        finally:
            try:
                f.close()
            except Exception as e:  # noqa: BLE001 - HDF5 after a failed write
                F.note_unclosed(self.path)
                failure = failure or F.write_error(self.path, e, 0, self._n, self._atomic)
            if self._tmp is not None:  # not published: nothing of it may stay
                self._tmp.unlink(missing_ok=True)
                self._tmp = None
        if failure is not None and not error:
            raise failure

    # ------------------------------------------------------------------ internals
    def _publish(self) -> None:
        """Replace ``path`` by the new file (still open, so a second writer finds it locked)."""
        assert self._tmp is not None
        F.publish(self._tmp, self.path)
        self._tmp = None

    def _discard(self, f: h5py.File | None = None) -> None:
        f = f or self._file
        self._file = None
        if f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001 - the file is removed anyway
                F.note_unclosed(self._tmp or self.path)
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise OutputError(f"{self.path}: trace writer is closed")
        return self._file

    def _bytes_needed(self, rows: Mapping[str, np.ndarray], n: int, k: int) -> int:
        """About how many bytes committing rows [n, n+k) adds to the file: the rows, their
        variable-length payload, chunks allocated for them, and room for metadata."""
        need = 64 * 1024
        for name, block in rows.items():
            if block.dtype == object:  # strings are ~1 byte a character, arrays their nbytes
                need += sum(len(x) if isinstance(x, str) else x.nbytes for x in block.reshape(-1)) + 32 * block.size
            else:
                need += block.nbytes
            if name not in self._chunking:
                ds = self._ds.get(name)
                itemsize = 16 if block.dtype == object else block.dtype.itemsize
                if ds is None or ds.chunks is None:  # created by this commit: its first chunk
                    need += S.chunk_rows(block.shape[1:], itemsize) * int(np.prod(block.shape[1:])) * itemsize
                    continue
                self._chunking[name] = (ds.chunks[0], int(np.prod(ds.chunks)) * max(itemsize, 1))
            rows_per, chunk_bytes = self._chunking[name]
            need += (-(-(n + k) // rows_per) - (-(-n // rows_per))) * chunk_bytes
        return need

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
        return prepare_rows(records, self.path, self.roles, self._done, self._ds, self._require_open())

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
        # rows of the records before it: written (not left to the fill value), so that every
        # committed row has stored bytes (the reader checks declared sizes against the file)
        step = max(1, rows * 8)
        for a in range(0, self._n, step):
            b = min(self._n, a + step)
            ds[a:b] = np.full((b - a, *row_shape), S.fill_value(dtype), dtype)
        pending = self._pending_attrs.pop(name, None)
        if pending:
            S.encode_attrs(ds.attrs, pending)
        self._ds[name] = ds
        return ds


def _walk(f: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    out: list[tuple[str, h5py.Dataset]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out.append((name, obj))

    f.visititems(visit)
    return out
