"""File-level safety of trace files (internal): locks, temporary files, atomic replacement,
free space, the causes of HDF5's errors, and the repair of a file whose write failed.

Only the standard library. HDF5 (1.10+) holds an exclusive ``flock`` on a
file open for writing and a shared one on a file open for reading; a writer is detected by a
shared lock that cannot be taken. With ``HDF5_USE_FILE_LOCKING=FALSE`` nothing can be detected.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import secrets
import struct
from pathlib import Path

from ..errors import OutputError, free_space, size_text, write_cause

try:
    import fcntl
except ImportError:  # not POSIX: HDF5's locks cannot be probed there
    fcntl = None  # type: ignore[assignment]

#: Bytes kept free on the device besides what a commit needs, so that the file can still be
#: closed cleanly when the disk is about to fill.
RESERVE_BYTES = 256 * 1024


def writer_holds(path: Path) -> bool:
    """True when another open handle (any process) holds ``path`` for writing (HDF5's lock)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (_errno.EWOULDBLOCK, _errno.EAGAIN, _errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def refuse_if_held(path: Path, action: str) -> None:
    """Raise OutputError when another process writes ``path`` (``action``: what was refused)."""
    if path.exists() and writer_holds(path):
        raise OutputError(f"{path}: not {action}: another process has it open for writing (is a run "
                          "still writing it?); nothing was changed")


def temp_path(target: Path) -> Path:
    """A fresh temporary name next to ``target`` (same file system, so replacing is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def remove_stale_temps(target: Path) -> None:
    """Remove temporary files of ``target`` that no process holds (left by a killed writer
    before its first record)."""
    head = f".{target.name}."
    try:
        names = [p for p in target.parent.iterdir() if p.name.startswith(head) and p.name.endswith(".tmp")]
    except OSError:
        return
    for p in names:
        if not writer_holds(p):
            try:
                p.unlink()
            except OSError:
                pass


_UNCLOSED: list[str] = []


def note_unclosed(path: Path) -> None:
    """Record that HDF5 failed to close ``path`` (after a failed write): its library shutdown
    at interpreter exit would then crash (SIGSEGV), see ``exit_now_if_unclosed``."""
    _UNCLOSED.append(str(path))


def exit_now_if_unclosed(code: int) -> None:
    """End the process with ``code`` without HDF5's shutdown when a file could not be closed
    (the committed records are on disk already; the shutdown would only crash)."""
    if _UNCLOSED:
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - exiting anyway
                pass
        os._exit(code)


def publish(tmp: Path, target: Path) -> None:
    """Atomically replace ``target`` by ``tmp``, unless another process writes ``target``."""
    refuse_if_held(target, "replaced")
    os.replace(tmp, target)


# ---------------------------------------------------------------------------- free space
def check_free_space(path: Path, where: Path, needed: int, n_committed: int, atomic: bool = False) -> None:
    """Raise OutputError naming ``path`` (before anything is written) when the device of
    ``where`` lacks ``needed`` bytes (plus RESERVE_BYTES). ``atomic``: a file written in one go
    (a merge), which is then discarded whole."""
    free = free_space(where)
    if free is not None and free < needed + RESERVE_BYTES:
        then = ("nothing was written; free some space and run it again" if atomic else
                f"nothing of it was written and the {n_committed} committed record(s) are intact; free "
                "some space, then continue with --resume")
        raise OutputError(f"{path}: the disk is full: the next record needs about "
                          f"{size_text(needed + RESERVE_BYTES)} free, the device has {size_text(free)} free; {then}")


def write_error(path: Path, exc: BaseException, needed: int, n_committed: int, atomic: bool = False) -> OutputError:
    """An OutputError for a failed write (ENOSPC, EFBIG, EIO, ...), naming the free space."""
    cause, code = write_cause(path, exc)
    need = f", the record needs about {size_text(needed)}" if needed else ""
    hint = "free some space, then " if code in (_errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG) else ""
    then = (f"nothing was kept; {hint}run it again" if atomic else
            f"the {n_committed} committed record(s) are kept: {hint}continue with --resume")
    return OutputError(f"{path}: writing the trace failed ({cause}{need}); {then}")


# ---------------------------------------------------------------------------- HDF5's error causes
_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")


def open_error_cause(e: BaseException) -> str:
    """A short, true cause for an error HDF5 raised while opening a file."""
    msg = str(e).strip() or type(e).__name__
    m = _TRUNCATED.search(msg)
    if m:
        return (f"the file is truncated: it has {int(m.group(1))} bytes but its header records "
                f"{int(m.group(2))} (an incomplete copy or download, or a disk that filled up)")
    if isinstance(e, PermissionError) or "ermission denied" in msg:
        return "permission denied"
    if is_locked(e):
        return "the file is locked: another process has it open for writing"
    return msg


def is_locked(e: BaseException) -> bool:
    """HDF5's "unable to lock file" (not any message that happens to contain "lock")."""
    msg = str(e)
    return bool(re.search(r"\b(unable to lock|lock(ed)? by another|file is locked)\b", msg, re.I)) or (
        isinstance(e, OSError) and getattr(e, "errno", None) in (_errno.EWOULDBLOCK, _errno.EAGAIN)
        and "lock" in msg.lower())


def is_truncated(e: BaseException) -> bool:
    return bool(_TRUNCATED.search(str(e)))


def is_eoa_error(e: BaseException) -> bool:
    """HDF5 refused to read past the end of the space its superblock records (a write that
    failed midway left metadata pointing just beyond it)."""
    return "exceeds EOA" in str(e) or "addr overflow" in str(e)


# ---------------------------------------------------------------------------- repair
_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _eoa_field(head: bytes) -> int | None:
    """Offset of the end-of-file address in a version 0/1 superblock with 8-byte addresses."""
    if len(head) < 56 or head[:8] != _SIGNATURE or head[8] not in (0, 1) or head[13] != 8:
        return None
    return 24 + (4 if head[8] == 1 else 0) + 16  # base address, free-space address, then EOF address


class EndAtFileSize:
    """A read-only file object over ``path`` that HDF5 sees as ending ``EXTRA`` bytes of zeros
    after the real end, with a superblock that records that end as its end of allocated space
    (h5py opens file objects: ``h5py.File(EndAtFileSize(p), "r")``; the file is not changed).

    A write that failed midway (disk full, a file size limit) can leave HDF5 metadata that was
    flushed (a global heap collection's new, larger size) while the superblock kept the old end
    of space, and the file may end before the space that metadata claims: every string in that
    heap then reads as "actual len exceeds EOA", committed ones included, although their bytes
    are in the file. Seen through this object HDF5 reads them again (the missing tail reads as
    zeros, which HDF5's heap takes for free space)."""

    EXTRA = 1 << 30

    def __init__(self, path: Path):
        self._fh = open(path, "rb")
        head = self._fh.read(64)
        self._fh.seek(0)
        at = _eoa_field(head)
        if at is None:
            self._fh.close()
            raise ValueError(f"{path}: not an HDF5 file with a version 0/1 superblock")
        self._at = at
        self._real = os.fstat(self._fh.fileno()).st_size
        self._end = self._real + self.EXTRA
        self._patch = struct.pack("<Q", self._end)
        self._pos = 0

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        want = min(len(view), max(0, self._end - self._pos))
        n = 0
        if self._pos < self._real:
            self._fh.seek(self._pos)
            n = self._fh.readinto(view[: min(want, self._real - self._pos)]) or 0
        view[n:want] = bytes(want - n)
        lo, hi = max(self._pos, self._at), min(self._pos + want, self._at + 8)
        if lo < hi:
            view[lo - self._pos : hi - self._pos] = self._patch[lo - self._at : hi - self._at]
        self._pos += want
        return want

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n >= 0 else max(0, self._end - self._pos))
        return bytes(buf[: self.readinto(buf)])

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else self._end + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def write(self, data) -> int:  # pragma: no cover - opened read-only
        raise OSError("read-only")

    def truncate(self, size: int | None = None) -> int:  # pragma: no cover - opened read-only
        raise OSError("read-only")

    def close(self) -> None:
        self._fh.close()
