"""Trace store: round trips, crash safety, resume, errors, merge, inspect (all under tmp_path)."""

from __future__ import annotations

import json
import os
import sys
import time

import h5py
import numpy as np
import pytest

from xai_bias.errors import OutputError, TraceError
from xai_bias.store import TraceWriter, open_trace
from xai_bias.types import N_ROLES, ROLES, Record

L, H = 3, 2
ATTRS = {
    "model_id": "tiny:qwen2_5_vl",
    "model_arch": "qwen2_5_vl",
    "dtype": "float32",
    "device": "cpu",
    "versions": {"torch": "2.13.0", "transformers": "5.0"},
    "command": "cli.py attribute --limit 4",
    "sample_set": {"name": "probe", "sha256": "ab" * 32},
    "seed": 0,
    "n_layers": L,
    "n_heads": H,
}


def make_record(i: int, condition: str = "complete", mode: str = "direct", n_options: int = 4,
                mass: bool = True, **kw) -> Record:
    rng = np.random.default_rng(i)
    T = 5 + i % 4
    meas = {"attribution/ig_delta": np.float32(0.01 * i)}
    if mass:
        meas["attention/mass"] = rng.random((L, H, N_ROLES), dtype=np.float32)
    fields = dict(
        sample_id=f"s{i}", condition=condition, mode=mode, answer="ABCD"[i % 4],
        prediction="ABCD"[(i // 2) % 4], correct=(i % 4) == ((i // 2) % 4), status="ok",
        option_logprobs=rng.normal(size=n_options).astype(np.float32),
        role_tokens=np.arange(N_ROLES, dtype=np.int32) + i,
        meta={"subject": "Math", "difficulty": "easy", "i": i, "ünï": "çødé"},
        input_ids=rng.integers(0, 1000, T).astype(np.int32),
        token_roles=rng.integers(0, N_ROLES, T).astype(np.int8),
        response="The answer is (B)" if mode == "cot" else "",
        measurements=meas,
    )
    fields.update(kw)
    return Record(**fields)


def assert_same_record(a: Record, b: Record) -> None:
    for f in ("sample_id", "condition", "mode", "answer", "prediction", "correct", "status", "response"):
        assert getattr(a, f) == getattr(b, f), f
    np.testing.assert_array_equal(a.option_logprobs, b.option_logprobs)
    np.testing.assert_array_equal(a.role_tokens, b.role_tokens)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    np.testing.assert_array_equal(a.token_roles, b.token_roles)
    assert dict(a.meta) == dict(b.meta)
    assert sorted(a.measurements) == sorted(b.measurements)
    for k in a.measurements:
        np.testing.assert_array_equal(np.asarray(a.measurements[k]), np.asarray(b.measurements[k]))


def write(path, records, attrs=ATTRS, **kw):
    with TraceWriter(path, attrs, **kw) as w:
        w.set_dataset_attrs("attention/mass", queries="answer", layers="all")
        for r in records:
            w.append(r)
    return path


# ---------------------------------------------------------------- round trip
def test_round_trip(tmp_path):
    recs = [make_record(i, condition=c) for i, c in enumerate(["complete", "text_white", "image_only"] * 2)]
    recs.append(make_record(9, mode="cot", mass=False, status="error: CUDA OOM", prediction="", correct=False))
    p = write(tmp_path / "t.h5", recs)
    with open_trace(p) as t:
        assert t.n_records == len(recs) == len(t)
        assert t.attrs["schema_version"] == 1
        assert t.attrs["model_id"] == "tiny:qwen2_5_vl"
        assert t.attrs["versions"] == {"torch": "2.13.0", "transformers": "5.0"}
        assert t.attrs["sample_set"]["sha256"] == "ab" * 32
        assert t.attrs["roles"] == list(ROLES)
        assert t.attrs["n_layers"] == L and t.attrs["seed"] == 0
        assert "created" in t.attrs and "xai_bias_version" in t.attrs
        json.dumps(t.attrs)  # plain JSON-able
        for i, r in enumerate(recs):
            assert_same_record(t.record(i), r)
        assert_same_record(t.record(-1), recs[-1])
        cond = t["records/condition"]
        assert isinstance(cond, np.ndarray) and cond.dtype.kind == "U"
        assert cond.tolist() == [r.condition for r in recs]
        assert t.column("records/meta")[3] == dict(recs[3].meta)
        assert t["records/correct"].dtype == np.bool_
        mass = t["attention/mass"]
        assert mass.shape == (len(recs), L, H, N_ROLES) and mass.dtype == np.float32
        assert np.isnan(mass[-1]).all()  # record without the measurement: NaN row
        assert t["attribution/ig_delta"].shape == (len(recs),)
        assert t.has("attention/mass") and t.has("/records/sample_id") and not t.has("attribution/ig")
        assert "attention/mass" in t.datasets() and "records/response" in t.datasets()
        assert t.dataset_attrs("attention/mass") == {"queries": "answer", "layers": "all"}
        np.testing.assert_array_equal(t.find(condition="text_white"), [1, 4])
        np.testing.assert_array_equal(t.find(sample_id="s4", condition="text_white", mode="direct"), [4])
        assert t.find(mode="cot").tolist() == [6]
        assert len(t.find(sample_id="nope")) == 0
        ids = t["records/input_ids"]
        assert isinstance(ids, list) and ids[2].dtype == np.int32
        with pytest.raises(IndexError):
            t.record(len(recs))


def test_reader_without_with_and_empty_trace(tmp_path):
    p = tmp_path / "empty.h5"
    with TraceWriter(p, ATTRS):
        pass
    t = open_trace(p)
    assert t.n_records == 0
    assert t["records/condition"].shape == (0,)
    assert t["records/meta"] == []
    assert t.find(condition="complete").tolist() == []
    t.close()


def test_option_logprobs_nan_padding_grows(tmp_path):
    recs = [make_record(0, n_options=4), make_record(1, n_options=10), make_record(2, n_options=2),
            make_record(3, n_options=0)]
    p = write(tmp_path / "t.h5", recs)
    with open_trace(p) as t:
        lp = t["records/option_logprobs"]
        assert lp.shape == (4, 10) and lp.dtype == np.float32
        assert np.isnan(lp[0, 4:]).all() and np.isfinite(lp[0, :4]).all()
        assert np.isfinite(lp[1]).all()
        assert np.isnan(lp[2, 2:]).all()
        assert np.isnan(lp[3]).all()
        for i, r in enumerate(recs):
            np.testing.assert_array_equal(t.record(i).option_logprobs, r.option_logprobs)


def test_append_flush_then_reopen_while_open(tmp_path):
    p = tmp_path / "t.h5"
    with TraceWriter(p, ATTRS) as w:
        w.append(make_record(0))
        w.append(make_record(1))
        # flushed: a reader sees the committed records while the writer is still open
        with open_trace(p) as t:
            assert t.n_records == 2
            assert t["records/sample_id"].tolist() == ["s0", "s1"]
        w.append(make_record(2))
    with open_trace(p) as t:
        assert t.n_records == 3


def test_extend_and_duplicate_refused(tmp_path):
    p = tmp_path / "t.h5"
    with TraceWriter(p, ATTRS) as w:
        w.extend([make_record(i) for i in range(3)])
        assert w.n_records == 3
        with pytest.raises(TraceError, match="already in the trace"):
            w.append(make_record(1))
        w.append(make_record(1, condition="text_white"))
    with open_trace(p) as t:
        assert t.n_records == 4


def test_measurement_shape_mismatch_leaves_no_partial_row(tmp_path):
    p = tmp_path / "t.h5"
    with TraceWriter(p, ATTRS) as w:
        w.append(make_record(0))
        bad = make_record(1, measurements={"attention/mass": np.zeros((L + 1, H, N_ROLES), np.float32)})
        with pytest.raises(TraceError, match="attention/mass"):
            w.append(bad)
        w.append(make_record(2))
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == ["s0", "s2"]
        names = t.datasets()
    with h5py.File(p, "r") as f:
        assert all(f[n].shape[0] == 2 for n in names)


def test_new_dataset_backfills_earlier_records(tmp_path):
    recs = [make_record(0, measurements={}), make_record(1)]
    p = write(tmp_path / "t.h5", recs)
    with open_trace(p) as t:
        m = t["attention/mass"]
        assert m.shape[0] == 2 and np.isnan(m[0]).all() and np.isfinite(m[1]).all()
        assert t.record(0).measurements == {}
        assert t.dataset_attrs("attention/mass")["queries"] == "answer"  # pending attrs applied


# ---------------------------------------------------------------- resume and crash safety
def test_resume_skips_done_keys(tmp_path):
    p = tmp_path / "t.h5"
    write(p, [make_record(i) for i in range(3)])
    with TraceWriter(p, ATTRS, resume=True) as w:
        assert w.done_keys() == {(f"s{i}", "complete", "direct") for i in range(3)}
        for i in range(5):
            r = make_record(i)
            if r.key not in w.done_keys():
                w.append(r)
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(5)]
        assert t.attrs["resumes"][0]["n_records"] == 3
        for i in range(5):
            assert_same_record(t.record(i), make_record(i))
    uninterrupted = write(tmp_path / "u.h5", [make_record(i) for i in range(5)])
    with open_trace(p) as a, open_trace(uninterrupted) as b:
        for name in b.datasets():
            x, y = a[name], b[name]
            if isinstance(x, list):
                assert len(x) == len(y)
                for u, v in zip(x, y):
                    np.testing.assert_array_equal(u, v)
            else:
                np.testing.assert_array_equal(x, y)


def test_resume_of_missing_file_starts_new(tmp_path):
    p = tmp_path / "sub" / "new.h5"
    with TraceWriter(p, ATTRS, resume=True) as w:
        assert w.done_keys() == set()
        w.append(make_record(0))
    with open_trace(p) as t:
        assert t.n_records == 1


def test_resume_refuses_other_model(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(0)])
    with pytest.raises(TraceError, match="model_id"):
        TraceWriter(p, {**ATTRS, "model_id": "other"}, resume=True)
    with h5py.File(p, "a") as f:
        f.attrs["schema_version"] = 0
    with pytest.raises(TraceError, match="schema_version"):
        TraceWriter(p, ATTRS, resume=True)


def test_resume_refuses_changed_settings(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(0)])
    with TraceWriter(p, ATTRS, resume=True) as w:
        with pytest.raises(TraceError, match="queries"):
            w.set_dataset_attrs("attention/mass", queries="all")
        w.set_dataset_attrs("attention/mass", queries="answer")


def _half_record(path):
    """Simulate a crash mid-record: some datasets got the next row, n_records was not bumped."""
    with h5py.File(path, "a") as f:
        n = int(f.attrs["n_records"])
        for name in ("records/sample_id", "records/condition", "records/mode", "attention/mass"):
            ds = f[name]
            ds.resize(n + 1, axis=0)
            ds[n] = "half" if ds.dtype.kind == "O" else np.ones(ds.shape[1:], ds.dtype)
        f.create_dataset("attribution/new", data=np.ones(n + 1, np.float32), maxshape=(None,))
        return n


def test_half_record_is_ignored_by_reader_and_truncated_on_resume(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(i) for i in range(3)])
    n = _half_record(p)
    with open_trace(p) as t:
        assert t.n_records == n == 3
        assert t["records/sample_id"].tolist() == ["s0", "s1", "s2"]
        assert t["attention/mass"].shape[0] == 3
        assert t.record(2).sample_id == "s2"
    with TraceWriter(p, ATTRS, resume=True) as w:
        assert len(w.done_keys()) == 3
        w.append(make_record(3))
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == ["s0", "s1", "s2", "s3"]
        assert "half" not in t["records/condition"].tolist()
        assert_same_record(t.record(3), make_record(3))
    with h5py.File(p, "r") as f:
        assert f["records/sample_id"].shape == (4,) and f["attention/mass"].shape[0] == 4


def test_sigkill_mid_run_then_resume(tmp_path):
    """A writer process killed between records leaves an openable file with whole records."""
    import signal
    import subprocess

    p = tmp_path / "k.h5"
    code = f"""
import sys, time
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_store import make_record, ATTRS
from xai_bias.store import TraceWriter
with TraceWriter({str(p)!r}, ATTRS) as w:
    w.set_dataset_attrs("attention/mass", queries="answer", layers="all")
    for i in range(10000):
        w.append(make_record(i))
        if i == 4:
            print("ready", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open_trace(p) as t:
        n = t.n_records
        assert n >= 5
        created = t.attrs["created"]
        for i in range(n):
            assert_same_record(t.record(i), make_record(i))
    with TraceWriter(p, ATTRS, resume=True) as w:
        for i in range(n + 3):
            if make_record(i).key not in w.done_keys():
                w.append(make_record(i))
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == [f"s{i}" for i in range(n + 3)]
        assert t.attrs["resumes"][-1]["after_crash"] is True  # rebuilt from committed records
        assert t.attrs["in_progress"] is False
        assert t.attrs["created"] == created and t.attrs["model_id"] == ATTRS["model_id"]
        assert t.dataset_attrs("attention/mass") == {"queries": "answer", "layers": "all"}
        for i in range(n + 3):
            assert_same_record(t.record(i), make_record(i))


# ---------------------------------------------------------------- output errors
def test_clobber_protection_and_overwrite(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(0), make_record(1)])
    with pytest.raises(OutputError, match=r"--resume.*--overwrite") as e:
        TraceWriter(p, ATTRS)
    assert str(p) in str(e.value)
    with open_trace(p) as t:
        assert t.n_records == 2  # untouched
    write(p, [make_record(5)], overwrite=True)
    with open_trace(p) as t:
        assert t["records/sample_id"].tolist() == ["s5"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="ro"):
            TraceWriter(ro / "t.h5", ATTRS)
        with pytest.raises(OutputError):
            TraceWriter(ro / "deeper" / "t.h5", ATTRS)
    finally:
        ro.chmod(0o700)


def test_unwritable_path_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="afile"):
        TraceWriter(tmp_path / "afile" / "t.h5", ATTRS)


def test_directory_path_refused(tmp_path):
    with pytest.raises(OutputError, match="directory"):
        TraceWriter(tmp_path, ATTRS)


def test_writer_closes_file_on_exception(tmp_path):
    p = tmp_path / "t.h5"
    with pytest.raises(RuntimeError):
        with TraceWriter(p, ATTRS) as w:
            w.append(make_record(0))
            raise RuntimeError("boom")
    with open_trace(p) as t:
        assert t.n_records == 1
    with TraceWriter(p, ATTRS, resume=True) as w:  # not left locked / open
        w.append(make_record(1))


# ---------------------------------------------------------------- bad trace files
def test_not_hdf5_and_missing(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    with pytest.raises(TraceError, match="not an HDF5 file"):
        open_trace(bad)
    empty = tmp_path / "zero.h5"
    empty.write_bytes(b"")
    with pytest.raises(TraceError, match="zero.h5"):
        open_trace(empty)
    with pytest.raises(TraceError, match="no such"):
        open_trace(tmp_path / "missing.h5")


def test_not_a_trace(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(TraceError, match="not an xai_bias trace"):
        open_trace(p)


def test_newer_schema_refused(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(0)])
    with h5py.File(p, "a") as f:
        f.attrs["schema_version"] = 2
    with pytest.raises(TraceError, match="newer xai_bias.*upgrade"):
        open_trace(p)


@pytest.mark.parametrize("case", ["short_rows", "role_axis", "mass_roles"])
def test_wrong_shape_dataset_refused(tmp_path, case):
    p = write(tmp_path / "t.h5", [make_record(i) for i in range(3)])
    with h5py.File(p, "a") as f:
        if case == "short_rows":
            f["attention/mass"].resize(2, axis=0)
        elif case == "role_axis":
            del f["records/role_tokens"]
            f.create_dataset("records/role_tokens", data=np.zeros((3, N_ROLES - 1), np.int32))
        else:
            del f["attention/mass"]
            f.create_dataset("attention/mass", data=np.zeros((3, L, H, 4), np.float32))
    with pytest.raises(TraceError, match="wrong shape") as e:
        open_trace(p)
    assert str(p) in str(e.value)


def test_no_pickles_or_object_dtypes(tmp_path):
    p = write(tmp_path / "t.h5", [make_record(i, mode=m) for i, m in enumerate(["direct", "cot"])])
    with h5py.File(p, "r") as f:
        def check_attrs(obj):
            for k, v in obj.attrs.items():
                dt = obj.attrs.get_id(k).dtype
                assert dt.kind in "biufS" or h5py.check_string_dtype(dt) is not None, (obj.name, k, dt)

        def visit(name, obj):
            check_attrs(obj)
            if isinstance(obj, h5py.Dataset):
                dt = obj.dtype
                ok = (dt.kind in "biuf" or h5py.check_string_dtype(dt) is not None
                      or (h5py.check_vlen_dtype(dt) is not None and np.dtype(h5py.check_vlen_dtype(dt)).kind in "iu"))
                assert ok, (name, dt)
        check_attrs(f)
        f.visititems(visit)
        assert h5py.check_string_dtype(f["records/meta"].dtype).encoding == "utf-8"


def test_10k_records_read_fast(tmp_path):
    """Not a timed assertion: 10,000 records (written in batches) read back; prints the time."""
    p = tmp_path / "big.h5"
    rng = np.random.default_rng(0)
    conds = ["complete", "text_white", "text_black", "text_noise", "image_only"]
    recs = []
    for i in range(10_000):
        recs.append(Record(
            sample_id=f"s{i // 5}", condition=conds[i % 5], mode="direct", answer="A", prediction="AB"[i % 2],
            correct=i % 2 == 0, option_logprobs=rng.normal(size=4).astype(np.float32),
            role_tokens=np.ones(N_ROLES, np.int32), meta={"subject": "Math", "i": i},
            input_ids=np.arange(40, dtype=np.int32), token_roles=np.zeros(40, np.int8),
            measurements={"attention/mass": np.full((L, H, N_ROLES), i, np.float32)},
        ))
    t0 = time.perf_counter()
    with TraceWriter(p, ATTRS) as w:
        for k in range(0, len(recs), 500):
            w.extend(recs[k:k + 500])
    t1 = time.perf_counter()
    with open_trace(p) as t:
        cols = {n: t[n] for n in t.datasets()}
        idx = t.find(condition="text_white")
        r = t.record(9_999)
    t2 = time.perf_counter()
    print(f"\n10k records: write (batches of 500) {t1 - t0:.2f}s, open+read all columns {t2 - t1:.2f}s")
    assert len(cols["records/meta"]) == 10_000 and cols["attention/mass"].shape == (10_000, L, H, N_ROLES)
    assert len(idx) == 2_000 and r.sample_id == "s1999"


# ---------------------------------------------------------------- merge
def _shards(tmp_path, attrs_b=ATTRS, n=6, k=2):
    recs = [make_record(i, condition=["complete", "text_white"][i % 2]) for i in range(n)]
    paths = []
    for s in range(k):
        p = tmp_path / f"shard{s}.h5"
        write(p, recs[s::k], attrs=ATTRS if s == 0 else attrs_b)
        paths.append(p)
    return recs, paths


def test_merge_equals_single_run(tmp_path):
    recs, paths = _shards(tmp_path)
    single = write(tmp_path / "single.h5", recs[0::2] + recs[1::2])
    out = tmp_path / "out" / "merged.h5"
    from xai_bias.store import merge_traces

    assert merge_traces(paths, out, attrs={"command": "cli.py merge"}) == out
    with open_trace(out) as m, open_trace(single) as s:
        assert m.n_records == s.n_records == len(recs)
        for i in range(m.n_records):
            assert_same_record(m.record(i), s.record(i))
        assert m.dataset_attrs("attention/mass") == s.dataset_attrs("attention/mass")
        assert m.attrs["model_id"] == ATTRS["model_id"]
        assert m.attrs["command"] == "cli.py merge"
        src = m.attrs["merged_from"]
        assert [x["path"] for x in src] == [str(p) for p in paths]
        assert [x["n_records"] for x in src] == [3, 3]
        assert "created" in src[0]
    with pytest.raises(OutputError, match="exists"):
        merge_traces(paths, out)
    merge_traces(paths, out, overwrite=True)
    assert not list(out.parent.glob("*.tmp"))


def test_merge_refuses_other_model_settings_and_duplicates(tmp_path):
    from xai_bias.store import merge_traces

    _, paths = _shards(tmp_path, attrs_b={**ATTRS, "model_id": "other/model"})
    with pytest.raises(TraceError, match=r"model_id differs.*shard0.*shard1"):
        merge_traces(paths, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()

    p1 = write(tmp_path / "a.h5", [make_record(0)])
    p2 = tmp_path / "b.h5"
    with TraceWriter(p2, ATTRS) as w:
        w.set_dataset_attrs("attention/mass", queries="all")
        w.append(make_record(1))
    with pytest.raises(TraceError, match=r"settings of /attention/mass differ \(.*queries.*a\.h5.*b\.h5"):
        merge_traces([p1, p2], tmp_path / "m.h5")

    p3 = write(tmp_path / "c.h5", [make_record(0), make_record(2)])
    with pytest.raises(TraceError, match="sample_id='s0'.*a.h5.*c.h5"):
        merge_traces([p1, p3], tmp_path / "m.h5")
    with pytest.raises(OutputError):
        merge_traces([p1, p3], p1, overwrite=True)


# ---------------------------------------------------------------- inspect
def test_describe_and_format(tmp_path):
    from xai_bias.store import describe, describe_record, format_description, format_record

    recs = [make_record(i, condition=c) for i, c in enumerate(["complete", "text_white"] * 3)]
    recs.append(make_record(7, status="error: image unreadable", measurements={}))
    recs.append(make_record(8, mode="cot", prediction="", correct=False))
    p = tmp_path / "t.h5"
    with TraceWriter(p, ATTRS) as w:
        w.set_dataset_attrs("attribution/shapley", groups=["image", "text"], baseline="mean")
        for r in recs:
            m = dict(r.measurements)
            m["attribution/shapley"] = np.array([0.25, 0.75], np.float32)
            w.append(Record(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "measurements": m}))
    d = describe(p)
    json.dumps(d)
    assert d["n_records"] == 8 and d["schema_version"] == 1 and d["in_progress"] is False
    assert d["provenance"]["model_id"] == ATTRS["model_id"]
    names = {x["name"]: x for x in d["datasets"]}
    assert names["attention/mass"]["shape"] == [8, L, H, N_ROLES]
    assert names["attribution/shapley"]["attrs"]["groups"] == ["image", "text"]
    acc = {(a["condition"], a["mode"]): a for a in d["accuracy"]}
    exp = [r for r in recs if r.condition == "complete" and r.mode == "direct" and r.status == "ok"]
    a = acc[("complete", "direct")]
    assert a["n"] == 4 and a["n_ok"] == 3 and a["n_correct"] == sum(r.correct for r in exp)
    assert a["accuracy"] == pytest.approx(a["n_correct"] / 3, abs=1e-4)
    assert acc[("complete", "cot")]["n_unparsed"] == 1 and acc[("complete", "cot")]["accuracy"] == 0
    assert [x["condition"] for x in d["accuracy"]][:1] == ["complete"]
    assert d["problems"] == [{"index": 6, "sample_id": "s7", "condition": "complete", "mode": "direct",
                              "status": "error: image unreadable"}]
    text = format_description(d)
    assert "tiny:qwen2_5_vl" in text and "text_white" in text and "error: image unreadable" in text

    with open_trace(p) as t:
        r = describe_record(t, 0)
    json.dumps(r)
    assert r["sample_id"] == "s0" and r["condition"] == "complete"
    assert list(r["option_logprobs"]) == ["A", "B", "C", "D"]
    assert r["option_logprobs"]["A"] == pytest.approx(float(recs[0].option_logprobs[0]), abs=1e-4)
    assert sum(r["option_probs"].values()) == pytest.approx(1, abs=1e-3)
    assert r["role_tokens"] == {name: int(v) for name, v in zip(ROLES, recs[0].role_tokens)}
    mass = recs[0].measurements["attention/mass"].astype(np.float64)
    pl = r["measurements"]["attention/mass"]["per_layer"]
    assert len(pl) == L
    assert pl[1]["image"] == pytest.approx(mass[1, :, ROLES.index("image")].mean(), abs=1e-4)
    text_idx = [ROLES.index(x) for x in ("question", "options", "instruction")]
    assert pl[1]["text"] == pytest.approx(mass[1][:, text_idx].sum(-1).mean(), abs=1e-4)
    assert r["measurements"]["attribution/shapley"]["by_group"] == {"image": 0.25, "text": 0.75}
    assert r["measurements"]["attribution/ig_delta"]["values"] == 0.0
    missing = describe_record(p, 6)
    assert missing["measurements"]["attention/mass"] == {"shape": [L, H, N_ROLES], "dtype": "float32",
                                                         "missing": True}
    out = format_record(r)
    assert "attention/mass" in out and "image" in out and "Tokens per role" in out
    assert "not measured" in format_record(missing)
    with pytest.raises(IndexError):
        describe_record(p, 99)


def test_read_while_another_process_writes_and_resume_refused(tmp_path):
    import subprocess

    p = tmp_path / "live.h5"
    code = f"""
import sys, time
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_store import make_record, ATTRS
from xai_bias.store import TraceWriter
with TraceWriter({str(p)!r}, ATTRS) as w:
    for i in range(3):
        w.append(make_record(i))
    print("ready", flush=True)
    sys.stdin.readline()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with open_trace(p) as t:
            assert t.n_records == 3 and t.attrs["in_progress"] is True
            assert t["records/sample_id"].tolist() == ["s0", "s1", "s2"]
        with pytest.raises(TraceError, match="locked"):
            TraceWriter(p, ATTRS, resume=True)
    finally:
        proc.communicate("\n", timeout=60)
    with open_trace(p) as t:
        assert t.n_records == 3 and t.attrs["in_progress"] is False


def test_store_needs_only_numpy_and_h5py():
    import pathlib
    import re

    import xai_bias.store as store

    for f in pathlib.Path(store.__file__).parent.glob("*.py"):
        src = f.read_text()
        mods = set(re.findall(r"^\s*(?:from|import)\s+([\w.]+)", src, re.M))
        third_party = {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names) - {
            "numpy", "h5py", "xai_bias"}
        assert not third_party - {""}, (f.name, third_party)
        assert not any(m.startswith("xai_bias.") and not m.startswith(("xai_bias.types", "xai_bias.errors"))
                       for m in mods), f.name


def test_ragged_last_axis_grows_and_merges(tmp_path):
    """Rows like the logit lens's [L, n_options] differ in their last axis between records:
    the dataset widens to the widest row, shorter rows are NaN-padded, and merge accepts it."""
    from xai_bias.store import TraceWriter, merge_traces, open_trace
    from xai_bias.types import Record

    def rec(i: int, n_opt: int) -> Record:
        lens = np.arange(2 * n_opt, dtype=np.float32).reshape(2, n_opt) + i
        return Record(sample_id=f"s{i}", condition="complete", mode="direct", answer="A",
                      prediction="A", correct=True, option_logprobs=np.zeros(n_opt, np.float32),
                      measurements={"intervention/logit_lens": lens, "attribution/ig_delta": np.float32(i)})

    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "ab.h5"
    with TraceWriter(a, {"model_id": "m"}) as w:
        w.append(rec(0, 3))
        w.append(rec(1, 5))
        w.append(rec(2, 2))
    with TraceWriter(b, {"model_id": "m"}) as w:
        w.append(rec(3, 4))
    with open_trace(a) as t:
        lens = t["intervention/logit_lens"]
        assert lens.shape == (3, 2, 5)
        np.testing.assert_array_equal(lens[0, :, :3], rec(0, 3).measurements["intervention/logit_lens"])
        assert np.isnan(lens[0, :, 3:]).all() and np.isnan(lens[2, :, 2:]).all()
        np.testing.assert_array_equal(t["attribution/ig_delta"], [0, 1, 2])
    merge_traces([a, b], out)
    with open_trace(out) as t:
        lens = t["intervention/logit_lens"]
        assert lens.shape == (4, 2, 5)
        np.testing.assert_array_equal(lens[3, :, :4], rec(3, 4).measurements["intervention/logit_lens"])
