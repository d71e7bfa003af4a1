"""What a ``--resume`` may continue (internal): the output checks that run before a model
loads, the comparison of a run's provenance with the trace's, the rebuild of a trace whose
writer did not close it, and the causes of a refused resume."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import OutputError, TraceError
from . import _files as F
from . import _schema as S


def check_target(path: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> None:
    """Raise OutputError (TraceError for a resume the file refuses) when a trace cannot be
    written at ``path`` with these flags; writes nothing, so a run can check its output before
    it loads a model: a directory, a file in the way of its folder, an existing trace without
    ``resume`` / ``overwrite``, a read-only trace to resume, a trace another process writes."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a directory, not a trace file path")
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{p}: cannot write the trace file ({folder} is not a folder)")
    if not os.access(folder, os.W_OK | os.X_OK) and not (resume and p.exists()):
        raise OutputError(f"{p}: cannot write the trace file (no write permission in {folder})")
    if not p.exists():
        return
    if resume:
        if not os.access(p, os.R_OK | os.W_OK):
            raise OutputError(f"{p}: cannot resume: the file is read-only (no write permission); make it "
                              "writable or continue into a copy of it")
        if F.writer_holds(p):
            raise TraceError(f"{p}: cannot resume: the file is locked: another process has it open for "
                             "writing (is the run still going?)")
        return
    if not overwrite:
        raise OutputError(f"{p}: file exists; pass --resume to continue it or --overwrite to replace it")
    F.refuse_if_held(p, "overwritten")  # before anything is written (HDF5's "w" truncates first)


def check_resumable(path: Path, file_attrs: Mapping[str, Any], run_attrs: Mapping[str, Any]) -> None:
    """Raise TraceError naming every record-relevant setting in which a run (``run_attrs``, its
    provenance) differs from the trace it would continue (see ``_schema.RECORD_NEUTRAL_KEYS``)."""
    if "schema_version" not in file_attrs:
        raise TraceError(f"{path}: not an xai_bias trace (cannot resume it); choose another --out "
                         "or start again with --overwrite")
    if file_attrs["schema_version"] != S.SCHEMA_VERSION:
        raise TraceError(
            f"{path}: cannot resume: schema_version {file_attrs['schema_version']} of the file "
            f"differs from {S.SCHEMA_VERSION} of this xai_bias"
        )
    skip = ("schema_version",)
    diffs = S.setting_differences({k: v for k, v in file_attrs.items() if k not in skip},
                                  {k: v for k, v in run_attrs.items() if k not in skip})
    if diffs:
        lines = "\n".join(f"  {k}: {S.show_value(a)} (file) vs {S.show_value(b)} (this run)" for k, a, b in diffs)
        raise TraceError(
            f"{path}: cannot resume: this run would change what the trace's records mean; it differs "
            f"in {len(diffs)} setting(s):\n{lines}\nresume with the first run's settings, or write "
            "another --out (or --overwrite)"
        )


def rebuild(path: Path) -> None:
    """Rewrite a trace from its committed records into a fresh file that atomically replaces it
    (the reader sees past a superblock that a failed write left behind, see ``Trace``)."""
    try:
        _copy_committed(path, path)
    except TraceError as e:
        raise TraceError(f"{path}: cannot resume: the committed records are unreadable ({e})") from None
    except (OSError, ValueError) as e:
        raise TraceError(f"{path}: cannot resume: rebuilding the interrupted trace failed "
                         f"({F.open_error_cause(e)})") from None


def _copy_committed(src_path: Path, dest: Path) -> None:
    from .reader import open_trace
    from .writer import TraceWriter

    with open_trace(src_path) as src:
        attrs = dict(src.attrs)
        with TraceWriter(dest, attrs, overwrite=True, atomic=True) as w:
            for name in src.measurement_names():
                w.set_dataset_attrs(name, **src.dataset_attrs(name))
            step = 512
            for a in range(0, src.n_records, step):
                w.extend(src.records(a, a + step))
            keep = {k: v for k, v in attrs.items() if k not in (S.N_RECORDS_ATTR, S.IN_PROGRESS_ATTR)}
            S.encode_attrs(w._require_open().attrs, keep)


def resume_error(p: Path, e: BaseException) -> TraceError:
    cause = F.open_error_cause(e)
    if F.is_locked(e):
        return TraceError(f"{p}: cannot resume: {cause} (is the run still going?)")
    if "truncated" in cause:
        return TraceError(f"{p}: cannot resume: {cause}")
    return TraceError(f"{p}: cannot open the trace to resume ({cause}); the file may be damaged; "
                      "start again with --overwrite")
