"""The trace store under hostile or unlucky conditions (issue 13): refused overwrites, resumes
with other settings, a full disk, crafted files, flipped bytes, truncated files, partial shards.

Each test reproduces a failure of the first wave's store; docs/GUARANTEES.md names them."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from xai_bias.errors import OutputError, TraceError
from xai_bias.store import TraceWriter, merge_traces, open_trace

from .test_store import ATTRS, assert_same_record, make_record, write

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def _writer_process(path: Path, n: int, *, then: str = "wait", start: int = 0) -> subprocess.Popen:
    """A child process that writes records ``start..start+n-1`` to ``path``, prints "ready",
    then waits for a line on stdin (``then="wait"``) and appends 2 more before closing."""
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from test_store import make_record, ATTRS
from xai_bias.store import TraceWriter
with TraceWriter({str(path)!r}, ATTRS, overwrite=True) as w:
    for i in range({start}, {start + n}):
        w.append(make_record(i))
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range({start + n}, {start + n + 2}):
        w.append(make_record(i))
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _finish(proc: subprocess.Popen) -> None:
    proc.communicate("\n", timeout=120)
    assert proc.returncode == 0


# ---------------------------------------------------------------- 13.1 refused overwrites
def test_refused_overwrite_of_a_trace_being_written_destroys_nothing(tmp_path):
    """Today HDF5 truncates the file to 0 bytes before it finds the lock: the running job then
    reports its records into an unreadable file."""
    p = tmp_path / "live.h5"
    proc = _writer_process(p, 3)
    try:
        size = p.stat().st_size
        with pytest.raises(OutputError, match="another process") as e:
            TraceWriter(p, ATTRS, overwrite=True)
        assert str(p) in str(e.value) and e.value.exit_code == 5
        assert p.stat().st_size == size
        with open_trace(p) as t:
            assert t.n_records == 3
    finally:
        _finish(proc)
    with open_trace(p) as t:  # the running job's records all arrived
        assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(5)]
        for i in range(5):
            assert_same_record(t.record(i), make_record(i))
    assert not [q for q in tmp_path.iterdir() if q.name != "live.h5"]  # no temporary left


def test_merge_overwrite_refuses_a_trace_being_written(tmp_path):
    a = write(tmp_path / "a.h5", [make_record(10)])
    b = write(tmp_path / "b.h5", [make_record(11)])
    p = tmp_path / "running.h5"
    proc = _writer_process(p, 3)
    try:
        with pytest.raises(OutputError, match="another process"):
            merge_traces([a, b], p, overwrite=True)
    finally:
        _finish(proc)
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(5)]


def test_overwrite_that_fails_before_its_first_record_keeps_the_old_trace(tmp_path):
    """A new trace goes to a temporary file and replaces the target only once it holds a record
    (or is closed cleanly): a run that fails first leaves the old trace and no stray file."""
    p = write(tmp_path / "t.h5", [make_record(0), make_record(1)])
    before = p.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with TraceWriter(p, ATTRS, overwrite=True):
            raise RuntimeError("boom")
    assert p.read_bytes() == before
    fresh = tmp_path / "new.h5"
    with pytest.raises(RuntimeError):
        with TraceWriter(fresh, ATTRS):
            raise RuntimeError("boom")
    assert not fresh.exists()
    assert sorted(q.name for q in tmp_path.iterdir()) == ["t.h5"]
    with TraceWriter(p, ATTRS, overwrite=True) as w:  # the allowed overwrite still works
        w.append(make_record(5))
        with open_trace(p) as t:  # visible under its name from the first record on
            assert t["records/sample_id"].tolist() == ["s5"]


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_one(tmp_path):
    stale = tmp_path / ".t.h5.12345-deadbeef.tmp"
    stale.write_bytes(b"left by a writer killed before its first record")
    other = tmp_path / ".other.h5.1-aa.tmp"
    other.write_bytes(b"another output's")
    write(tmp_path / "t.h5", [make_record(0)])
    assert not stale.exists() and other.exists()


def test_a_concurrent_reader_sees_whole_committed_records_only(tmp_path):
    """While another process appends (rewriting checksummed chunks under the reader), every read
    returns exactly the first n_records records, never a half-written one or a checksum error."""
    p = tmp_path / "live.h5"
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from test_store import make_record, ATTRS
from xai_bias.store import TraceWriter
with TraceWriter({str(p)!r}, ATTRS) as w:
    for i in range(100000):
        w.append(make_record(i))
        if i == 0:
            print("ready", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline, reads, last = time.time() + 4, 0, -1
        while time.time() < deadline:
            with open_trace(p) as t:
                n = t.n_records
                assert t.attrs["in_progress"] is True
                assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(n)]
                mass = t["attention/mass"]
                lp = t["records/option_logprobs"]
                for i in (0, n // 2, n - 1):
                    r = make_record(i)
                    np.testing.assert_array_equal(mass[i], r.measurements["attention/mass"])
                    np.testing.assert_array_equal(lp[i][: len(r.option_logprobs)], r.option_logprobs)
            assert n >= last
            last, reads = n, reads + 1
        assert reads >= 5 and last > 1
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- 13.2 --resume compares settings
def _run_attrs(**over):
    settings = {"conditions": ["complete", "text_white"], "mode": "direct", "methods": ["attention"],
                "options": "all", "batch_size": 8, "method_settings": {"ig_steps": 32, "target": "predicted",
                                                                     "ig_internal_batch_size": 8}}
    settings.update(over.pop("settings", {}))
    return {**ATTRS, "settings": json.dumps(settings, sort_keys=True), **over}


def test_resume_refuses_changed_record_settings_naming_each(tmp_path):
    """Today only schema, model and roles are compared: another seed or method list appends
    records to a trace whose provenance describes the first run."""
    p = tmp_path / "t.h5"
    write(p, [make_record(0)], attrs=_run_attrs())
    before = p.read_bytes()
    changed = _run_attrs(seed=1, dtype="bfloat16", settings={
        "methods": ["attention", "ig"], "method_settings": {"ig_steps": 64, "target": "predicted",
                                                            "ig_internal_batch_size": 8}})
    with pytest.raises(TraceError) as e:
        TraceWriter(p, changed, resume=True)
    msg = str(e.value)
    assert e.value.exit_code == 4 and str(p) in msg
    for needle in ("seed: 0 (file) vs 1 (this run)", "dtype: 'float32' (file) vs 'bfloat16'",
                   "settings.methods: ['attention'] (file) vs ['attention', 'ig']",
                   "settings.method_settings.ig_steps: 32 (file) vs 64"):
        assert needle in msg, (needle, msg)
    assert p.read_bytes() == before


def test_resume_accepts_record_neutral_changes_and_records_them(tmp_path):
    p = tmp_path / "t.h5"
    write(p, [make_record(0)], attrs=_run_attrs())
    neutral = _run_attrs(device="cuda:1", command="cli.py attribute --resume",
                         settings={"batch_size": 2, "method_settings": {
                             "ig_steps": 32, "target": "predicted", "ig_internal_batch_size": 4}})
    with TraceWriter(p, neutral, resume=True) as w:
        w.append(make_record(1))
    with open_trace(p) as t:
        assert t.n_records == 2
        entry = t.attrs["resumes"][-1]
        assert entry["changed"] == {
            "device": {"file": "cpu", "run": "cuda:1"},
            "settings.batch_size": {"file": 8, "run": 2},
            "settings.method_settings.ig_internal_batch_size": {"file": 8, "run": 4}}
        assert t.attrs["device"] == "cpu"  # the first run's provenance stays


# ---------------------------------------------------------------- 13.3 disk full
@contextlib.contextmanager
def _small_filesystem(tmp_path: Path, size_kib: int):
    """A tmpfs of ``size_kib`` KiB (real ENOSPC), or None when this process may not mount."""
    mnt = tmp_path / "small_fs"
    mnt.mkdir()
    ok = False
    if shutil.which("mount") and not os.environ.get("XAI_BIAS_TEST_NO_MOUNT"):  # (to run the fallback)
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mnt)],
                            capture_output=True).returncode == 0
    try:
        yield (mnt if ok else None)
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _grow(mnt: Path, size_kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_kib}k", str(mnt)], check=True)


_FILL_UNTIL_FULL = """
import sys
sys.path.insert(0, {tests!r})
from test_store import make_record, ATTRS
from xai_bias.errors import XaiBiasError
from xai_bias.store import TraceWriter, exit_now_if_unclosed
try:
    with TraceWriter({path!r}, ATTRS, resume=True) as w:
        for i in range(100000):
            if make_record(i).key not in w.done_keys():
                w.append(make_record(i))
except XaiBiasError as e:
    print(f"error: {{e}}", file=sys.stderr)
    exit_now_if_unclosed(e.exit_code)  # as cli.py does
    raise SystemExit(e.exit_code)
"""


def _fill(path: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit():  # a real write error (EFBIG) at a file size, without root
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-c", _FILL_UNTIL_FULL.format(tests=str(TESTS), path=str(path))],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit if limit_bytes else None)


def _assert_committed_intact_and_resumable(path: Path) -> int:
    with open_trace(path) as t:
        n = t.n_records
        assert n >= 10
        for i, r in enumerate(t.records()):
            assert_same_record(r, make_record(i))
    with TraceWriter(path, ATTRS, resume=True) as w:
        assert len(w.done_keys()) == n
        for i in range(n, n + 5):
            w.append(make_record(i))
    with open_trace(path) as t:
        assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(n + 5)]
        for i, r in enumerate(t.records()):
            assert_same_record(r, make_record(i))
    return n


def test_disk_full_mid_run_is_exit_5_and_resume_continues_after_space_is_freed(tmp_path, monkeypatch):
    """A real full disk (a 1.5 MiB tmpfs) where this process may mount one. Where it may not
    (no root), the free space the writer sees is injected instead (``shutil.disk_usage``
    reports the disk full after 40 records); the RLIMIT test below writes real bytes there.

    Today: exit 1 with chained RuntimeErrors, then --resume refuses the whole file."""
    with _small_filesystem(tmp_path, 1536) as mnt:
        if mnt is not None:
            p = mnt / "t.h5"
            proc = _fill(p)
            assert proc.returncode == 5, proc.stderr[-3000:]
            assert str(p) in proc.stderr and "free" in proc.stderr and "Traceback" not in proc.stderr
            _grow(mnt, 16384)
            _assert_committed_intact_and_resumable(p)
            return
    p = tmp_path / "t.h5"
    real = shutil.disk_usage
    calls = {"n": 0}

    def usage(path):
        calls["n"] += 1
        u = real(path)
        return u._replace(free=0) if calls["n"] > 40 else u

    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(OutputError, match="free") as e:
        with TraceWriter(p, ATTRS) as w:
            for i in range(1000):
                w.append(make_record(i))
    assert str(p) in str(e.value)
    monkeypatch.setattr(shutil, "disk_usage", real)
    _assert_committed_intact_and_resumable(p)


def test_write_error_inside_hdf5_loses_nothing_committed(tmp_path):
    """A real write error that no free-space check sees (the file-size limit RLIMIT_FSIZE:
    write() fails with EFBIG mid-flush, after HDF5 has updated part of its metadata)."""
    p = tmp_path / "t.h5"
    proc = _fill(p, limit_bytes=800_000)
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert str(p) in proc.stderr and "Traceback" not in proc.stderr
    _assert_committed_intact_and_resumable(p)


def test_injected_enospc_at_the_row_write_is_exit_5_naming_the_path(tmp_path, monkeypatch):
    import xai_bias.store.writer as writer

    p = tmp_path / "t.h5"
    real = writer._write_rows
    calls = {"n": 0}

    def failing(ds, start, block):
        calls["n"] += 1
        if calls["n"] > 320:  # about 16 datasets a record: at record 20
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(ds, start, block)

    monkeypatch.setattr(writer, "_write_rows", failing)
    with pytest.raises(OutputError, match="No space left") as e:
        with TraceWriter(p, ATTRS) as w:
            for i in range(100):
                w.append(make_record(i))
    assert str(p) in str(e.value) and e.value.exit_code == 5
    monkeypatch.setattr(writer, "_write_rows", real)
    _assert_committed_intact_and_resumable(p)


# ---------------------------------------------------------------- 13.4 a trace is data, not a pointer
def _trace(tmp_path, n=3, start=0) -> Path:
    return write(tmp_path / "t.h5", [make_record(i) for i in range(start, start + n)])


def _replace(p: Path, name: str, make) -> None:
    with h5py.File(p, "a") as f:
        del f[name]
        make(f, name)


def test_external_raw_storage_is_refused(tmp_path):
    """Today `inspect --record 0` prints the bytes of a file the trace points at as log-probs."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 64)
    p = _trace(tmp_path)
    _replace(p, "records/option_logprobs", lambda f, n: f.create_dataset(
        n, shape=(3, 4), dtype=np.float32, external=[(str(secret), 0, 48)]))
    with pytest.raises(TraceError, match=r"/records/option_logprobs.*external storage"):
        open_trace(p)
    with pytest.raises(TraceError, match="external storage"):
        merge_traces([p, write(tmp_path / "b.h5", [make_record(7)])], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_external_links_and_virtual_datasets_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones(3, np.float32)
    p = _trace(tmp_path)
    with h5py.File(p, "a") as f:
        f["attribution/evil"] = h5py.ExternalLink(str(other), "/x")
    with pytest.raises(TraceError, match=r"/attribution/evil.*external link"):
        open_trace(p)
    p2 = write(tmp_path / "v.h5", [make_record(i) for i in range(3)])
    layout = h5py.VirtualLayout(shape=(3,), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(3,))
    with h5py.File(p2, "a") as f:
        del f["attribution/ig_delta"]
        f.create_virtual_dataset("attribution/ig_delta", layout, fillvalue=0)
    with pytest.raises(TraceError, match=r"/attribution/ig_delta.*virtual"):
        open_trace(p2)


def test_record_count_beyond_the_file_size_is_refused_at_once(tmp_path):
    """Today a 418 KB file claiming 20M records runs for 100 s into a MemoryError."""
    p = _trace(tmp_path)
    with h5py.File(p, "a") as f:
        n = 20_000_000
        for name in list(f["records"]):
            f["records"][name].resize(n, axis=0)
        for name in ("attention/mass", "attribution/ig_delta"):
            f[name].resize(n, axis=0)
        f.attrs["n_records"] = np.int64(n)
    assert p.stat().st_size < 2_000_000
    t0 = time.perf_counter()
    with pytest.raises(TraceError, match=r"20000000 records.*bytes"):
        with open_trace(p) as t:
            t["records/sample_id"]
    assert time.perf_counter() - t0 < 5


def test_declared_giant_dataset_is_refused_before_allocation(tmp_path):
    p = _trace(tmp_path)
    with h5py.File(p, "a") as f:
        f.create_dataset("attention/maps", shape=(3, 24, 20000, 20000, 7), dtype=np.float32,
                         chunks=(1, 1, 1, 20000, 7))
    with pytest.raises(TraceError, match=r"/attention/maps.*bytes"):
        with open_trace(p) as t:
            t.record(0)


def _set_root_attr(p, key, value, json_key=False):
    with h5py.File(p, "a") as f:
        f.attrs[key] = value
        if json_key:
            keys = [k.decode() if isinstance(k, bytes) else k for k in f.attrs.get("json_attrs", [])]
            f.attrs["json_attrs"] = np.array(sorted(set(keys) | {key}), dtype=h5py.string_dtype())


BAD_TRACES = {
    "compound attention": (lambda p: _replace(p, "attention/mass", lambda f, n: f.create_dataset(
        n, data=np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))), "/attention/mass"),
    "correct as strings": (lambda p: _replace(p, "records/correct", lambda f, n: f.create_dataset(
        n, data=np.array(["yes", "no", "yes"], dtype=object), dtype=h5py.string_dtype())), "/records/correct"),
    "numeric sample ids": (lambda p: _replace(p, "records/sample_id", lambda f, n: f.create_dataset(
        n, data=np.arange(3))), "/records/sample_id"),
    "non-JSON json_attrs": (lambda p: _set_root_attr(p, "sample_set", "{not json", json_key=True), "sample_set"),
    "non-JSON dataset attrs": (lambda p: _dataset_json_attr(p), "/attention/mass"),
    "meta rows not objects": (lambda p: _replace(p, "records/meta", lambda f, n: f.create_dataset(
        n, data=np.array(["[1, 2]", "{}", "3"], dtype=object), dtype=h5py.string_dtype(),
        maxshape=(None,))), "/records/meta"),
    "roles not a list": (lambda p: _set_root_attr(p, "roles", np.int64(7)), "roles"),
    "schema_version a string": (lambda p: _set_root_attr(p, "schema_version", "1"), "schema_version"),
}


def _dataset_json_attr(p):
    with h5py.File(p, "a") as f:
        ds = f["attention/mass"]
        ds.attrs["queries"] = "[unclosed"
        ds.attrs["json_attrs"] = np.array(["queries"], dtype=h5py.string_dtype())


@pytest.mark.parametrize("kind", list(BAD_TRACES))
def test_malformed_trace_is_exit_4_naming_the_dataset(kind, tmp_path, capsys):
    import cli

    damage, needle = BAD_TRACES[kind]
    p = _trace(tmp_path)
    damage(p)
    commands = [["inspect", str(p)], ["inspect", str(p), "--record", "0"], ["consistency", str(p)],
                ["merge", str(p), str(_trace(tmp_path / "b", start=10)), "-o", str(tmp_path / "m.h5")]]
    if kind == "meta rows not objects":  # rows are checked where they are read (the summary does not)
        commands = commands[1:]
    for argv in commands:
        capsys.readouterr()
        assert cli.main(argv) == 4, (argv, capsys.readouterr())
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and str(p) in err, (argv, err)


def _chunk_offset(p: Path, name: str, chunk: int = 0) -> tuple[int, int]:
    with h5py.File(p, "r") as f:
        info = f[name].id.get_chunk_info(chunk)
        return info.byte_offset, info.size


def _flip(p: Path, offset: int) -> None:
    with open(p, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x10]))


def test_flipped_byte_in_attention_mass_is_reported(tmp_path):
    """Data chunks carry fletcher32 checksums; today the numbers silently change."""
    p = _trace(tmp_path)
    with h5py.File(p, "r") as f:
        assert f["attention/mass"].fletcher32 and f["records/option_logprobs"].fletcher32
    offset, _ = _chunk_offset(p, "attention/mass")
    _flip(p, offset + 17)
    with open_trace(p) as t:
        with pytest.raises(TraceError, match=r"/attention/mass.*checksum"):
            t["attention/mass"]
        assert t["records/sample_id"].tolist() == ["s0", "s1", "s2"]  # the rest reads


def test_checksums_survive_merge_and_crash_rebuild(tmp_path):
    a = _trace(tmp_path)
    b = write(tmp_path / "b.h5", [make_record(7)])
    m = merge_traces([a, b], tmp_path / "m.h5")
    with h5py.File(m, "r") as f:
        assert f["attention/mass"].fletcher32 and f["records/role_tokens"].fletcher32
    with h5py.File(b, "a") as f:
        f.attrs["in_progress"] = True  # as a killed writer leaves it: resume rebuilds
    with TraceWriter(b, ATTRS, resume=True) as w:
        w.append(make_record(8))
    with h5py.File(b, "r") as f:
        assert f["attention/mass"].fletcher32
        assert f.attrs["resumes"] is not None


def test_a_torn_tail_chunk_of_a_killed_writer_keeps_its_committed_rows(tmp_path):
    """SIGKILL (or a concurrent reader) can meet the chunk that holds the record in flight half
    rewritten: its checksum then fails although its committed rows are intact. The rows of that
    one chunk are read without the checksum while the file is marked in progress."""
    p = _trace(tmp_path, n=3)
    with h5py.File(p, "a") as f:  # record 3 in flight: rows written, n_records not bumped
        ds = f["attention/mass"]
        ds.resize(4, axis=0)
        ds[3] = np.ones(ds.shape[1:], np.float32)
        f.attrs["in_progress"] = True
        row_bytes = int(np.prod(ds.shape[1:])) * 4
    offset, _ = _chunk_offset(p, "attention/mass")
    _flip(p, offset + 3 * row_bytes + 5)  # torn inside the uncommitted row
    with open_trace(p) as t:
        for i in range(3):
            assert_same_record(t.record(i), make_record(i))
    with TraceWriter(p, ATTRS, resume=True) as w:
        w.append(make_record(3))
    with open_trace(p) as t:
        for i in range(4):
            assert_same_record(t.record(i), make_record(i))
    # a flipped byte in a committed row of a closed file is still damage
    _flip(p, _chunk_offset(p, "attention/mass")[0] + 5)
    with open_trace(p) as t, pytest.raises(TraceError, match="checksum"):
        t["attention/mass"]


def test_truncated_file_is_reported_as_truncated(tmp_path):
    """Today: "locked — is the run still going?" because HDF5's message contains "sblock"."""
    p = _trace(tmp_path, n=20)
    size = p.stat().st_size
    with open(p, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(TraceError, match="truncated") as e:
        open_trace(p)
    assert "lock" not in str(e.value)
    with pytest.raises(TraceError, match="truncated") as e:
        TraceWriter(p, ATTRS, resume=True)
    assert "lock" not in str(e.value)


# ---------------------------------------------------------------- 13.7 partial shards
def test_merge_refuses_partial_shards_unless_allowed(tmp_path):
    a = write(tmp_path / "a.h5", [make_record(0)])
    b = write(tmp_path / "b.h5", [make_record(1)])
    c = write(tmp_path / "c.h5", [make_record(2)], attrs={**ATTRS, "partial": True})
    with h5py.File(b, "a") as f:
        f.attrs["in_progress"] = True  # its writer was killed
    with pytest.raises(TraceError, match=r"b\.h5.*in progress.*--allow-partial"):
        merge_traces([a, b], tmp_path / "m.h5")
    with pytest.raises(TraceError, match=r"c\.h5.*stopped before.*--allow-partial"):
        merge_traces([a, c], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
    m = merge_traces([a, b, c], tmp_path / "m.h5", allow_partial=True)
    with open_trace(m) as t:
        assert t.n_records == 3 and t.attrs["partial"] is True
        assert [s.get("partial", False) or s.get("in_progress", False) for s in t.attrs["merged_from"]] == \
            [False, True, True]
    full = merge_traces([a, write(tmp_path / "d.h5", [make_record(3)])], tmp_path / "full.h5")
    with open_trace(full) as t:
        assert t.attrs.get("partial", False) is False


# ---------------------------------------------------------------- merge compares what runs write
def _provenance(**config_over):
    from types import SimpleNamespace

    from xai_bias.models import tiny_vlm
    from xai_bias.run import RunConfig, provenance

    vlm = tiny_vlm("qwen2_5_vl")  # what a run writes, from a real (tiny) model
    sample_set = SimpleNamespace(name="probe", sha256="ab" * 32, problems=(), samples=(), provenance={})
    prov = provenance(vlm, sample_set, RunConfig(**config_over))
    return {**prov, "n_layers": L_, "n_heads": H_}


L_, H_ = 3, 2


def test_merge_compares_every_record_setting_a_run_writes(tmp_path):
    """The first wave's merge check named `methods`, which nothing writes, and let traces of
    another seed or model family through."""
    from xai_bias.store import _schema as S

    base = _provenance(methods=("attention",))
    a = write(tmp_path / "a.h5", [make_record(0)], attrs=base)
    free = set()
    for key, value in base.items():
        if key == "roles":
            continue
        other = {**base, key: (value + 1 if isinstance(value, int) else f"{value}-other")}
        if key == "settings":
            other[key] = json.dumps({**json.loads(value), "methods": ["attention", "ig"]}, sort_keys=True)
        b = write(tmp_path / f"b-{key}.h5", [make_record(1)], attrs=other)
        try:
            merge_traces([a, b], tmp_path / f"m-{key}.h5")
            free.add(key)
        except TraceError as e:
            assert key in str(e), (key, str(e))
    assert free == set(S.MERGE_FREE_KEYS) & set(base), free
    assert {"seed", "model_family", "settings", "dtype", "model_id"}.isdisjoint(free)
    b = write(tmp_path / "b.h5", [make_record(1)],
              attrs={**base, "settings": json.dumps({**json.loads(base["settings"]), "methods": ["ig"]})})
    with pytest.raises(TraceError, match=r"settings\.methods differs: \['attention'\] in .*a\.h5, \['ig'\] in .*b\.h5"):
        merge_traces([a, b], tmp_path / "m.h5")


def test_inspect_orders_provenance_by_what_runs_write(tmp_path):
    from xai_bias.store import describe

    p = write(tmp_path / "t.h5", [make_record(0)], attrs=_provenance())
    keys = list(describe(p)["provenance"])
    assert keys.index("package_versions") < keys.index("created") < keys.index("settings")
