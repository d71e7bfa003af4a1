"""User-facing errors: one clear message naming what and where, and a documented exit code.

Exit codes (documented in the README):
  0 success · 1 internal error (a bug: traceback shown) · 2 usage error (bad flag, unknown
  model / probe / method) · 3 bad input data (sample file, image) · 4 trace file error
  (unreadable, newer schema, wrong shape) · 5 output cannot be written (exists, disk full, ...)
  · 130 / 143 / 129 stopped by Ctrl-C / SIGTERM / SIGHUP (resume with --resume) · 141 the
  reader of stdout went away (``| head``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


class XaiBiasError(Exception):
    """Base class of errors caused by user input; the CLI prints the message, no traceback."""

    exit_code = 1


class UsageError(XaiBiasError):
    exit_code = 2


class UnknownNameError(UsageError):
    """An unknown entry of a registry (model family, probe, method, condition)."""


class SampleError(XaiBiasError):
    """A sample (or sample file line) is unusable. ``where`` names file:line and/or the id."""

    exit_code = 3

    def __init__(self, where: str, cause: str):
        self.where = where
        self.cause = cause
        super().__init__(f"{where}: {cause}")


class TraceError(XaiBiasError):
    exit_code = 4


class OutputError(XaiBiasError):
    exit_code = 5


def size_text(n: float) -> str:
    """Bytes as a short human text (``1.5 MiB``)."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def free_space(path: str | os.PathLike) -> int | None:
    """Free bytes on the device of ``path`` (or of its nearest existing folder)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p if p.is_dir() else p.parent).free
    except OSError:
        return None


_ERRNO = re.compile(r"errno\s*=\s*(\d+)")


def write_cause(path: str | os.PathLike, exc: BaseException) -> tuple[str, int | None]:
    """(the cause of a failed write with the device's free space, its errno). Reads the errno
    of an OSError or of HDF5's message ("errno = 28")."""
    code = getattr(exc, "errno", None)
    if code is None:
        m = _ERRNO.search(str(exc))
        code = int(m.group(1)) if m else None
    reason = os.strerror(code) if code else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    free = free_space(path)
    return (reason if free is None else f"{reason}; the device has {size_text(free)} free"), code


def write_error(path: str | os.PathLike, exc: BaseException, what: str = "write it") -> OutputError:
    """OutputError for a write that failed (disk full, no permission, ...), naming the path."""
    cause, _ = write_cause(path, exc)
    return OutputError(f"{path}: cannot {what} ({cause})")
