"""Scale and reliability: torchrun data parallelism, --shard + merge, SIGKILL + resume,
determinism, and the bad-input matrix (message, exit code, earlier results intact)."""

from __future__ import annotations

import json
import os
import shutil
import shlex
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

import cli
from xai_bias.store import open_trace

from .helpers import write_image, write_samples

REPO = Path(__file__).resolve().parents[1]
MODEL = "tiny:qwen2_5_vl"
VALUE_DATASETS = ("records/option_logprobs", "records/prediction", "records/sample_id",
                  "records/condition", "attention/mass")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None), env.pop("RANK", None)
    return env


def _cmd(samples: Path, out: Path, *extra: str) -> list[str]:
    return ["attribute", "--model", MODEL, "--samples", str(samples), "--out", str(out),
            "--conditions", "complete,text_black", "--methods", "attention", "--batch-size", "1",
            "--no-progress", *extra]


def assert_same_trace(a: Path, b: Path) -> None:
    with open_trace(a) as ta, open_trace(b) as tb:
        assert ta.n_records == tb.n_records
        assert ta.keys() == tb.keys()
        for name in VALUE_DATASETS:
            np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)


@pytest.mark.slow
def test_torchrun_two_processes_equal_single_run(tmp_path):
    samples = write_samples(tmp_path, n=5)
    single, merged = tmp_path / "single.h5", tmp_path / "merged.h5"
    assert cli.main(_cmd(samples, single)) == 0
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "cli.py"), *_cmd(samples, merged)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_trace(single, merged)
    assert not list(tmp_path.glob("merged.rank*"))  # shard files merged and removed
    with open_trace(merged) as t:
        assert len(t.attrs["merged_from"]) == 2


def test_shards_by_hand_then_merge(tmp_path, capsys):
    samples = write_samples(tmp_path, n=3)
    single = tmp_path / "single.h5"
    assert cli.main(_cmd(samples, single)) == 0
    parts = [tmp_path / f"part{i}.h5" for i in range(3)]
    for i, part in enumerate(parts):
        assert cli.main(_cmd(samples, part, "--shard", f"{i}/3")) == 0
    out = tmp_path / "all.h5"
    assert cli.main(["merge", *map(str, parts), "-o", str(out)]) == 0
    assert_same_trace(single, out)
    # a trace of another model is refused, naming the attribute
    other = tmp_path / "other.h5"
    assert cli.main(["attribute", "--model", "tiny:qwen2_vl", "--samples", str(samples), "--out",
                     str(other), "--limit", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["merge", str(parts[0]), str(other), "-o", str(tmp_path / "bad.h5")]) == 4
    assert "model" in capsys.readouterr().err
    assert not (tmp_path / "bad.h5").exists()


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    samples = write_samples(tmp_path, n=12)
    ref, out = tmp_path / "ref.h5", tmp_path / "killed.h5"
    assert cli.main(_cmd(samples, ref)) == 0
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *_cmd(samples, out)], cwd=REPO,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    n = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with open_trace(out) as t:
                n = t.n_records
        except Exception:  # not created yet
            n = 0
        if n >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= n < 24, f"the run was not killed mid-way (n_records={n})"
    assert cli.main(_cmd(samples, out, "--resume")) == 0
    assert_same_trace(ref, out)


def test_same_seed_same_values(tmp_path):
    samples = write_samples(tmp_path, n=2)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for out in (a, b):
        assert cli.main([*_cmd(samples, out), "--conditions", "complete,text_noise", "--seed", "7"]) == 0
    assert_same_trace(a, b)


# -- the bad-input matrix ---------------------------------------------------------------------
def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (no pixel data needed to refuse it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(data + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    return path


def _item(folder: Path, **over) -> dict:
    img = write_image(folder / "ok.png", 0)
    item = {"id": "bad1", "question": "<image 1> What is it?", "options": ["x", "y", "z"],
            "answer": "A", "image_1": img.name}
    item.update(over)
    return item


def _jsonl(folder: Path, *items, raw: bytes | None = None) -> Path:
    path = folder / "bad.jsonl"
    good = {"id": "good0", "question": "Which?", "options": ["p", "q"], "answer": "B"}
    body = json.dumps(good).encode() + b"\n"
    body += raw if raw is not None else b"".join(json.dumps(i).encode() + b"\n" for i in items)
    path.write_bytes(body)
    return path


def _case_samples(kind: str, folder: Path) -> Path:
    if kind == "malformed line":
        return _jsonl(folder, raw=b'{"id": "bad1", "question": \n')
    if kind == "missing image":
        return _jsonl(folder, _item(folder, image_1="nowhere.png"))
    if kind == "zero-byte image":
        (folder / "zero.png").write_bytes(b"")
        return _jsonl(folder, _item(folder, image_1="zero.png"))
    if kind == "corrupt image":
        (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
        return _jsonl(folder, _item(folder, image_1="corrupt.png"))
    if kind == "gigantic image":
        _png_header(folder / "huge.png", 20000, 20000)
        return _jsonl(folder, _item(folder, image_1="huge.png"))
    if kind == "answer outside options":
        return _jsonl(folder, _item(folder, answer="F"))
    if kind == "more options than letters":
        return _jsonl(folder, _item(folder, options=[f"o{i}" for i in range(27)]))
    if kind == "empty question":
        return _jsonl(folder, {"id": "bad1", "question": "  ", "options": ["x", "y"], "answer": "A"})
    if kind == "non-UTF-8 file":
        return _jsonl(folder, raw=b'{"id": "bad1", "question": "caf\xe9?", "options": ["x", "y"], "answer": "A"}\n')
    raise AssertionError(kind)


SAMPLE_CASES = [
    ("malformed line", ["bad.jsonl:2"]),
    ("missing image", ["bad.jsonl:2", "bad1", "nowhere.png"]),
    ("zero-byte image", ["bad.jsonl:2", "bad1", "zero.png"]),
    ("corrupt image", ["bad.jsonl:2", "bad1", "corrupt.png"]),
    ("gigantic image", ["bad.jsonl:2", "bad1", "huge.png"]),
    ("answer outside options", ["bad.jsonl:2", "bad1", "F"]),
    ("more options than letters", ["bad.jsonl:2", "bad1", "27"]),
    ("empty question", ["bad.jsonl:2", "bad1", "question"]),
    ("non-UTF-8 file", ["bad.jsonl:2", "UTF-8"]),
]


@pytest.fixture
def earlier_trace(tmp_path) -> Path:
    """A trace from an earlier run, which no failing command may damage."""
    out = tmp_path / "earlier.h5"
    assert cli.main(_cmd(write_samples(tmp_path / "ok", n=1), out)) == 0
    return out


@pytest.mark.parametrize("kind, needles", SAMPLE_CASES, ids=[c[0] for c in SAMPLE_CASES])
def test_bad_sample_input(kind, needles, tmp_path, earlier_trace, capsys):
    before = earlier_trace.read_bytes()
    samples = _case_samples(kind, tmp_path)
    capsys.readouterr()
    code = cli.main(_cmd(samples, earlier_trace, "--resume"))
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert earlier_trace.read_bytes() == before
    # with --on-error skip the good item runs and the bad one is reported
    out = tmp_path / "skip.h5"
    assert cli.main(_cmd(samples, out, "--on-error", "skip")) == 0
    assert "skipped" in capsys.readouterr().err
    with open_trace(out) as t:
        assert set(t["records/sample_id"]) == {"good0"}


def _newer_schema(trace: Path) -> None:
    with h5py.File(trace, "r+") as f:
        f.attrs["schema_version"] = 99


def _wrong_shape(trace: Path) -> None:
    with h5py.File(trace, "r+") as f:
        del f["attention/mass"]
        f.create_dataset("attention/mass", data=np.zeros((2, 2, 4, 3), np.float32))


TRACE_CASES = [
    ("newer schema", _newer_schema, 4, ["newer"]),
    ("wrong shape", _wrong_shape, 4, ["attention/mass"]),
]


@pytest.mark.parametrize("kind, damage, code, needles", TRACE_CASES, ids=[c[0] for c in TRACE_CASES])
def test_bad_trace(kind, damage, code, needles, earlier_trace, capsys):
    damage(earlier_trace)
    for argv in (["inspect", str(earlier_trace)], ["estimate", str(earlier_trace), "--bootstrap", "10"]):
        capsys.readouterr()
        assert cli.main(argv) == code
        err = capsys.readouterr().err
        assert str(earlier_trace) in err, err
        for needle in needles:
            assert needle in err, (needle, err)


@pytest.mark.parametrize("argv, code, needles", [
    (["--model", "tiny:qwen2_5_vlm"], 2, ["qwen2_5_vl", "Did you mean"]),
    (["--model", "demo-balanse"], 2, ["demo-balanced"]),
    (["--probe", "mmmu_prо"], 2, ["mmmu_pro"]),
], ids=["unknown family", "unknown demo model", "unknown probe"])
def test_unknown_names(argv, code, needles, tmp_path, earlier_trace, capsys):
    before = earlier_trace.read_bytes()
    assert cli.main(["attribute", *argv, "--out", str(earlier_trace), "--resume", "--no-progress"]) == code
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, (needle, err)
    assert earlier_trace.read_bytes() == before


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    samples = write_samples(tmp_path, n=1)
    assert cli.main(_cmd(samples, blocker / "out.h5")) == 5
    assert "out.h5" in capsys.readouterr().err


def test_no_traceback_for_user_errors(tmp_path):
    """The installed entry point prints one line, not a Python traceback."""
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "inspect", str(tmp_path / "none.h5")],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr and "none.h5" in proc.stderr


def test_instruments_on_a_model_split_by_device_map(tmp_path):
    """A device map that offloads a decoder layer (accelerate hooks move its weights in at run
    time, as for a model spread over GPUs) gives the same records as the unsplit model."""
    from xai_bias.instruments import MethodSettings
    from xai_bias.models import load_vlm, tiny_vlm
    from xai_bias.run import RunConfig, Runner, work_items
    from xai_bias.samples import load_samples

    folder = tiny_vlm("qwen2_5_vl").save(tmp_path / "model")
    plain = load_vlm(folder)
    split = load_vlm(folder, device_map={
        "model.visual": "cpu", "model.language_model.embed_tokens": "cpu",
        "model.language_model.layers.0": "cpu", "model.language_model.layers.1": "disk",
        "model.language_model.norm": "cpu", "model.language_model.rotary_emb": "cpu", "lm_head": "cpu"})
    assert hasattr(split.layers[1], "_hf_hook")  # really dispatched by accelerate
    samples = load_samples(write_samples(tmp_path / "s", n=2)).samples
    config = RunConfig(conditions=("complete", "text_black"),
                       methods=("attention", "ig", "shapley", "knockout", "logit_lens"),
                       settings=MethodSettings.build(ig={"steps": 8}))
    a = Runner(plain, config).run_batch(work_items(samples, config))
    b = Runner(split, config).run_batch(work_items(samples, config))
    for ra, rb in zip(a, b):
        assert ra.prediction == rb.prediction
        np.testing.assert_allclose(ra.option_logprobs, rb.option_logprobs, atol=1e-5)
        assert set(ra.measurements) == set(rb.measurements) and len(ra.measurements) >= 6
        for name in ra.measurements:
            np.testing.assert_allclose(ra.measurements[name], rb.measurements[name], atol=1e-4, err_msg=name)


@pytest.mark.slow
def test_ctrl_c_stops_after_the_batch_in_flight_and_prints_the_resume_command(tmp_path):
    samples = write_samples(tmp_path, n=12)
    ref, out = tmp_path / "ref.h5", tmp_path / "int.h5"
    assert cli.main(_cmd(samples, ref)) == 0
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *_cmd(samples, out)], cwd=REPO,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            with open_trace(out) as t:
                if t.n_records >= 2:
                    break
        except Exception:
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    resume = next(line.strip() for line in stdout.splitlines() if "--resume" in line)
    with open_trace(out) as t:
        assert 2 <= t.n_records < 24 and not t.attrs.get("in_progress")  # closed cleanly
    argv = shlex.split(resume)[2:]  # drop "python cli.py"
    assert argv[0] == "attribute" and "--resume" in argv
    assert cli.main(argv) == 0
    assert_same_trace(ref, out)
