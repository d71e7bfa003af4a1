"""User-facing errors: one clear message naming what and where, and a documented exit code.

Exit codes (documented in the README):
  0 success · 1 internal error (a bug: traceback shown) · 2 usage error (bad flag, unknown
  model / probe / method) · 3 bad input data (sample file, image) · 4 trace file error
  (unreadable, newer schema, wrong shape) · 5 output cannot be written · 130 interrupted.
"""

from __future__ import annotations


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
