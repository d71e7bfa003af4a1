"""merge_traces: concatenate traces of one model and one set of settings (shards, job arrays)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import OutputError, TraceError
from . import _files as F
from . import _schema as S
from .reader import Trace, open_trace
from .writer import TraceWriter, _ragged

#: Root attributes that describe one file rather than the study: kept per source in
#: ``merged_from``, not compared.
_PER_FILE = ("schema_version", "created", "xai_bias_version", S.N_RECORDS_ATTR, S.IN_PROGRESS_ATTR,
             S.PARTIAL_ATTR, "resumes", "merged_from")


def merge_traces(paths: Sequence[str | os.PathLike], out: str | os.PathLike, overwrite: bool = False,
                 attrs: Mapping[str, Any] | None = None, compression: str | None = None,
                 allow_partial: bool = False) -> Path:
    """Concatenate the records of ``paths`` (in that order) into a new trace ``out``.

    Refuses (TraceError naming the setting and the files) traces that differ in any root
    attribute that changes records (model, dtype, roles, layers, seed, ``settings`` key by key,
    ...; ``_schema.MERGE_FREE_KEYS`` lists those that may differ, such as the device, the
    command or the sample file), or whose instrument datasets differ in settings (dataset
    attributes), row shape or dtype; a record key (sample_id, condition, mode) present twice;
    and, unless ``allow_partial``, a source whose writer never closed it (``in_progress``: still
    running or killed) or whose run stopped before all its work items (``partial``) — the
    merged trace then keeps ``partial=True``. The result's root attributes are those all
    sources agree on, plus ``merged_from`` (each source's path, record count and provenance)
    and ``attrs`` (e.g. the merge command). Written to a temporary file that replaces ``out``
    only when complete (never while another process writes ``out``), so a failed merge leaves
    nothing behind. Returns the output path.
    """
    paths = [Path(p) for p in paths]
    out = Path(out)
    if not paths:
        raise TraceError("merge: no input traces given")
    resolved = {p.resolve() for p in paths}
    if out.resolve() in resolved:
        raise OutputError(f"{out}: the merge output must not be one of its inputs")
    if len(resolved) != len(paths):
        raise TraceError(f"merge: a trace is given twice in {[str(p) for p in paths]}")
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a directory, not a trace file path")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: file exists; pass --overwrite to replace it")
    F.refuse_if_held(out, "overwritten")

    traces: list[Trace] = []
    try:
        for p in paths:
            traces.append(open_trace(p))
        partial = _check_complete(traces, allow_partial)
        root, dataset_attrs = _check_compatible(traces)
        _check_duplicates(traces)
        merged_from = []
        for t in traces:
            entry = {"path": str(t.path), "n_records": t.n_records}
            entry.update({k: v for k, v in t.attrs.items()
                          if k not in (S.N_RECORDS_ATTR, S.IN_PROGRESS_ATTR, S.PARTIAL_ATTR) and k not in root})
            for flag in (S.IN_PROGRESS_ATTR, S.PARTIAL_ATTR):
                if t.attrs.get(flag):
                    entry[flag] = True
            merged_from.append(entry)
        root["merged_from"] = merged_from
        root[S.PARTIAL_ATTR] = partial
        root.update(dict(attrs or {}))

        try:
            with TraceWriter(out, root, overwrite=True, compression=compression, atomic=True) as w:
                for name, a in dataset_attrs.items():
                    if a:
                        w.set_dataset_attrs(name, **a)
                step = 512
                for t in traces:
                    for start in range(0, t.n_records, step):
                        w.extend(t.records(start, start + step))
        except OSError as e:
            raise OutputError(f"{out}: cannot write the merged trace ({e})") from None
    finally:
        for t in traces:
            t.close()
    return out


def _check_complete(traces: list[Trace], allow_partial: bool) -> bool:
    """True when a source is partial; without ``allow_partial`` such a source is refused."""
    partial = False
    for t in traces:
        if t.attrs.get(S.IN_PROGRESS_ATTR):
            why = "is in progress (its writer is still running, or was killed before it closed the file)"
        elif t.attrs.get(S.PARTIAL_ATTR):
            why = "is partial (its run stopped before all its work items were done)"
        else:
            continue
        if not allow_partial:
            raise TraceError(f"cannot merge: {t.path} {why}; resume that run first, or pass "
                             "--allow-partial to merge what it holds (the merged trace is then marked partial)")
        partial = True
    return partial


def _check_compatible(traces: list[Trace]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    first = traces[0]
    for t in traces[1:]:
        diffs = S.setting_differences(first.attrs, t.attrs, S.MERGE_FREE_KEYS)
        if diffs:
            raise TraceError("cannot merge: " + "; ".join(
                f"{key} differs: {S.show_value(a)} in {first.path}, {S.show_value(b)} in {t.path}"
                for key, a, b in diffs))
    # Study-level attributes all sources agree on.
    root: dict[str, Any] = {}
    for key, value in first.attrs.items():
        if key in _PER_FILE:
            continue
        if all(key in t.attrs and t.attrs[key] == value for t in traces[1:]):
            root[key] = value
    # Instrument datasets: same settings, row shape and dtype wherever present.
    seen: dict[str, tuple[Trace, dict[str, Any], tuple[int, ...], str]] = {}
    for t in traces:
        for name in t.measurement_names():
            a = t.dataset_attrs(name)
            shape = t.shape(name)[1:]
            dtype = str(t._dataset(name).dtype)
            if name not in seen:
                seen[name] = (t, a, shape, dtype)
                continue
            t0, a0, shape0, dtype0 = seen[name]
            if a != a0:
                keys = sorted(k for k in set(a) | set(a0) if a.get(k) != a0.get(k))
                raise TraceError(
                    f"cannot merge: settings of /{name} differ ({', '.join(keys)}): {t0.path} has "
                    f"{ {k: a0.get(k) for k in keys} }, {t.path} has { {k: a.get(k) for k in keys} }"
                )
            comparable = (shape[:-1], shape0[:-1]) if _ragged(dtype, shape) else (shape, shape0)
            if comparable[0] != comparable[1] or dtype != dtype0:
                raise TraceError(
                    f"cannot merge: /{name} rows differ: {t0.path} has {shape0} {dtype0}, "
                    f"{t.path} has {shape} {dtype}"
                )
    return root, {name: v[1] for name, v in seen.items()}


def _check_duplicates(traces: list[Trace]) -> None:
    where: dict[tuple[str, str, str], Path] = {}
    for t in traces:
        for key in t.keys():
            if key in where:
                other = where[key]
                place = f"twice in {t.path}" if other == t.path else f"in {other} and {t.path}"
                raise TraceError(
                    f"cannot merge: record (sample_id={key[0]!r}, condition={key[1]!r}, "
                    f"mode={key[2]!r}) is {place}"
                )
            where[key] = t.path
